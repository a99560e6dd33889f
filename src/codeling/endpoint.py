"""Samples from any OpenAI-compatible `/v1/completions` server: `--endpoint URL [--model NAME]`
(vLLM, llama.cpp's server, Ollama, `codeling serve`).

    client = Endpoint("http://127.0.0.1:8000/v1", timeout=120, retries=4)
    failures = endpoint_samples(client, "name", jobs, settings, concurrency=8, on_row=write)

Plain HTTP from the standard library, so evaluating an endpoint needs no extra package:
- at most `concurrency` requests in flight (a thread pool);
- each attempt has a deadline of `timeout` seconds for the whole exchange, not per read, so a
  server that stalls mid-answer is given up on too;
- connection errors, timeouts, 408, 409, 429 and 5xx are retried `retries` times with jittered
  exponential backoff (0.5 s doubling, at most 30 s); other 4xx are refused requests, which
  would fail the same way every time, so the run stops at the first one;
- a sample whose retries run out is reported back (task, sample, last error) and written
  nowhere, so it is neither lost nor counted as a failed completion: a rerun asks for it again.

One request per sample (n=1), since llama.cpp and Ollama ignore `n`; greedy decoding asks
once per task and its n samples share the answer. Every stop sequence is sent (servers that
honour fewer are fine), and the text is cut before the earliest one here as well.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

RETRY_STATUS = {408, 409, 429} | set(range(500, 600))


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop sequence, and whether one was found (shared with
    hf_backend, which imports torch; this module must not)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class EndpointError(RuntimeError):
    """The endpoint cannot be used at all (a refused request, no model): stop the run."""


class RetryableError(RuntimeError):
    """One attempt failed in a way that another attempt may not (timeout, 5xx, reset)."""


def base_url(url: str) -> str:
    """http://host:port -> http://host:port/v1; a URL already naming /v1 or /v1/completions
    is kept (without /completions)."""
    url = url.rstrip("/")
    if url.endswith("/completions"):
        url = url[:-len("/completions")]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(f"--endpoint {url!r}: expected http(s)://host[:port][/v1]")
    return url + "/v1" if parts.path in ("", "/") else url


class Endpoint:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 300.0,
                 retries: int = 4, backoff: float = 0.5):
        self.url = base_url(url)
        self.api_key, self.timeout, self.retries, self.backoff = api_key, timeout, retries, backoff
        parts = urllib.parse.urlsplit(self.url)
        self._https, self._host, self._path = parts.scheme == "https", parts.netloc, parts.path

    def _attempt(self, method: str, path: str, body: dict | None) -> dict:
        deadline = time.monotonic() + self.timeout
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.request(method, self._path + path,
                         body=None if body is None else json.dumps(body), headers=headers)
            sock = conn.sock  # the response keeps using it after a `Connection: close`
            sock.settimeout(max(1e-3, deadline - time.monotonic()))
            resp = conn.getresponse()
            data = bytearray()
            while True:  # read against the deadline, so a trickling answer cannot stall us
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                piece = resp.read1(1 << 16)
                if not piece:
                    break
                data += piece
        except TimeoutError:
            raise RetryableError(f"no complete answer within {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise RetryableError(f"connection failed ({type(e).__name__}: {e})") from None
        finally:
            conn.close()
        text = data.decode("utf-8", "replace")
        if resp.status in RETRY_STATUS:
            raise RetryableError(f"HTTP {resp.status}: {text[:200]}")
        if resp.status >= 400:
            raise EndpointError(f"{self.url}{path} refused the request (HTTP {resp.status}): "
                                f"{text[:300]}")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise RetryableError(f"the answer is not JSON: {text[:200]!r}") from None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request with retries; raises RetryableError once they run out."""
        for attempt in range(self.retries + 1):
            try:
                return self._attempt(method, path, body)
            except RetryableError as e:
                if attempt == self.retries:
                    raise RetryableError(f"{e} (after {attempt + 1} attempts)") from None
                delay = min(30.0, self.backoff * 2 ** attempt)
                time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def default_model(self) -> str:
        """The first model the server lists (what `--endpoint` without `--model` asks)."""
        try:
            data = self.call("GET", "/models").get("data") or []
        except RetryableError as e:
            raise EndpointError(f"{self.url}/models: {e}") from None
        if not data or not isinstance(data[0], dict) or "id" not in data[0]:
            raise EndpointError(f"{self.url}/models lists no model: pass --model NAME")
        return data[0]["id"]


@dataclass
class Job:
    task_id: str
    prompt: str
    samples: list[int]  # the sample indices this answer fills (all n of a greedy task)
    seed: int | None


def endpoint_samples(client: Endpoint, model: str, jobs: list[Job], stop: list[str],
                     max_tokens: int, temperature: float, top_p: float, concurrency: int,
                     on_row: Callable[[dict], None]) -> list[tuple[str, int, str]]:
    """Run every job; `on_row` gets each finished sample (in this thread). Returns the
    failures as (task_id, sample_idx, error). An EndpointError stops the run at once."""
    def ask(job: Job) -> dict:
        body = {"model": model, "prompt": job.prompt, "max_tokens": max_tokens,
                "temperature": temperature, "top_p": top_p, "n": 1, "stop": stop}
        if job.seed is not None:
            body["seed"] = job.seed
        answer = client.call("POST", "/completions", body)
        choices = answer.get("choices")
        if not choices or not isinstance(choices[0].get("text"), str):
            raise RetryableError(f"an answer without choices[0].text: {str(answer)[:200]}")
        return answer

    failures = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(ask, job): job for job in jobs}
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    answer = future.result()
                except RetryableError as e:
                    failures += [(job.task_id, j, str(e)) for j in job.samples]
                    continue
                choice = answer["choices"][0]
                text, stopped = cut_at_stop(choice["text"], stop)
                tokens = (answer.get("usage") or {}).get("completion_tokens")
                for j in job.samples:
                    on_row({"task_id": job.task_id, "sample_idx": j, "completion": text,
                            "finish_reason": "stop" if stopped else
                            (choice.get("finish_reason") or "stop"),
                            "n_tokens": tokens})
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return failures
