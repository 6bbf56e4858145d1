"""A fake Slack Web API served over HTTP on 127.0.0.1, for the real slack-sdk WebClient to talk to.

It implements what emr-triage calls (chat.postMessage, chat.update, the three-step files upload,
conversations.history, and for the interactive function chat.postEphemeral and usergroups.users.list)
with Slack's response shapes and error codes, records every request, and can be told to fail the next
calls of a method (HTTP 429 with Retry-After, 5xx, a Slack error code, a delay longer than the client's
timeout, or a connection dropped without an answer). Messages keep their ``metadata``; every Web API
answer to a valid token names the token's scopes in ``x-oauth-scopes``.

The same server also plays Slack's incoming webhooks (``POST /services/T…/B…/secret``, for slack-sdk's
WebhookClient): they answer in plain text (``ok``, ``no_service``, ``invalid_payload``), not JSON, and
their faults are scripted under the method name ``"webhook"``.
"""

from __future__ import annotations

import json
import secrets
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
    path: str = ""  # the request path (incoming webhooks: which hook was called)
    at: float = field(default_factory=time.monotonic)  # when the request arrived (time.monotonic())


@dataclass
class Fault:
    """What the next call of a method gets. ``passthrough``: only the delay, then normal behaviour.

    ``text`` answers with a plain-text body instead of JSON, as incoming webhooks do (``"no_service"``);
    a webhook fault without ``body`` or ``text`` answers with the text Slack gives for its status.
    """

    status: int = 200
    body: dict[str, Any] | None = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    passthrough: bool = False
    # Close the connection without answering (after the delay; with passthrough, after doing the call).
    drop: bool = False


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None
    edits: int = 0
    metadata: dict[str, Any] | None = None


# What Slack's incoming webhooks answer, in plain text, for a status when a fault gives no body.
_WEBHOOK_STATUS_TEXT = {
    200: "ok",
    400: "invalid_payload",
    403: "invalid_token",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
}
WEBHOOK_PREFIX = "/services/"
# The status _Handler answers with no response at all: the connection is closed (Fault(drop=True)).
DROP = 0
# The bot token's scopes (x-oauth-scopes), unless a test gives others.
DEFAULT_SCOPES = frozenset({"chat:write", "files:write", "channels:history", "groups:history"})


