"""Shared machinery for probes: a bounded HTTP client that records evidence, users, and resources."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..auth import AuthConfig, detect_auth, find_token, new_credentials
from ..findings import Evidence, Finding, Severity
from ..openapi_doc import Operation, example_value, fill_path, operations
from .target import ProbeTarget

EXCERPT = 400
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_AUTH_PATH_RE = re.compile(
    r"(log-?in|log-?out|register|sign-?up|sign-?in|token|refresh|password|verify)", re.I
)


class ServerDown(Exception):
    """The backend stopped answering (process gone or port closed)."""


class BudgetExceeded(Exception):
    """This probe (or the whole run) is out of time or requests."""


@dataclass
class Exchange:
    request: str
    response: str


@dataclass
class User:
    ident: str  # the value of the user field (email or username)
    password: str
    token: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    id: Any = None
    register_json: Any = None
    login_json: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class ResourceKind:
    create: Operation  # POST on the collection
    items: list[Operation]  # operations on collection/{param}
    param: str | None  # name of the item path parameter


@dataclass
class Resource:
    kind: ResourceKind
    id: Any
    body: dict
    json: Any
    owner: User | None


def rand(n: int = 8) -> str:
    return secrets.token_hex(n)[:n]


def b64url_json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):
        return None


def jwt_claims(token: str | None) -> dict | None:
    if not token or token.count(".") != 2:
        return None
    claims = b64url_json(token.split(".")[1])
    return claims if isinstance(claims, dict) else None


def find_key(data: Any, keys: tuple[str, ...], depth: int = 0) -> Any:
    """First value under one of `keys` in nested JSON (breadth first)."""
    if depth > 4:
        return None
    if isinstance(data, dict):
        for k in keys:
            if k in data and data[k] not in (None, ""):
                return data[k]
        for v in data.values():
            found = find_key(v, keys, depth + 1)
            if found is not None:
                return found
    return None


def json_of(resp: httpx.Response | None) -> Any:
    if resp is None:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def items_of(data: Any) -> list | None:
    """The list a collection endpoint returned: the body itself or the first list inside an envelope."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for v in data.values():
            if isinstance(v, list):
                return v
    return None


def is_2xx(resp: httpx.Response | None) -> bool:
    return resp is not None and 200 <= resp.status_code < 300


def redact(text: str, secrets_: list[str]) -> str:
    text = JWT_RE.sub("<jwt>", text)
    for s in secrets_:
        if s and len(s) >= 6:
            text = text.replace(s, "<redacted>")
    return text


