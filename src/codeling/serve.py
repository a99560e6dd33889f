"""`codeling serve`: an OpenAI-compatible HTTP server for a checkpoint.

Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions. Parameters:
max_tokens, temperature, top_p, stop (a string or a list of up to 16), n, seed, stream (with
stream_options.include_usage), and vLLM's ignore_eos; `echo` is refused. Errors use OpenAI's
shape, {"error": {"message", "type", "param", "code"}}, with 400 for a bad request and 404 for
an unknown path or model.

Concurrency: every request's sequences go to one `engine.Engine`, whose scheduler thread steps
all live sequences of all requests as one batch (continuous batching: a request joins at the
next step, not after the others finish). `stream: true` answers with server-sent events in
OpenAI's format (`data: {chunk}` lines, then `data: [DONE]`), sent as tokens are made; text that
might still turn into a stop sequence is held back until it cannot. A client that disconnects,
streaming or not, is noticed within a step or a quarter second, and its sequences leave the
batch, freeing their slots.

Chat template ("plain"): codeling is a code-completion model, and SFT trains it on the same
plain prompt → completion shape that evaluation uses, so a chat request is answered by
completing the content of its last user message, as is. System and earlier messages are not
shown to the model (they would only be text it never saw in that role). The assistant's
message is the completion.
"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from codeling.engine import Engine, Params, Request
from codeling.generate import Completion, load_for_inference, resolve_device
from codeling.model import CodelingLM
from codeling.tokenizer import CodelingTokenizer

MAX_BODY = 8 << 20
MAX_STOP = 16  # OpenAI allows 4; benchmarks need 5-6 (vLLM and llama.cpp take any number)
DEFAULT_MAX_TOKENS = {"completions": 16, "chat": 256}  # OpenAI's legacy default; chat: ours


class RequestError(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"'{name}' must be a number in [{low}, {high}], got {value!r}", name)
    return float(value)


def _integer(body: dict, name: str, default: int | None, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RequestError(f"'{name}' must be an integer >= {low}, got {value!r}", name)
    return value


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        return stop
    raise RequestError(f"'stop' must be a string or a list of at most {MAX_STOP} strings",
                       "stop")


def chat_prompt(messages: object) -> str:
    """The "plain" chat template: the content of the last user message."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError("each message needs a 'role' and a 'content'", "messages")
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise RequestError("no message with role 'user'", "messages")
    content = users[-1].get("content")
    if isinstance(content, list):  # the content-parts form: keep its text parts
        content = "".join(p.get("text", "") for p in content
                          if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str):
        raise RequestError("a user message's 'content' must be a string", "messages")
    return content


class CompletionServer:
    """The OpenAI request → engine → response mapping (no HTTP here)."""

    def __init__(self, model: CodelingLM, tokenizer: CodelingTokenizer, model_name: str,
                 max_batch: int = 32):
        self.model, self.tokenizer, self.model_name = model, tokenizer, model_name
        self.created = int(time.time())
        self.engine = Engine(model, tokenizer, max_batch)

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model",
                                             "created": self.created, "owned_by": "codeling"}]}

    def submit(self, body: dict, prompts: Sequence[str], kind: str) -> tuple[Request, int]:
        """Check the parameters and queue the request; returns it and n."""
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise RequestError(f"The model '{model}' does not exist; this server has "
                               f"'{self.model_name}'", "model", 404, "model_not_found")
        if body.get("echo"):
            raise RequestError("'echo' is not supported by codeling serve", "echo")
        n = _integer(body, "n", 1, 1)
        if n > 64:
            raise RequestError(f"'n' must be at most 64, got {n}", "n")
        max_tokens = _integer(body, "max_completion_tokens", None, 1)
        max_tokens = _integer(body, "max_tokens", max_tokens or DEFAULT_MAX_TOKENS[kind], 1)
        limit = self.model.config.max_seq_len - 1
        if max_tokens > limit:
            raise RequestError(f"'max_tokens' {max_tokens} exceeds this model's limit of "
                               f"{limit}", "max_tokens")
        params = Params(max_tokens=max_tokens,
                        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
                        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1e-9,  # 0: top token
                        stop=_stop(body), seed=_integer(body, "seed", None, 0),
                        ignore_eot=bool(body.get("ignore_eos")), stream=bool(body.get("stream")))
        return self.engine.submit(prompts, n, params), n

    @staticmethod
    def usage(done: list[Completion], n: int) -> dict:
        prompt_tokens = sum(done[i].prompt_tokens for i in range(0, len(done), n))
        completion_tokens = sum(c.completion_tokens for c in done)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def close(self) -> None:
        self.engine.close()


def completion_prompts(body: dict) -> list[str]:
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if (not isinstance(prompts, list) or not prompts
            or not all(isinstance(p, str) for p in prompts)):
        raise RequestError("'prompt' must be a string or a non-empty list of strings", "prompt")
    return prompts


