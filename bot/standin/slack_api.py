"""A stand-in for Slack's Web API: a real HTTP server on port 0 that records every call.

Also serves response_url endpoints (`/response/<id>`), and can rate-limit a method with a
429 and Retry-After, the way Slack does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """Start with `start()`; `api_url` is what SLACK_API_URL should be."""

    def __init__(self, *, team: str = "T0TEAM", bot_user: str = "U0IRBOT") -> None:
        self.team = team
        self.bot_user = bot_user
        self.calls: list[Call] = []
        self.responses: list[Call] = []  # posts to response_url
        self.usergroups: dict[str, list[str]] = {}
        self.rate_limits: dict[str, float] = {}  # method -> Retry-After seconds, once
        # method -> (calls, per seconds): more than that in the window is answered 429
        self.throttles: dict[str, tuple[int, float]] = {}
        self._recent: dict[str, list[float]] = {}
        self.fail_methods: dict[str, str] = {}  # method -> Slack error code
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.socket_url = ""  # what apps.connections.open hands out (Socket Mode)
        self.uploads: dict[str, bytes] = {}  # file id -> bytes uploaded
        self.files: dict[str, dict[str, Any]] = {}  # file id -> name, title, channel, thread
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                self._reply(path, {k: v[0] for k, v in parse_qs(query).items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                if self.path.startswith("/upload/"):  # files.getUploadURLExternal's URL
                    with fake._cond:
                        fake.uploads[self.path.rsplit("/", 1)[-1]] = data
                        fake._cond.notify_all()
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                raw = data.decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                self._reply(self.path, args)

            def _reply(self, path: str, args: dict[str, Any]) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                status, headers, body = fake._handle(path, args, token)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                payload = json.dumps(body).encode()
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- inspection --------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until predicate() is truthy (re-checked on every call); return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._lock.release()
                try:
                    value = predicate()
                finally:
                    self._lock.acquire()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting; calls: {self.summary()}")
                self._cond.wait(min(left, 0.5))

    def summary(self) -> list[str]:
        return [f"{c.method}:{str(c.args.get('text', ''))[:80]}" for c in self.calls] + [
            f"response:{str(c.args.get('text', ''))[:80]}" for c in self.responses]

    def thread_messages(self, channel: str, ts: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.args for c in self.calls
                    if c.method == "chat.postMessage" and c.args.get("thread_ts") == ts
                    and c.args.get("channel") == channel]

    # --- behaviour ---------------------------------------------------------------------
    def _handle(self, path: str, args: dict[str, Any], token: str
                ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._cond:
            try:
                if path.startswith("/response/"):
                    self.responses.append(Call(path.rsplit("/", 1)[-1], args, token))
                    return 200, {}, {"ok": True}
                method = path.removeprefix("/api/")
                if method in self.rate_limits:
                    retry = self.rate_limits.pop(method)
                    self.calls.append(Call(method + "#429", args, token))
                    return 429, {"Retry-After": str(int(retry))}, {"ok": False,
                                                                   "error": "ratelimited"}
                if method in self.throttles and self._over_limit(method):
                    self.calls.append(Call(method + "#429", args, token))
                    return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
                self.calls.append(Call(method, args, token))
                if method in self.fail_methods:
                    return 200, {}, {"ok": False, "error": self.fail_methods[method]}
                return 200, {}, self._answer(method, args)
            finally:
                self._cond.notify_all()

    def _over_limit(self, method: str) -> bool:
        """Count the call in its sliding window; True when the window is full."""
        limit, per = self.throttles[method]
        now = time.monotonic()
        recent = [t for t in self._recent.get(method, []) if now - t < per]
        if len(recent) >= limit:
            self._recent[method] = recent
            return True
        self._recent[method] = [*recent, now]
        return False

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team_id": self.team, "user_id": self.bot_user,
                    "bot_id": "B0IRBOT", "url": "https://fake.slack.test/"}
        if method == "chat.postMessage":
            ts = f"{1700000000 + next(self._ts)}.000100"
            channel = str(args.get("channel"))
            self.messages[(channel, ts)] = dict(args)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, **args}}
        if method == "chat.update":
            key = (str(args.get("channel")), str(args.get("ts")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = {**self.messages[key], **args}
            return {"ok": True, "channel": key[0], "ts": key[1]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", "")).replace(".", "")
            return {"ok": True, "permalink": f"https://fake.slack.test/archives/"
                                             f"{args.get('channel')}/p{ts}"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            self.files[file_id] = {"filename": args.get("filename"),
                                   "length": int(args.get("length", 0))}
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}",
                    "file_id": file_id}
        if method == "files.completeUploadExternal":
            listed = args.get("files")
            listed = json.loads(listed) if isinstance(listed, str) else listed or []
            done = []
            for item in listed:
                entry = self.files.setdefault(item["id"], {})
                entry.update(title=item.get("title"), channel=args.get("channel_id"),
                             thread_ts=args.get("thread_ts"),
                             comment=args.get("initial_comment"),
                             content=self.uploads.get(item["id"], b""))
                done.append({"id": item["id"], "title": item.get("title")})
            return {"ok": True, "files": done}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup"))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.usergroups[group]}
        return {"ok": True}