class Context:
    """One probing run: target, deadline, request budget, users, resources, and evidence of the last requests."""

    def __init__(
        self,
        target: ProbeTarget,
        *,
        deadline: float,
        progress: Callable[[str], None] | None = None,
        request_timeout: float = 8.0,
    ):
        self.target = target
        self.base_url = target.base_url.rstrip("/")
        self.spec = target.openapi
        self.ops = operations(self.spec)
        self.auth: AuthConfig | None = target.auth or detect_auth(self.spec)
        self.deadline = deadline
        self.probe_deadline = deadline
        self.request_timeout = request_timeout
        self.progress = progress or (lambda _msg: None)
        # (operation, input name) pairs proven to reach a shell or an evaluator: other probes skip them, so
        # a quote that breaks a shell command is not also reported as SQL injection.
        self.code_sinks: set[tuple[str, str]] = set()
        self.http = httpx.Client(base_url=self.base_url, timeout=request_timeout, follow_redirects=False)
        self.recent: deque[Exchange] = deque(maxlen=3)
        self.findings: list[Finding] = []
        self.probe_id = ""
        self.requests = 0
        self.probe_requests = 0
        self.probe_max_requests = 10_000
        self._users: list[User] = []
        self._secrets: list[str] = []  # passwords and tokens never to appear in evidence
        self._registration_failed = False
        self.observers: list[Callable[[Exchange, httpx.Response], None]] = []  # passive checks

    # ---- bookkeeping -------------------------------------------------------------------------------
    def start_probe(self, probe_id: str, *, seconds: float, max_requests: int) -> None:
        self.probe_id = probe_id
        self.probe_deadline = min(self.deadline, time.monotonic() + seconds)
        self.probe_requests = 0
        self.probe_max_requests = max_requests

    def add(
        self,
        id: str,
        cwe: int,
        title: str,
        severity: Severity,
        fix: str,
        evidence: Evidence | None = None,
    ) -> None:
        self.findings.append(Finding(id, cwe, title, severity, fix, evidence or Evidence(), "security"))
        self.progress(f"  finding CWE-{cwe}: {title}")

    def evidence(self, *exchanges: Exchange) -> Evidence:
        ex = list(exchanges) or list(self.recent)[-1:]
        return Evidence(
            request="\n".join(e.request for e in ex),
            response="\n".join(e.response for e in ex)[: EXCERPT * 2],
        )

    def remaining(self) -> float:
        return self.probe_deadline - time.monotonic()

    # ---- liveness ----------------------------------------------------------------------------------
    def port_open(self) -> bool:
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    def alive(self) -> bool:
        try:
            if not self.target.is_alive():
                return False
        except Exception:
            return False
        return self.port_open()

    # ---- HTTP --------------------------------------------------------------------------------------
    def describe(
        self, method: str, url: str, headers: dict | None, body: Any, raw: bytes | str | None
    ) -> str:
        line = f"{method} {url}"
        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() not in ("content-type",)}
        for k, v in hdrs.items():
            if k.lower() == "authorization":
                v = v if "<" in v else v.split(" ")[0] + " <token>"
            line += f"\n{k}: {v}"
        if body is not None:
            text = json.dumps(body)
            line += "\n" + (text if len(text) <= 300 else text[:300] + f"... ({len(text)} bytes)")
        elif raw is not None:
            text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            line += "\n" + (text if len(text) <= 300 else text[:300] + f"... ({len(text)} bytes)")
        return redact(line, self._secrets)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | str | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        user: User | None = None,
        timeout: float | None = None,
        show_auth: str | None = None,
    ) -> httpx.Response | None:
        """Send one request. None when it failed or timed out while the server stayed up."""
        now = time.monotonic()
        if now >= self.probe_deadline or self.probe_requests >= self.probe_max_requests:
            raise BudgetExceeded(self.probe_id)
        self.requests += 1
        self.probe_requests += 1
        hdrs = dict(user.headers if user else {})
        hdrs.update(headers or {})
        cookies = dict(user.cookies) if user else {}
        if content is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        url = path + ("?" + httpx.QueryParams(params).__str__() if params else "")
        shown = dict(hdrs)
        if show_auth is not None:
            shown["Authorization"] = show_auth
        req_text = self.describe(method, url, shown, json_body, content)
        limit = max(0.5, min(timeout or self.request_timeout, self.probe_deadline - now))
        self.http.cookies.clear()
        for name, value in cookies.items():
            self.http.cookies.set(name, value)
        try:
            resp = self.http.request(
                method, url, json=json_body, content=content, headers=hdrs, timeout=limit
            )
            resp.read()
        except httpx.HTTPError as exc:
            self.recent.append(Exchange(req_text, f"no response: {type(exc).__name__}"))
            if not self.alive():
                raise ServerDown(req_text) from exc
            return None
        finally:
            self.http.cookies.clear()  # every user carries their own cookies
        body = resp.text[:EXCERPT] if resp.content else ""
        exchange = Exchange(req_text, redact(f"HTTP {resp.status_code}\n{body}", self._secrets))
        self.recent.append(exchange)
        for observe in self.observers:
            observe(exchange, resp)
        return resp

    def last(self) -> Exchange:
        return self.recent[-1] if self.recent else Exchange("", "")

    # ---- users -------------------------------------------------------------------------------------
    def register(
        self, *, password: str | None = None, extra: dict | None = None
    ) -> tuple[httpx.Response | None, str, str]:
        assert self.auth is not None
        cfg = self.auth
        ident, fresh = new_credentials(cfg)
        password = password or fresh
        self._secrets.append(password)
        body = {**self._register_defaults(), **cfg.register_extra, **cfg.credentials(ident, password)}
        body.update(extra or {})
        return self.request("POST", cfg.register_path, json_body=body), ident, password

    def _register_defaults(self) -> dict:
        """Other required fields of the register body, from its schema (name, username, ...)."""
        for op in self.ops:
            if op.method == "POST" and self.auth and op.path == self.auth.register_path and op.body_schema:
                value = example_value(self.spec, op.body_schema)
                if isinstance(value, dict):
                    required = set(op.body_schema.get("required") or [])
                    return {k: v for k, v in value.items() if k in required}
        return {}

    def login(self, ident: str, password: str, *, headers: dict | None = None) -> httpx.Response | None:
        assert self.auth is not None
        return self.request(
            "POST", self.auth.login_path, json_body=self.auth.credentials(ident, password), headers=headers
        )

    def token_from(self, resp: httpx.Response | None) -> str | None:
        token = find_token(json_of(resp), self.auth.token_key if self.auth else None)
        if token:
            return token
        header = resp.headers.get("authorization", "") if resp is not None else ""
        return header.split(" ", 1)[1] if header.lower().startswith("bearer ") else None

    def new_user(self, *, password: str | None = None, extra: dict | None = None) -> User | None:
        """Register and log in a fresh user (None when the backend has no working auth)."""
        if not self.auth or self._registration_failed:
            return None
        reg, ident, password = self.register(password=password, extra=extra)
        if reg is None or reg.status_code >= 400:
            self._registration_failed = not self._users
            return None
        user = User(ident, password, register_json=json_of(reg))
        resp = self.login(ident, password)
        if resp is None or resp.status_code >= 400:
            return None
        user.login_json = json_of(resp)
        user.token = self.token_from(resp) or self.token_from(reg)
        user.cookies = dict(resp.cookies)
        if not user.token and not user.cookies:
            return None
        self._secrets.append(user.token or "")
        user.id = find_key(user.register_json, ("id", "_id", "userId", "user_id", "uuid"))
        if user.id is None:
            claims = jwt_claims(user.token) or {}
            user.id = claims.get("sub") or claims.get("id") or claims.get("userId")
        return user

    def user(self, index: int) -> User | None:
        """The index-th shared probe user (created on first use)."""
        while len(self._users) <= index:
            u = self.new_user()
            if u is None:
                return None
            self._users.append(u)
        return self._users[index]

    # ---- operations and resources ---------------------------------------------------------------------
    def is_auth_path(self, path: str) -> bool:
        if self.auth and path in (self.auth.register_path, self.auth.login_path):
            return True
        return bool(_AUTH_PATH_RE.search(path))

    def example_body(self, op: Operation, marker: str | None = None) -> Any:
        if op.body_schema is None:
            return None
        body = example_value(self.spec, op.body_schema)
        if marker is not None and isinstance(body, dict):
            props = op.body_schema.get("properties") or {}
            for k, v in body.items():
                fmt = (props.get(k) or {}).get("format")
                if isinstance(v, str) and not fmt and not (props.get(k) or {}).get("enum"):
                    body[k] = marker
        return body

    def path_values(self, op: Operation, user: User | None = None, **override: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for p in op.path_params:
            values[p.name] = override.get(p.name, example_value(self.spec, p.schema, p.name))
        return values

    def query_values(self, op: Operation) -> dict[str, Any]:
        return {p.name: example_value(self.spec, p.schema, p.name) for p in op.query_params if p.required}

    def resource_kinds(self) -> list[ResourceKind]:
        kinds = []
        for op in self.ops:
            if op.method != "POST" or op.body_schema is None or self.is_auth_path(op.path) or op.path_params:
                continue
            prefix = op.path.rstrip("/") + "/"
            items = [
                o
                for o in self.ops
                if o.path.startswith(prefix) and re.fullmatch(r"{[^}/]+}", o.path[len(prefix) :])
            ]
            param = items[0].path_params[-1].name if items and items[0].path_params else None
            kinds.append(ResourceKind(op, items, param))
        return kinds

    def create(
        self, kind: ResourceKind, user: User | None, *, marker: str | None = None, body: Any = None
    ) -> Resource | None:
        body = body if body is not None else self.example_body(kind.create, marker)
        resp = self.request("POST", kind.create.path, json_body=body, user=user)
        if not is_2xx(resp):
            return None
        data = json_of(resp)
        rid = find_key(data, ("id", "_id", "uuid")) if isinstance(data, dict) else None
        if rid is None and kind.param:
            rid = find_key(data, (kind.param,))
        if rid is None and resp is not None and resp.headers.get("location"):
            rid = resp.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        return Resource(kind, rid, body if isinstance(body, dict) else {}, data, user)

    def item_path(self, op: Operation, res: Resource) -> str:
        values = self.path_values(op)
        if res.kind.param:
            values[res.kind.param] = res.id
        return fill_path(op.path, values)

    def get_ops(
        self, *, secured: bool | None = None, with_path_params: bool | None = None
    ) -> list[Operation]:
        out = []
        for op in self.ops:
            if op.method != "GET":
                continue
            if secured is not None and op.secured != secured:
                continue
            if with_path_params is not None and bool(op.path_params) != with_path_params:
                continue
            out.append(op)
        return out
