"""A real OpenAI-compatible HTTP server on 127.0.0.1 that replays scripted replies.

The teacher client (`tasks/teacher.py`, the official `openai` package) talks to it over real
HTTP, so retries, timeouts and status-code mapping run for real. A reply is chosen by the
request's `seed` (the teacher sends seed + request index), so concurrent requests get the same
reply whatever their order. `script(seed)` returns either reply text, or an `Answer` (an HTTP
status with an error body, a delay before answering, or both).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    text: str = ""
    status: int = 200
    delay: float = 0.0  # seconds before the answer (a stalled server: longer than the timeout)


class Replay:
    def __init__(self, script: Callable[[int], str | Answer]):
        self.script = script
        self.requests: list[dict] = []  # every request body received, retries included
        self.lock = threading.Lock()

    def answer(self, path: str, body: dict) -> tuple[int, dict, float]:
        with self.lock:
            self.requests.append({"path": path, **body})
        got = self.script(int(body.get("seed", 0)))
        got = got if isinstance(got, Answer) else Answer(got)
        if got.status != 200:
            return got.status, {"error": {"message": f"scripted HTTP {got.status}",
                                          "type": "scripted", "param": None, "code": None}}, \
                got.delay
        common = {"id": "replay-1", "created": 0, "model": body.get("model", ""),
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        if path.endswith("/chat/completions"):
            choice = {"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": got.text}}
            return 200, {**common, "object": "chat.completion", "choices": [choice]}, got.delay
        choice = {"index": 0, "finish_reason": "stop", "text": got.text, "logprobs": None}
        return 200, {**common, "object": "text_completion", "choices": [choice]}, got.delay


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            status, payload, delay = replay.answer(self.path, body)
            time.sleep(delay)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout) while we stalled

    return Handler


@contextmanager
def serve_replay(script: Callable[[int], str | Answer]) -> Iterator[tuple[str, Replay]]:
    """(base URL ending in /v1, the Replay that records requests) while the block runs."""
    replay = Replay(script)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/v1", replay
    finally:
        server.shutdown()
        server.server_close()


def task_reply(prompt: str, solution: str, test: str) -> str:
    """A task as a teacher writes it: some chatter, then one fenced block, function then check."""
    return (f"Here is a new task.\n\n```python\n{prompt}{solution.rstrip()}\n\n\n{test.rstrip()}\n"
            "```\n\nThe check covers an edge case.")
