"""A fake OpenAI-compatible chat server for tests (standard library only, 127.0.0.1, a free port).

It answers `POST /v1/chat/completions` from a queue of scripted replies, so the real litellm path can be
tested over HTTP without any hosted model:

    with FakeOpenAIServer() as server:
        server.add_error(429)                                   # rate limited once, then
        server.add_tool_calls([("write_file", {"path": "a.ts", "content": "x"})])
        server.add_text("All done.")
        model = get_model("openai/fake", api_base=server.url, api_key="sk-fake")
        ...
        server.requests[0]["body"]["tools"]                     # what the client sent

When the queue is empty the server answers 400 ("no scripted reply left"), which litellm treats as
non-retryable, so a test that under-scripts fails fast instead of hanging in retries.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class _Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server stops): lets tests provoke client timeouts


class FakeOpenAIServer:
    def __init__(self, model: str = "fake-model"):
        self.model = model
        self.requests: list[dict[str, Any]] = []  # {"path", "headers" (names lower-cased), "body"} in order
        self._replies: deque[_Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Handler threads must not keep the test process (or stop()) waiting, e.g. a hanging reply.
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() (which waits for the serve loop to notice) near-instant.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The api_base to give litellm / `bimpl run --api-base`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- scripting -------------------------------------------------------------------------------

    def add_text(self, text: str, *, prompt_tokens: int = 10, completion_tokens: int = 5) -> None:
        """A plain assistant reply (what a text-protocol model sends, tool calls inside the text)."""
        self._push(
            _Reply(
                body=self._completion(
                    {"role": "assistant", "content": text}, prompt_tokens, completion_tokens
                )
            )
        )

    def add_tool_calls(
        self,
        calls: Iterable[tuple[str, dict[str, Any] | str]],
        *,
        text: str | None = None,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
    ) -> None:
        """A native tool-call reply. Arguments given as a str are sent verbatim (to test broken JSON)."""
        tool_calls = []
        for name, arguments in calls:
            self._counter += 1
            tool_calls.append(
                {
                    "id": f"call_fake_{self._counter}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                    },
                }
            )
        message = {"role": "assistant", "content": text, "tool_calls": tool_calls}
        self._push(_Reply(body=self._completion(message, prompt_tokens, completion_tokens, "tool_calls")))

    def add_error(self, status: int, message: str = "", *, headers: dict[str, str] | None = None) -> None:
        """An HTTP error in OpenAI's error shape, e.g. 429, 500, 401."""
        body = {
            "error": {
                "message": message or f"fake error {status}",
                "type": "fake_error",
                "param": None,
                "code": str(status),
            }
        }
        self._push(_Reply(status=status, body=body, headers=headers or {}))

    def add_hang(self) -> None:
        """Accept the request and never answer, so the client's timeout fires."""
        self._push(_Reply(hang=True))

    def add_raw(self, body: dict[str, Any], status: int = 200) -> None:
        self._push(_Reply(status=status, body=body))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    # ---- internals -------------------------------------------------------------------------------

    def _push(self, reply: _Reply) -> None:
        with self._lock:
            self._replies.append(reply)

    def _completion(
        self, message: dict[str, Any], prompt_tokens: int, completion_tokens: int, finish: str = "stop"
    ) -> dict[str, Any]:
        self._counter += 1
        return {
            "id": f"chatcmpl-fake-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _next_reply(self, path: str, headers: dict[str, str], body: Any) -> _Reply:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            if self._replies:
                return self._replies.popleft()
        return _Reply(
            status=400,
            body={"error": {"message": "FakeOpenAIServer: no scripted reply left", "type": "fake_error"}},
        )


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body: Any = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            headers = {name.lower(): value for name, value in self.headers.items()}  # clients vary the case
            reply = server._next_reply(self.path, headers, body)
            if reply.hang:
                server._stopping.wait()
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self._send(reply.status, reply.body, reply.headers)

    return Handler