class Reply:
    """OpenAI's object shapes for one request: whole responses and stream chunks."""

    def __init__(self, kind: str, model_name: str):
        self.kind, self.model = kind, model_name
        chat = kind == "chat"
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _wrap(self, obj: str, choices: list, **extra) -> dict:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "choices": choices, **extra}

    def whole(self, done: list[Completion], usage: dict) -> dict:
        if self.kind == "chat":
            choices = [{"index": i, "message": {"role": "assistant", "content": c.text},
                        "logprobs": None, "finish_reason": c.finish_reason}
                       for i, c in enumerate(done)]
            return self._wrap("chat.completion", choices, usage=usage)
        choices = [{"index": i, "text": c.text, "logprobs": None,
                    "finish_reason": c.finish_reason} for i, c in enumerate(done)]
        return self._wrap("text_completion", choices, usage=usage)

    def chunk(self, index: int, text: str | None, finish: str | None = None,
              role: bool = False) -> dict:
        if self.kind == "chat":
            delta = {} if text is None else {"content": text}
            if role:
                delta = {"role": "assistant", **delta}
            return self._wrap("chat.completion.chunk", [{"index": index, "delta": delta,
                                                         "logprobs": None,
                                                         "finish_reason": finish}])
        return self._wrap("text_completion", [{"index": index, "text": text or "",
                                               "logprobs": None, "finish_reason": finish}])

    def usage_chunk(self, usage: dict) -> dict:
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return self._wrap(obj, [], usage=usage)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
    quiet = False

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: RequestError) -> None:
        kind = "not_found_error" if e.status == 404 else "invalid_request_error"
        self._send(e.status, {"error": {"message": str(e), "type": kind, "param": e.param,
                                        "code": e.code}})

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _client_gone(self) -> bool:
        """The peer closed its end (a readable socket with nothing to read)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_GET(self) -> None:
        if self._path() in ("/v1/models", "/models"):
            self._send(200, self.server.app.models())  # type: ignore[attr-defined]
        else:
            self._error(RequestError(f"Invalid URL (GET {self.path})", status=404))

    def _body(self, kind: str | None) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
        if kind is None:
            raise RequestError(f"Invalid URL (POST {self.path})", status=404)
        if length > MAX_BODY:
            self.close_connection = True  # its body was left unread on the socket
            raise RequestError(f"request body over {MAX_BODY} bytes")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RequestError(f"the request body is not valid JSON ({e})") from e
        if not isinstance(payload, dict):
            raise RequestError("the request body must be a JSON object")
        return payload

    def do_POST(self) -> None:
        app: CompletionServer = self.server.app  # type: ignore[attr-defined]
        kinds = {"/v1/completions": "completions", "/v1/chat/completions": "chat"}
        try:
            kind = kinds.get(self._path())
            body = self._body(kind)
            prompts = (completion_prompts(body) if kind == "completions"
                       else [chat_prompt(body.get("messages"))])
            req, n = app.submit(body, prompts, kind)
        except RequestError as e:
            return self._error(e)
        except ValueError as e:  # the engine's own argument checks
            return self._error(RequestError(str(e)))
        reply = Reply(kind, app.model_name)
        events = req.iter_events(gone=self._client_gone)
        try:
            if body.get("stream"):
                options = body.get("stream_options") or {}
                self._stream(reply, events, len(req.rows), n,
                             bool(options.get("include_usage")))
            else:
                done = sorted(((i, c) for kind_, i, c in events if kind_ == "done"))
                if len(done) == len(req.rows):  # else the client went away: nobody to answer
                    finished = [c for _, c in done]
                    self._send(200, reply.whole(finished, app.usage(finished, n)))
        except (BrokenPipeError, ConnectionResetError):
            req.cancel()  # the client hung up mid-stream: free its slots
            self.close_connection = True
        except Exception as e:  # a bug must still answer in OpenAI's shape, not hang the client
            req.cancel()
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {
                "message": f"{type(e).__name__}: {e}", "type": "server_error", "param": None,
                "code": None}})

    def _stream(self, reply: Reply, events: Iterator, total: int, n: int,
                include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(payload: str) -> None:
            data = f"data: {payload}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        if reply.kind == "chat":  # OpenAI's first chunk of each chat choice carries the role
            for i in range(total):
                send(json.dumps(reply.chunk(i, "", role=True)))
        done: dict[int, Completion] = {}
        try:
            for kind, index, value in events:
                if kind == "delta":
                    send(json.dumps(reply.chunk(index, value)))
                else:
                    done[index] = value
                    send(json.dumps(reply.chunk(index, None, value.finish_reason)))
        except RuntimeError as e:  # the engine failed: the headers are out, so say it in-band
            send(json.dumps({"error": {"message": str(e), "type": "server_error",
                                       "param": None, "code": None}}))
            self.close_connection = True
        if include_usage and len(done) == total:
            finished = [done[i] for i in sorted(done)]
            send(json.dumps(reply.usage_chunk(CompletionServer.usage(finished, n))))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    app: CompletionServer

    def server_close(self) -> None:
        super().server_close()
        self.app.close()


def make_server(model: CodelingLM, tokenizer: CodelingTokenizer, host: str = "127.0.0.1",
                port: int = 0, model_name: str = "codeling", quiet: bool = False,
                max_batch: int = 32) -> Server:
    """A bound server (port 0: a free one, see `server.server_address`) whose engine thread is
    running; call serve_forever, and server_close to stop the engine."""
    handler = type("CodelingHandler", (Handler,), {"quiet": quiet})
    server = Server((host, port), handler)
    server.app = CompletionServer(model.eval(), tokenizer, model_name, max_batch)
    return server


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint dir (or a LoRA adapter dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: pick a free port")
    p.add_argument("--model-name", default=None,
                   help="the id clients pass as `model` (default: the checkpoint dir's name)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--max-batch", type=int, default=32,
                   help="sequences stepped together at most; more requests wait for a slot")
    p.add_argument("--quiet", action="store_true", help="no access log")


def main(args) -> int:
    model, tokenizer = load_for_inference(args.checkpoint, resolve_device(args.device))
    name = args.model_name or Path(args.checkpoint).resolve().name
    server = make_server(model, tokenizer, args.host, args.port, name, args.quiet,
                         args.max_batch)
    host, port = server.server_address[:2]
    print(f"codeling serve: model '{name}' at http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
