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

from ..auth import AuthConfig, detect_auth
from ..findings import Evidence, Finding, Severity
from ..openapi_doc import (
    Operation,
    base_path,
    example_value,
    fill_path,
    js_pattern,
    merged_schema,
    operations,
)
from .accounts import Accounts, retry_after, text_excerpt
from .target import ProbeTarget

EXCERPT = 400
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_DENIED_RE = re.compile(
    r"(missing|invalid|no|required|expired|bad|malformed)\W+(\w+\W+)?(token|auth\w*|credentials|session|jwt)"
    r"|(token|auth\w*|credentials|session|jwt)\W+(\w+\W+)?(missing|invalid|required|expired)"
    r"|unauthori[sz]ed|forbidden|access denied|not allowed|not authenticated|not logged in|"
    r"permission denied|log ?in required|please log ?in",
    re.I,
)
LOGOUT_RE = re.compile(r"log-?out|sign-?out", re.I)
# OpenID / OAuth flows (/auth/oidc/{provider}/callback, /oauth/acme/start) count too: their inputs go to
# the identity provider, and they share the login's rate limit, which fuzzing them would use up.
OIDC_FLOW_RE = re.compile(r"(^|/)(oidc|oauth2?|openid|sso)(/|$)", re.I)
_AUTH_PATH_RE = re.compile(
    r"(log-?in|log-?out|register|sign-?up|sign-?in|token|refresh|password|verify)|" + OIDC_FLOW_RE.pattern,
    re.I,
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
    header_name: str = "Authorization"
    prefix: str = "Bearer"  # "" sends the bare token
    extra_headers: dict[str, str] = field(default_factory=dict)  # e.g. a CSRF token for unsafe requests
    form_extra: dict[str, str] = field(default_factory=dict)  # e.g. the hidden _csrf field of forms
    admin: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # what identifies them: username, email, ...
    set_cookies: list[str] = field(default_factory=list)  # the Set-Cookie headers of their login

    @property
    def headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        return {self.header_name: f"{self.prefix} {self.token}".strip()}


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


_SHAPED_WORDS = {"url", "uri", "link", "href", "email", "mail", "phone", "tel", "date", "time", "uuid", "ip",
                 "host", "hostname", "color", "colour", "zip", "postcode", "code", "website", "homepage", "slug"}  # fmt: skip


def _words(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}


_ID_KEY_RE = re.compile(r"(_id|Id|ID)$")
_OWN_PATH_RE = re.compile(r"/(me|mine|my|self|current|whoami|profile|account|wallet)s?\b", re.I)
_OWN_WORDS = {"me", "mine", "my", "self", "current", "whoami", "api", "v1", "v2"}
# Prefixes naming the acting party of a body field (from_account_id) and the other party (to_account_id).
ACTOR_PREFIX = re.compile(r"^(from|source|src|sender|payer|debit|origin|owner)_?", re.I)
OTHER_PREFIX = re.compile(
    r"^(to|target|dest|destination|recipient|payee|credit|receiver|beneficiary)_?", re.I
)


def norm_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _kind_named(kinds: list[ResourceKind], name: str) -> ResourceKind | None:
    """The collection a reference field names: list -> /lists, category -> /categories, author -> /authors."""
    name = name.lower()
    forms = {name, name + "s", name + "es", name[:-1] + "ies" if name.endswith("y") else name}
    for k in kinds:
        last = k.create.path.rstrip("/").rsplit("/", 1)[-1].lower()
        if last in forms:
            return k
    return None


def _documents_id(op: Operation) -> bool:
    """Whether a 2xx answer of `op` is documented with an *_id property."""
    for code, resp in (op.op.get("responses") or {}).items():
        if str(code).startswith("2") and re.search(r"\w(_id|Id)\b", json.dumps(resp)):
            return True
    return False


def _matches(pattern: str, value: str) -> bool:
    """JSON Schema patterns are ECMAScript regexes, unanchored; most compile in Python too."""
    try:
        return re.search(js_pattern(pattern), value) is not None
    except re.error:
        return False


def _free_text(name: str, schema: dict, marker: str) -> bool:
    """Whether a body field takes any text (a marker or payload), not a shaped value such as a URL."""
    if schema.get("format") or schema.get("enum") or _words(name) & _SHAPED_WORDS:
        return False
    if schema.get("pattern") and not _matches(str(schema["pattern"]), marker):
        return False
    hi = schema.get("maxLength")
    return not (isinstance(hi, int) and hi < len(marker))


class Context:
    """One probing session: target, deadlines, request budget, accounts, resources, evidence of the last
    requests, and what each probe could not do (`blocked`: the reasons that make it inconclusive)."""

    MAX_WAIT = 65.0  # longest single wait for a 429's Retry-After
    TOTAL_WAIT = 200.0  # all waits of a run together

    def __init__(
        self,
        target: ProbeTarget,
        *,
        deadline: float,
        progress: Callable[[str], None] | None = None,
        request_timeout: float = 8.0,
    ):
        self.target = target
        self.spec = target.openapi
        self.base_url = target.base_url.rstrip("/")
        prefix = base_path(self.spec)
        if prefix and urlsplit(self.base_url).path.endswith(prefix):  # --url already names the API's root
            self.base_url = self.base_url[: -len(prefix)]
        self.ops = operations(self.spec)
        self.auth: AuthConfig | None = target.auth or detect_auth(self.spec)
        self.deadline = deadline
        self.probe_deadline = deadline
        self.request_timeout = request_timeout
        self.progress = progress or (lambda _msg: None)
        # (operation, input name) pairs proven to reach a shell or an evaluator: other probes skip them, so
        # a quote that breaks a shell command is not also reported as SQL injection.
        self.code_sinks: set[tuple[str, str]] = set()
        self.http = httpx.Client(base_url=self.base_url, timeout=request_timeout, follow_redirects=False,
                                 trust_env=False)  # fmt: skip
        self.recent: deque[Exchange] = deque(maxlen=3)
        self.findings: list[Finding] = []
        self.probe_id = ""
        self.requests = 0
        self.probe_requests = 0
        self.probe_max_requests = 10_000
        self.blocked_reasons: list[str] = []  # this probe's gaps: why it could not test everything
        self.not_applicable = ""
        self.checked = ""  # what a probe that needs no request of its own looked at, for a clean outcome
        self.changes: list[str] = []  # what the run did to the backend's state, for the report
        self.waited = 0.0
        self.seen_ids: dict[str, Any] = {}  # cart_id, userId, ... from answers: filled into later bodies
        self._secrets: list[str] = []  # passwords and tokens never to appear in evidence
        self.observers: list[Callable[[Exchange, httpx.Response], None]] = []  # passive checks
        self.last_user: User | None = None  # whom the latest request was sent as (for the observers)
        self.matrix: list[dict] = []  # the authorization matrix (authz_matrix), for the report
        self.graphql: Any = None  # the GraphQL endpoint (verify.graphql_api.Endpoint), found at login
        self.graphql_error = ""  # why looking for it failed (a bug of ours), for the GraphQL probes
        self._own: dict[int, dict[str, Any]] = {}  # per user: ids their own records carry (own_values)
        self._form_ops = [
            (op.method, re.compile("^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(op.path)) + "$"))
            for op in self.ops
            if op.body_encoding == "form"
        ]
        self.accounts = Accounts(
            self, self.auth, given=list(target.users), admin=target.admin, token=target.token,
            cookies=target.cookies,
        )  # fmt: skip

    # ---- bookkeeping -------------------------------------------------------------------------------
    def start_probe(self, probe_id: str, *, seconds: float, max_requests: int) -> None:
        self.probe_id = probe_id
        self.probe_deadline = min(self.deadline, time.monotonic() + seconds)
        self.probe_requests = 0
        self.probe_max_requests = max_requests
        self.blocked_reasons = []
        self.not_applicable = ""
        self.checked = ""

    def skip(self, why: str) -> None:
        """This probe's question does not apply to this API (e.g. no signup to mass-assign at): clean."""
        self.not_applicable = f"not applicable: {why}"

    def blocked(self, reason: str) -> None:
        """This probe could not test something it should have: it ends inconclusive unless it found a flaw."""
        if reason not in self.blocked_reasons:
            self.blocked_reasons.append(reason)
            self.progress(f"  {self.probe_id}: could not test: {reason}")

    def changed(self, what: str) -> None:
        if what not in self.changes:
            self.changes.append(what)

    def remember_secret(self, value: str) -> None:
        if value and len(value) >= 6 and value not in self._secrets:
            self._secrets.append(value)

    def redacted(self, text: str) -> str:
        return redact(text, self._secrets)

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

    def not_counting(self, seconds: float) -> None:
        """Time spent on something other than probing (starting a second server): given back."""
        self.deadline += seconds
        self.probe_deadline += seconds

    def remaining(self) -> float:
        return self.probe_deadline - time.monotonic()

    @property
    def origin(self) -> str:
        """The app's own origin (scheme://host[:port]), as its pages would send it in `Origin`."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def has_secured_ops(self) -> bool:
        return any(op.secured for op in self.ops)

    # ---- liveness ----------------------------------------------------------------------------------
    def port_open(self) -> bool:
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    def alive(self, *, within: float = 1.5) -> bool:
        """Down means the process exited, or the port refused every connect for `within` seconds: one
        refused connect is a full listen backlog, not a crash (a server a supervisor restarts is down for
        longer than that, and is brought back by target.recover)."""
        try:
            if not self.target.is_alive():
                return False
        except Exception:
            return False
        end = time.monotonic() + within
        while True:
            if self.port_open():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.25)

    # ---- HTTP --------------------------------------------------------------------------------------
    def describe(
        self, method: str, url: str, headers: dict | None, body: Any, raw: bytes | str | None
    ) -> str:
        line = f"{method} {url}"
        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() not in ("content-type",)}
        for k, v in hdrs.items():
            if k.lower() in ("authorization", "cookie") or k in self._token_headers():
                v = v if "<" in v else v.split(" ")[0] + " <token>" if " " in v else "<token>"
            line += f"\n{k}: {v}"
        if body is not None:
            text = json.dumps(body) if not isinstance(body, str) else body
            line += "\n" + (text if len(text) <= 300 else text[:300] + f"... ({len(text)} bytes)")
        elif raw is not None:
            text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            line += "\n" + (text if len(text) <= 300 else text[:300] + f"... ({len(text)} bytes)")
        return redact(line, self._secrets)

    def _token_headers(self) -> set[str]:
        return {self.auth.token_header} if self.auth else set()

    def _is_form_op(self, method: str, path: str) -> bool:
        bare = path.split("?", 1)[0]
        return any(m == method and rx.match(bare) for m, rx in self._form_ops)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict | None = None,
        content: bytes | str | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        user: User | None = None,
        cookies: dict[str, str] | None = None,
        timeout: float | None = None,
        show_auth: str | None = None,
        retry_429: bool = True,
        quiet: bool = False,
    ) -> httpx.Response | None:
        """Send one request. None when it failed or timed out while the server stayed up. A 429 is waited
        out (Retry-After, bounded) and sent again; a refused connect is retried. `quiet` requests (logins,
        discovery) stay out of the evidence."""
        now = time.monotonic()
        if now >= self.probe_deadline or (not quiet and self.probe_requests >= self.probe_max_requests):
            raise BudgetExceeded(self.probe_id)
        self.requests += 1
        # Logging in and reading form pages is not the probe's own work: only its requests count.
        self.probe_requests += not quiet
        unsafe = method not in ("GET", "HEAD", "OPTIONS")
        hdrs = dict(user.headers if user else {})
        if user and unsafe:
            hdrs.update(user.extra_headers)
        hdrs.update(headers or {})
        jar = {**(dict(user.cookies) if user else {}), **(cookies or {})}
        if form is None and isinstance(json_body, dict) and self._is_form_op(method, path):
            form, json_body = json_body, None
        if form is not None:
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
            if user and unsafe:
                form = {**form, **user.form_extra}  # the session's CSRF token, whatever the body said
        if content is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        url = path + ("?" + str(httpx.QueryParams(params)) if params else "")
        shown = dict(hdrs)
        if jar:
            shown["Cookie"] = "<session>"
        if show_auth is not None:
            shown["Authorization"] = show_auth
        shown_body = json_body if form is None else str(httpx.QueryParams(form))
        req_text = self.describe(method, url, shown, shown_body, content)
        for attempt in range(4):
            limit = max(0.5, min(timeout or self.request_timeout, self.probe_deadline - time.monotonic()))
            self.http.cookies.clear()
            for name, value in jar.items():
                self.http.cookies.set(name, value)
            try:
                resp = self.http.request(
                    method, url, json=json_body, data=form, content=content, headers=hdrs, timeout=limit
                )
                resp.read()
            except httpx.HTTPError as exc:
                if not quiet:
                    self.recent.append(Exchange(req_text, f"no response: {type(exc).__name__}"))
                if not self.alive():
                    raise ServerDown(req_text) from exc
                if isinstance(exc, httpx.ConnectError) and attempt < 3:
                    time.sleep(0.2 * (attempt + 1))  # a full listen backlog: the request never arrived
                    continue
                return None
            finally:
                self.http.cookies.clear()  # every user carries their own cookies
            if (
                resp.status_code in (429, 503)
                and retry_429
                and attempt < 3
                and self._wait_out(resp, method, path)
            ):
                continue
            break
        if resp.status_code == 429 and retry_429:
            self.blocked(f"{method} {path} stayed rate-limited (HTTP 429{self._retry_note(resp)})")
        if method == "POST" and is_2xx(resp):  # ids are handed out by creates: parse only those
            self._harvest_ids(json_of(resp))
        body = resp.text[:EXCERPT] if resp.content else ""
        exchange = Exchange(req_text, redact(f"HTTP {resp.status_code}\n{body}", self._secrets))
        if not quiet:
            self.recent.append(exchange)
        self.last_user = user
        for observe in self.observers:
            observe(exchange, resp)
        return resp

    def _harvest_ids(self, data: Any, depth: int = 0) -> None:
        if isinstance(data, dict) and depth < 2:
            for k, v in data.items():
                if isinstance(v, str | int) and not isinstance(v, bool) and _ID_KEY_RE.search(k):
                    self.seen_ids[k] = v
                elif isinstance(v, dict):
                    self._harvest_ids(v, depth + 1)

    def open_creators(self, user: User | None) -> None:
        """Call the operations that hand out an id without needing input (POST /create_cart -> cart_id),
        so later bodies can name a real one instead of an example that only meets a 404."""
        for op in self.ops:
            required = (op.body_schema or {}).get("required") or []
            if op.method != "POST" or op.path_params or required or self.is_auth_path(op.path):
                continue
            if re.search(r"create|new|open|start|init", op.path, re.I) or _documents_id(op):
                self.request("POST", op.path, json_body=self.example_body(op) if op.body_schema else None,
                             user=user if op.secured else None)  # fmt: skip

    @staticmethod
    def _retry_note(resp: httpx.Response) -> str:
        wait = retry_after(resp)
        return f", Retry-After {wait:.0f} s" if wait is not None else ""

    def _wait_out(self, resp: httpx.Response, method: str, path: str) -> bool:
        """Wait for a rate limit to pass when the answer says how long and the wait is bounded. The wait
        does not count against the probes' time."""
        wait = retry_after(resp)
        if resp.status_code == 503 and wait is None:
            return False
        wait = 5.0 if wait is None else max(wait, 0.5)
        if wait > self.MAX_WAIT or self.waited + wait > self.TOTAL_WAIT:
            return False
        self.changed(f"tripped a rate limit on {method} {path} (waited {wait:.0f} s)")
        self.progress(f"  {self.probe_id or 'login'}: {method} {path} rate-limited; waiting {wait:.0f} s")
        time.sleep(wait + 0.2)
        self.waited += wait
        self.deadline += wait + 0.2
        self.probe_deadline += wait + 0.2
        return True

    def denied(self, resp: httpx.Response) -> bool:
        """An answer that refuses access: 401/403, a redirect to a login page, or a 200 whose body is only
        an error about the missing token."""
        if resp.status_code in (401, 403):
            return True
        if 300 <= resp.status_code < 400:
            return bool(re.search(r"log-?in|sign-?in|auth", resp.headers.get("location", ""), re.I))
        data = json_of(resp)
        if isinstance(data, dict) and not items_of(data) and len(data) <= 4:
            text = " ".join(str(data.get(k, "")) for k in ("error", "message", "msg", "detail", "status"))
            return bool(_DENIED_RE.search(text))
        return False

    def last(self) -> Exchange:
        return self.recent[-1] if self.recent else Exchange("", "")

    # ---- users -------------------------------------------------------------------------------------
    def login(self, ident: str, password: str, *, retry_429: bool = True) -> httpx.Response | None:
        assert self.auth is not None
        resp, _ = self.accounts.login_request(ident, password, retry_429=retry_429)
        return resp

    def token_from(self, resp: httpx.Response | None) -> str | None:
        return self.accounts.token_from(resp)

    def logged_in(self, resp: httpx.Response | None) -> bool:
        """Whether a login answer let the client in (a token, or a session cookie without a redirect back
        to the login page)."""
        return resp is not None and self.accounts.login_failure(resp) is None

    def new_user(self, *, password: str | None = None, extra: dict | None = None) -> User | None:
        """Register and log in a fresh user (None when the backend has no working auth: the probe is then
        blocked, unless the API has no login at all)."""
        u = self.accounts.new_user(password=password, extra=extra)
        if u is None:
            self._no_user()
        return u

    def user(self, index: int) -> User | None:
        """The index-th shared probe user (created on first use)."""
        u = self.accounts.user(index)
        if u is None:
            self._no_user()
        return u

    def first_user(self) -> User | None:
        """The first probe user for another stage (the contract fuzzer), logged in again if a restart
        lost it; None when that does not work."""
        if self.accounts.users:
            return self.accounts.users[0]
        self.start_probe("login", seconds=60, max_requests=200)
        try:
            return self.accounts.user(0)
        except (BudgetExceeded, ServerDown):
            return None

    def admin(self) -> User | None:
        return self.accounts.admin_user()

    def _no_user(self) -> None:
        if self.auth is not None or self.accounts.reason:
            self.blocked(self.accounts.reason or "could not log in")

    # ---- operations and resources ---------------------------------------------------------------------
    def is_auth_path(self, path: str) -> bool:
        if self.auth and path in (self.auth.register_path, self.auth.login_path):
            return True
        return bool(_AUTH_PATH_RE.search(path))

    def example_body(self, op: Operation, marker: str | None = None) -> Any:
        if op.body_schema is None:
            return None
        body = example_value(self.spec, op.body_schema)
        if isinstance(body, dict):
            props = op.body_schema.get("properties") or {}
            for k in body:
                if k in self.seen_ids and (props.get(k) or {}).get("type") in (None, "string", "integer"):
                    value = self.seen_ids[k]
                    if (props.get(k) or {}).get("type") != "integer" or isinstance(value, int):
                        body[k] = value
        if marker is not None and isinstance(body, dict):
            self._place_marker(body, op.body_schema, marker)
        return body

    def reported(self, op: Operation, *cwes: int) -> bool:
        """Whether a finding of one of these CWEs already names the operation: one flaw, one report."""
        return any(f.cwe in cwes and str(op) in f.title for f in self.findings)

    def _place_marker(self, body: dict, schema: dict, marker: str, depth: int = 0) -> None:
        """The marker in every free-text field, also in nested objects ({"shipping_address": {"name"}})."""
        props = merged_schema(self.spec, schema).get("properties") or {}
        for k, v in body.items():
            sub = merged_schema(self.spec, props.get(k) or {})
            if isinstance(v, str) and _free_text(k, sub, marker):
                body[k] = marker
            elif isinstance(v, dict) and depth < 2:
                self._place_marker(v, sub, marker, depth + 1)

    def path_values(self, op: Operation, user: User | None = None, **override: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for p in op.path_params:
            values[p.name] = override.get(p.name, example_value(self.spec, p.schema, p.name))
        return values

    def query_values(self, op: Operation, user: User | None = None) -> dict[str, Any]:
        """Required query parameters; one naming the user (?username=) gets that user's own value."""
        values = {}
        for p in op.query_params:
            if p.required:
                mine = user.fields.get(p.name) if user else None
                values[p.name] = mine if mine is not None else example_value(self.spec, p.schema, p.name)
        return values

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
        self,
        kind: ResourceKind,
        user: User | None,
        *,
        marker: str | None = None,
        body: Any = None,
        required: bool = True,
        depth: int = 0,
    ) -> Resource | None:
        """Create one resource as `user`. When a valid create fails (`required`), the probe is blocked: it
        could not test what needs the resource. A 403 is the API's rule (that user may not create it): the
        admin account, if given, creates it instead. A 409 to a body drawn here (a unique value met one
        an earlier probe left) is drawn again: the values are fresh each time."""
        drawn = body is None
        for _ in range(3 if drawn else 1):
            body = self.example_body(kind.create, marker) if drawn else body
            if isinstance(body, dict):
                self._fill_references(kind, body, user, depth)
            resp = self.request("POST", kind.create.path, json_body=body, user=user)
            if resp is not None and resp.status_code == 403 and (admin := self.admin()) is not None:
                resp = self.request("POST", kind.create.path, json_body=body, user=admin)
            if resp is None or resp.status_code != 409:
                break
        if not is_2xx(resp):
            if required and resp is not None and resp.status_code != 403:
                self.blocked(
                    f"could not create a resource: POST {kind.create.path} -> HTTP {resp.status_code} "
                    + text_excerpt(resp, 160)
                )
            return None
        data = json_of(resp)
        rid = find_key(data, ("id", "_id", "uuid")) if isinstance(data, dict) else None
        if rid is None and kind.param:
            rid = find_key(data, (kind.param,))
        if rid is None and resp is not None and resp.headers.get("location"):
            rid = resp.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        if rid is None and required and kind.items:
            self.blocked(f"POST {kind.create.path} answered without the new resource's id")
        return Resource(kind, rid, body if isinstance(body, dict) else {}, data, user)

    def _fill_references(self, kind: ResourceKind, body: dict, user: User | None, depth: int) -> None:
        """A field naming another resource (`list_id`, `authorId`) gets the id of one that user creates
        first: an example id would only meet a 400 or 404."""
        props = (kind.create.body_schema or {}).get("properties") or {}
        for key in list(body):
            m = re.fullmatch(r"(.+?)_?(id|Id|ID)", key)
            prop = props.get(key) or {}
            idlike = prop.get("format") == "uuid" or prop.get("type") == "integer"
            name = m.group(1) if m else key if idlike else None  # `list` (a uuid) names /lists too
            if name is None or depth > 1:
                continue
            target = _kind_named(self.resource_kinds(), name)
            if target is None or target.create.path == kind.create.path:
                continue
            ref = self.create(
                target, user if target.create.secured else None, required=False, depth=depth + 1
            )
            if ref is not None and ref.id is not None:
                body[key] = ref.id

    def own_values(self, user: User) -> dict[str, Any]:
        """Ids of the user's own records, from GETs like /accounts/mine or /me, keyed by normalised name
        (`accountid` from {"account_id": 7} or from the `id` of /accounts/mine): what a body naming "my
        account" must carry. Read once per user."""
        if id(user) in self._own:
            return self._own[id(user)]
        found: dict[str, Any] = {}
        if user.id is not None:
            found["userid"] = user.id
        for op in self.get_ops(with_path_params=False):
            if not _OWN_PATH_RE.search(op.path) or self.is_auth_path(op.path):
                continue
            resp = self.request("GET", op.path, params=self.query_values(op, user), user=user, quiet=True)
            data = json_of(resp) if is_2xx(resp) else None
            if isinstance(data, list) and data and isinstance(data[0], dict):
                data = data[0]
            if not isinstance(data, dict):
                continue
            words = [w for w in re.findall(r"[a-z]+", op.path.lower()) if w not in _OWN_WORDS]
            noun = (words[-1].removesuffix("s") if words else "user") or "user"
            for k, v in data.items():
                if isinstance(v, bool) or not isinstance(v, str | int):
                    continue
                if k in ("id", "_id", "uuid"):
                    found.setdefault(noun + "id", v)
                elif _ID_KEY_RE.search(k):
                    found.setdefault(norm_key(k), v)
        self._own[id(user)] = found
        return found

    def fill_parties(self, body: dict, op: Operation, me: User, other: User | None) -> list[str]:
        """Fill id fields naming the acting party (`from_account_id`, `account_id`) with `me`'s own ids and
        those naming the other party (`to_account_id`) with `other`'s. Returns the actor fields filled."""
        actor = []
        for key in list(body):
            if not _ID_KEY_RE.search(key) and not key.lower().endswith("id"):
                continue
            bare = norm_key(key)
            who, name = me, bare
            if m := OTHER_PREFIX.match(key):
                who, name = other, norm_key(key[m.end() :])
            elif m := ACTOR_PREFIX.match(key):
                name = norm_key(key[m.end() :])
            if who is None:
                continue
            value = self.own_values(who).get(name)
            if value is not None:
                body[key] = value
                if who is me:
                    actor.append(key)
        return actor

    def real_path_values(self, op: Operation, user: User | None) -> dict[str, Any]:
        """Path values naming records that exist (/shops/{shop}/products: a slug from GET /shops), read
        from the listing at each parameter's prefix, left to right; it stops at the first parameter without
        a listing to read, so the answer may name only some of them."""
        values: dict[str, Any] = {}
        for p in op.path_params:
            prefix = op.path.split("{" + p.name + "}", 1)[0].rstrip("/")
            listing = next((o for o in self.get_ops() if o.path.rstrip("/") == prefix), None)
            first = None
            if listing is not None:
                resp = self.request("GET", fill_path(listing.path, values), params=self.query_values(listing, user),
                                    user=user if listing.secured else None, quiet=True)  # fmt: skip
                items = items_of(json_of(resp)) if is_2xx(resp) else None
                first = items[0] if items and isinstance(items[0], dict) else None
            if first is None:
                first = self._created_under(prefix, values, user)
            if first is None:
                break
            textual = p.schema.get("type") in (None, "string") and not p.schema.get("format")
            keys = (p.name, "slug", "key", "code", "name", "id", "_id", "uuid") if textual else (
                p.name, "id", "_id", "uuid")  # fmt: skip
            by_norm = {norm_key(k): v for k, v in first.items() if isinstance(v, str | int)}
            value = next((by_norm[norm_key(k)] for k in keys if norm_key(k) in by_norm), None)
            if value is None:
                break
            values[p.name] = value
        return values

    def _created_under(self, prefix: str, values: dict[str, Any], user: User | None) -> dict | None:
        """A record made by the create of a collection whose listing gives no ids (an HTML page, none at
        all): POST /recipes or /recipes/upload for /recipes/{recipeId}. Its answer, with the id from
        Location when the body has none."""
        for op in self.ops:
            rest = op.path[len(prefix) :]
            if op.method != "POST" or not op.path.startswith(prefix) or re.search(r"[{}]", rest):
                continue
            if rest.count("/") > 1 or self.is_auth_path(op.path):
                continue
            resp = self.request("POST", fill_path(op.path, values), json_body=self.example_body(op),
                                user=user if op.secured or user else None)  # fmt: skip
            data = json_of(resp) if is_2xx(resp) else None
            if is_2xx(resp) and not isinstance(data, dict) and resp.headers.get("location"):
                data = {"id": resp.headers["location"].rstrip("/").rsplit("/", 1)[-1]}
            if isinstance(data, dict):
                return data
        return None

    def props_of(self, op: Operation) -> dict[str, dict]:
        """The body's properties, each schema with its $refs and allOf resolved."""
        props = (op.body_schema or {}).get("properties") or {}
        return {k: merged_schema(self.spec, v) for k, v in props.items()}

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
