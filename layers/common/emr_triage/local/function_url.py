"""A Lambda function URL on 127.0.0.1: real HTTP requests in, the handler's event (payload format 2.0)
out, and its answer back as the HTTP response, as Lambda's URL endpoint does.

The event's shape is Lambda's (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html):
lower-cased headers, ``requestContext.http.method``, the body base64-encoded unless it is text
(``text/*``, JSON, XML), ``isBase64Encoded`` saying which. Tests post signed Slack requests to it; the
replay command builds the same events without a socket (:func:`url_event`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def url_event(
    method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The event a function URL hands the function for one HTTP request."""
    parts = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    text = lowered.get("content-type", "").startswith(_TEXT_TYPES)
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "emr-triage-local",
            "domainName": lowered.get("host", "localhost"),
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode("utf-8", "replace") if text else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not text,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        event = url_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        try:
            answer = self.server.invoke(event)
        except Exception as exc:  # Lambda answers 502 for a function that raised
            answer = {"statusCode": 502, "body": json.dumps({"Message": f"{type(exc).__name__}: {exc}"})}
        status = int(answer.get("statusCode", 200))
        raw = str(answer.get("body") or "")
        data = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode("utf-8")
        self.send_response(status)
        headers = answer.get("headers") or {}
        for key, value in headers.items():
            if key.lower() != "content-length":
                self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.invoke = invoke
        self.lock = threading.Lock()


class FunctionUrl:
    """``with FunctionUrl(invoke) as url:`` serves ``invoke(event) -> response`` at ``url``, one request
    at a time (a function's environment is the process's)."""

    def __init__(self, invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        def serial(event: dict[str, Any]) -> dict[str, Any]:
            with self._server.lock:
                return invoke(event)

        self._server = _Server(serial)
        host, port = self._server.server_address[0], self._server.server_address[1]
        self.url = f"http://{host!s}:{port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