class FakeSlack:
    """State and behaviour of the fake workspace."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.valid_tokens = {token}
        self.channels = {
            "#emr-alerts": "C0EMRALRT",
            "#data-platform-alerts": "C0DATAPLT",
            "#ml-platform-alerts": "C0MLPLATF",
            "#prod-data-alerts": "C0PRODDAT",
        }
        self.not_in_channel: set[str] = set()
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        self.private_channels: set[str] = set()  # channel ids whose history needs groups:history
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        # Message ts: seconds since the epoch, as Slack's, one second apart (unique), from when the fake starts.
        self._ts = int(time.time())
        self.base_url = ""
        self.url = ""
        # Incoming webhooks: hook path (/services/T…/B…/secret) -> the channel id it posts to.
        self.webhooks: dict[str, str] = {}
        self.webhook_posts: list[dict[str, Any]] = []
        # chat.postEphemeral messages (channel, user, text), and user groups (id -> member user ids).
        self.ephemerals: list[dict[str, str]] = []
        self.usergroups: dict[str, set[str]] = {}
        self._default_webhook = self._new_webhook_path("C0EMRALRT")

    # -- incoming webhooks ----------------------------------------------------------------------------
    def _new_webhook_path(self, channel_id: str) -> str:
        path = f"{WEBHOOK_PREFIX}T0EMRTRIAG/B{len(self.webhooks) + 1:09d}/{secrets.token_hex(12)}"
        self.webhooks[path] = channel_id
        return path

    @property
    def webhook_url(self) -> str:
        """The URL of the workspace's default incoming webhook (posting to #emr-alerts)."""
        return self.base_url.rstrip("/") + self._default_webhook

    def add_webhook(self, channel: str = "#emr-alerts") -> str:
        """Create another incoming webhook (a rotated URL, another channel); returns its URL."""
        channel_id = self._channel_id(channel)
        if channel_id is None:
            raise ValueError(f"unknown channel {channel}")
        with self._lock:
            return self.base_url.rstrip("/") + self._new_webhook_path(channel_id)

    def remove_webhook(self, url: str) -> None:
        """Delete an incoming webhook: posting to it then gets ``404 no_service``, as in Slack."""
        with self._lock:
            self.webhooks.pop(urlparse(url).path, None)

    def webhook_calls(self) -> list[Call]:
        """Every request to an incoming webhook, accepted or not (retries included)."""
        return self.calls_to("webhook")

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

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            fault = self._faults[method].popleft() if self._faults[method] else None
        if fault is not None and fault.passthrough and not fault.drop:
            time.sleep(fault.delay)
            return None
        return fault

    def _dropped(
        self, fault: Fault, method: str, payload: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any] | str, dict[str, str], float]:
        """A connection closed without an answer, after the delay, and after doing the call with passthrough
        (Slack posted, the answer never came)."""
        time.sleep(fault.delay)
        if fault.passthrough and token in self.valid_tokens:
            with self._lock:
                self._dispatch(method, payload)
        return DROP, {}, {}, 0.0

    def _scope_headers(self) -> dict[str, str]:
        """Slack names the token's scopes on every Web API answer."""
        return {"x-oauth-scopes": ",".join(sorted(self.scopes))}

    def handle(
        self, method: str, payload: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any] | str, dict[str, str], float]:
        fault = self._next_fault(method)
        if fault is not None and fault.drop:
            return self._dropped(fault, method, payload, token)
        if fault is not None:
            body: dict[str, Any] | str = {"ok": False, "error": "fault"}
            if fault.text is not None:
                body = fault.text
            elif fault.body is not None:
                body = fault.body
            return fault.status, body, fault.headers, fault.delay
        if token not in self.valid_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}, 0.0
        with self._lock:
            answer, headers = self._dispatch(method, payload)
        return 200, answer, {**self._scope_headers(), **headers}, 0.0

    def handle_webhook(self, path: str, raw: str) -> tuple[int, dict[str, Any] | str, dict[str, str], float]:
        """An incoming-webhook request: (status, plain-text body, headers, delay before answering)."""
        fault = self._next_fault("webhook")
        if fault is not None:
            body: dict[str, Any] | str
            if fault.text is not None:
                body = fault.text
            elif fault.body is not None:
                body = fault.body
            else:
                body = _WEBHOOK_STATUS_TEXT.get(fault.status, "internal_error" if fault.status >= 500 else "fault")
            return fault.status, body, fault.headers, fault.delay
        with self._lock:
            channel_id = self.webhooks.get(path)
        if channel_id is None:
            return 404, "no_service", {}, 0.0
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            return 400, "invalid_payload", {}, 0.0
        if not isinstance(payload, dict) or not isinstance(payload.get("blocks", []), list):
            return 400, "invalid_payload", {}, 0.0
        if not payload.get("text") and not payload.get("blocks"):
            return 400, "no_text", {}, 0.0
        with self._lock:
            self.webhook_posts.append(payload)
            self._ts += 1
            ts = f"{self._ts}.000100"
            self.messages[(channel_id, ts)] = Message(
                channel_id, ts, str(payload.get("text", "")), payload.get("blocks") or []
            )
        return 200, "ok", {}, 0.0

    def _dispatch(self, method: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if method in ("chat.postEphemeral", "usergroups.users.list"):
            return self._people(method, payload), {}
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
            message.metadata = _metadata(payload.get("metadata"))
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
            if payload.get("metadata") is not None:
                message.metadata = _metadata(payload.get("metadata"))
            return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}, {}
        if method == "conversations.history":
            return self._history(payload), {}
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

    # -- what people see alone, and who is in a group (the interactive function) ----------------------
    def _people(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "usergroups.users.list":
            group = str(payload.get("usergroup", ""))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": sorted(self.usergroups[group])}
        channel = self._channel_id(str(payload.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not payload.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        self.ephemerals.append({"channel": channel, "user": str(payload["user"]), "text": str(payload.get("text", ""))})
        return {"ok": True, "message_ts": f"{self._ts}.000200"}

    def _history(self, payload: dict[str, Any]) -> dict[str, Any]:
        """conversations.history: a channel's root messages (not thread replies) between ``oldest`` and
        ``latest`` (exclusive), newest first, at most ``limit``; their metadata with include_all_metadata.
        It takes a channel id (a name is channel_not_found), and channels:history (groups:history for a
        private channel)."""
        channel = str(payload.get("channel", ""))
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        needed = "groups:history" if channel in self.private_channels else "channels:history"
        if needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(sorted(self.scopes))}
        oldest = float(payload.get("oldest") or 0)
        latest = float(payload.get("latest") or time.time() + 86_400)
        limit = int(payload.get("limit") or 100)
        metadata = str(payload.get("include_all_metadata", "")).lower() in ("1", "true")
        roots = sorted(
            (m for m in self.messages.values() if m.channel == channel and not m.thread_ts),
            key=lambda m: float(m.ts),
            reverse=True,
        )
        window = [m for m in roots if oldest < float(m.ts) < latest]
        messages = []
        for m in window[:limit]:
            item: dict[str, Any] = {"type": "message", "bot_id": "B0EMRTRIAG", "text": m.text, "ts": m.ts}
            if m.blocks:
                item["blocks"] = m.blocks
            if metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            messages.append(item)
        return {
            "ok": True,
            "messages": messages,
            "has_more": len(window) > limit,
            "pin_count": 0,
            "response_metadata": {"next_cursor": ""},
        }


def _metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata as sent: a JSON object (chat.postMessage's JSON body) or its text (a form body)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_bytes = self.rfile.read(length)
        raw = raw_bytes.decode("utf-8", "replace")
        path = urlparse(self.path).path
        fake = self.server.fake
        if path.startswith(WEBHOOK_PREFIX):
            try:
                payload = json.loads(raw or "{}")
            except json.JSONDecodeError:
                payload = {}
            fake.calls.append(Call("webhook", payload if isinstance(payload, dict) else {}, None, raw, path))
            status, body, headers, delay = fake.handle_webhook(path, raw)
            if delay:
                time.sleep(delay)
            self._send(status, body, headers)
            return
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[-1]
            if file_id in fake.uploads:
                fake.uploads[file_id]["content"] = raw
                fake.uploads[file_id]["bytes"] = raw_bytes
            self._send(200, {"ok": True} if file_id in fake.uploads else {"ok": False}, {})
            return
        method = path.rsplit("/", 1)[-1]
        if "json" in (self.headers.get("Content-Type") or ""):
            payload = json.loads(raw or "{}")
        else:
            payload = {k: v[0] for k, v in parse_qs(raw).items()}
        # slack-sdk sends the arguments of GET-style methods (conversations.history) in the query string.
        payload = {**{k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}, **payload}
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else payload.get("token")
        fake.calls.append(Call(method, payload, token, raw, path))
        status, body, headers, delay = fake.handle(method, payload, token)
        if delay:
            time.sleep(delay)
        if status == DROP:
            self.close_connection = True  # no answer: the client sees the connection closed
            return
        self._send(status, body, headers)

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
        # Web API methods answer in JSON; incoming webhooks (and text faults) in plain text.
        text = isinstance(body, str)
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json; charset=utf-8")
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
    """Start with ``with FakeSlackServer() as slack:``; point WebClient at ``slack.url`` and WebhookClient
    at ``slack.webhook_url``."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.fake = FakeSlack(token)
        self._server = _Server(self.fake)
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        self.url = f"http://{host}:{port}/api/"
        self.fake.base_url = f"http://{host}:{port}/"
        self.fake.url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def webhook_url(self) -> str:
        """The URL of the default incoming webhook on this server."""
        return self.fake.webhook_url

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
