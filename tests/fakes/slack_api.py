"""A fake Slack Web API served over HTTP on 127.0.0.1, for the real slack-sdk WebClient to talk to.

It implements what emr-triage calls (chat.postMessage, chat.update, the three-step files upload) with
Slack's response shapes and error codes, records every request, and can be told to fail the next calls
of a method (HTTP 429 with Retry-After, 5xx, a Slack error code, or a delay longer than the client's
timeout).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Call:
    method: str
    payload: dict[str, Any]
    token: str | None
    raw: str


@dataclass
class Fault:
    """What the next call of a method gets. ``passthrough``: only the delay, then normal behaviour."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    passthrough: bool = False


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None
    edits: int = 0


class FakeSlack:
    """State and behaviour of the fake workspace."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.valid_tokens = {token}
        self.channels = {"#emr-alerts": "C0EMRALRT", "#data-platform-alerts": "C0DATAPLT"}
        self.not_in_channel: set[str] = set()
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = 1763600000
        self.base_url = ""
        self.url = ""

    # -- scripting ------------------------------------------------------------------------------------
    def fail_next(self, method: str, *faults: Fault) -> None:
        with self._lock:
            self._faults[method].extend(faults)

    def root_posts(self) -> list[Call]:
        """chat.postMessage calls that started a message of their own (not thread replies)."""
        return [c for c in self.calls_to("chat.postMessage") if not c.payload.get("thread_ts")]

    def root_messages(self) -> list[Message]:
        """Messages in channels, not in threads."""
        return [m for m in self.messages.values() if not m.thread_ts]

    def thread_replies(self) -> list[Call]:
        return [c for c in self.calls_to("chat.postMessage") if c.payload.get("thread_ts")]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # -- behaviour ------------------------------------------------------------------------------------
    def _channel_id(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel)

    def handle(
        self, method: str, payload: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str], float]:
        with self._lock:
            fault = self._faults[method].popleft() if self._faults[method] else None
        if fault is not None and fault.passthrough:
            time.sleep(fault.delay)
            fault = None
        if fault is not None:
            body = fault.body if fault.body is not None else {"ok": False, "error": "fault"}
            return fault.status, body, fault.headers, fault.delay
        if token not in self.valid_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}, 0.0
        with self._lock:
            return (200, *self._dispatch(method, payload), 0.0)

    def _dispatch(self, method: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if method == "chat.postMessage":
            channel = self._channel_id(str(payload.get("channel", "")))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}, {}
            if channel in self.not_in_channel:
                return {"ok": False, "error": "not_in_channel"}, {}
            self._ts += 1
            ts = f"{self._ts}.000100"
            blocks = payload.get("blocks") or []
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            message = Message(channel, ts, str(payload.get("text", "")), blocks, payload.get("thread_ts"))
            self.messages[(channel, ts)] = message
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text, "ts": ts}}, {}
        if method == "chat.update":
            key = (str(payload.get("channel", "")), str(payload.get("ts", "")))
            if key[0] not in self.channels.values():
                return {"ok": False, "error": "channel_not_found"}, {}
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}, {}
            message = self.messages[key]
            message.text = str(payload.get("text", ""))
            blocks = payload.get("blocks") or []
            message.blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            message.edits += 1
            return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}, {}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.uploads) + 1:08d}"
            self.uploads[file_id] = {
                "filename": payload.get("filename"),
                "length": payload.get("length"),
                "content": None,
            }
            return {"ok": True, "upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}, {}
        if method == "files.completeUploadExternal":
            files = payload.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            for item in files:
                if item["id"] not in self.uploads:
                    return {"ok": False, "error": "file_not_found"}, {}
                self.uploads[item["id"]].update(
                    channel=payload.get("channel_id"),
                    thread_ts=payload.get("thread_ts"),
                    title=item.get("title"),
                )
            return {"ok": True, "files": [{"id": f["id"]} for f in files]}, {}
        return {"ok": False, "error": "unknown_method"}, {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        path = urlparse(self.path).path
        fake = self.server.fake
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[-1]
            if file_id in fake.uploads:
                fake.uploads[file_id]["content"] = raw
            self._send(200, {"ok": True} if file_id in fake.uploads else {"ok": False}, {})
            return
        method = path.rsplit("/", 1)[-1]
        if "json" in (self.headers.get("Content-Type") or ""):
            payload = json.loads(raw or "{}")
        else:
            payload = {k: v[0] for k, v in parse_qs(raw).items()}
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else payload.get("token")
        fake.calls.append(Call(method, payload, token, raw))
        status, body, headers, delay = fake.handle(method, payload, token)
        if delay:
            time.sleep(delay)
        self._send(status, body, headers)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class FakeSlackServer:
    """Start with ``with FakeSlackServer() as slack:``; point WebClient at ``slack.url``."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.fake = FakeSlack(token)
        self._server = _Server(self.fake)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/api/"
        self.fake.base_url = f"http://{host}:{port}/"
        self.fake.url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
