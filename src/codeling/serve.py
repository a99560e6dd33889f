"""`codeling serve`: an OpenAI-compatible HTTP server for a checkpoint.

Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions. Parameters:
max_tokens, temperature, top_p, stop (a string or a list), n, seed; `stream` and `echo` are
refused. Errors use OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with 400
for a bad request and 404 for an unknown path or model. Requests are served one at a time
(one lock around the model), each batched over its prompts × n.

Chat template ("plain"): codeling is a code-completion model, and SFT trains it on the same
plain prompt → completion shape that evaluation uses, so a chat request is answered by
completing the content of its last user message, as is. System and earlier messages are not
shown to the model (they would only be text it never saw in that role). The assistant's
message is the completion.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from codeling.generate import complete, load_for_inference, resolve_device
from codeling.model import CodelingLM
from codeling.tokenizer import CodelingTokenizer

MAX_BODY = 8 << 20
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
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return stop
    raise RequestError("'stop' must be a string or a list of at most 4 strings", "stop")


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
    """The model behind a lock, and the OpenAI request → response mapping (no HTTP here)."""

    def __init__(self, model: CodelingLM, tokenizer: CodelingTokenizer, model_name: str):
        self.model, self.tokenizer, self.model_name = model, tokenizer, model_name
        self.created = int(time.time())
        self.lock = threading.Lock()

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model",
                                             "created": self.created, "owned_by": "codeling"}]}

    def _run(self, body: dict, prompts: Sequence[str], kind: str) -> tuple[list, dict]:
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise RequestError(f"The model '{model}' does not exist; this server has "
                               f"'{self.model_name}'", "model", 404, "model_not_found")
        for name in ("stream", "echo"):
            if body.get(name):
                raise RequestError(f"'{name}' is not supported by codeling serve", name)
        n = _integer(body, "n", 1, 1)
        if n > 64:
            raise RequestError(f"'n' must be at most 64, got {n}", "n")
        max_tokens = _integer(body, "max_completion_tokens", None, 1)
        max_tokens = _integer(body, "max_tokens", max_tokens or DEFAULT_MAX_TOKENS[kind], 1)
        limit = self.model.config.max_seq_len - 1
        if max_tokens > limit:
            raise RequestError(f"'max_tokens' {max_tokens} exceeds this model's limit of "
                               f"{limit}", "max_tokens")
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0) or 1e-9  # top_p 0: only the top token
        seed = _integer(body, "seed", None, 0)
        with self.lock:
            done = complete(self.model, self.tokenizer, [p for p in prompts for _ in range(n)],
                            max_tokens, temperature, top_p, _stop(body), seed)
        prompt_tokens = sum(done[i * n].prompt_tokens for i in range(len(prompts)))
        completion_tokens = sum(c.completion_tokens for c in done)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        return done, usage

    def completions(self, body: dict) -> dict:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if (not isinstance(prompts, list) or not prompts
                or not all(isinstance(p, str) for p in prompts)):
            raise RequestError("'prompt' must be a string or a non-empty list of strings",
                               "prompt")
        done, usage = self._run(body, prompts, "completions")
        choices = [{"index": i, "text": c.text, "logprobs": None,
                    "finish_reason": c.finish_reason} for i, c in enumerate(done)]
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": self.model_name, "choices": choices,
                "usage": usage}

    def chat(self, body: dict) -> dict:
        done, usage = self._run(body, [chat_prompt(body.get("messages"))], "chat")
        choices = [{"index": i, "message": {"role": "assistant", "content": c.text},
                    "logprobs": None, "finish_reason": c.finish_reason}
                   for i, c in enumerate(done)]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": self.model_name, "choices": choices,
                "usage": usage}


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

    def do_GET(self) -> None:
        if self._path() in ("/v1/models", "/models"):
            self._send(200, self.server.app.models())  # type: ignore[attr-defined]
        else:
            self._error(RequestError(f"Invalid URL (GET {self.path})", status=404))

    def do_POST(self) -> None:
        app: CompletionServer = self.server.app  # type: ignore[attr-defined]
        routes = {"/v1/completions": app.completions, "/v1/chat/completions": app.chat}
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
            route = routes.get(self._path())
            if route is None:
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
            self._send(200, route(payload))
        except RequestError as e:
            self._error(e)
        except ValueError as e:  # complete()'s own argument checks
            self._error(RequestError(str(e)))
        except Exception as e:  # a bug must still answer in OpenAI's shape, not hang the client
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {
                "message": f"{type(e).__name__}: {e}", "type": "server_error", "param": None,
                "code": None}})

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def make_server(model: CodelingLM, tokenizer: CodelingTokenizer, host: str = "127.0.0.1",
                port: int = 0, model_name: str = "codeling", quiet: bool = False
                ) -> ThreadingHTTPServer:
    """A bound server (port 0: a free one, see `server.server_address`); call serve_forever."""
    handler = type("CodelingHandler", (Handler,), {"quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.app = CompletionServer(model.eval(), tokenizer, model_name)  # type: ignore[attr-defined]
    return server


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint dir (or a LoRA adapter dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: pick a free port")
    p.add_argument("--model-name", default=None,
                   help="the id clients pass as `model` (default: the checkpoint dir's name)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--quiet", action="store_true", help="no access log")


def main(args) -> int:
    model, tokenizer = load_for_inference(args.checkpoint, resolve_device(args.device))
    name = args.model_name or Path(args.checkpoint).resolve().name
    server = make_server(model, tokenizer, args.host, args.port, name, args.quiet)
    host, port = server.server_address[:2]
    print(f"codeling serve: model '{name}' at http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
