"""Logging in like a user: the accounts the probes and the contract stage act as.

Registers fresh users (every field the register body needs, unique per user, shaped for common validators,
more fields learned from a 400 answer) or logs in the accounts given with --user/--admin, or takes a ready
--token/--cookie. JSON and HTML form logins; a token anywhere in the answer or a session cookie, with the
CSRF token the app asks for. Every login is checked on a protected operation: a token the API refuses is
no login. Each failure leaves a reason (`Accounts.reason`) that makes the probes needing a user
inconclusive instead of silently clean."""

from __future__ import annotations

import html
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ..auth import (
    CSRF_NAME_RE,
    FROM_PROBING,
    Account,
    AuthConfig,
    find_token,
    fit_length,
    is_confirm_field,
    new_credentials,
)
from ..openapi_doc import IDENT_NAME_RE, example_value

if TYPE_CHECKING:
    from .base import Context, User

REGISTER_PATHS = ("/register", "/signup", "/api/register", "/api/signup", "/api/auth/register",
                  "/api/auth/signup", "/auth/register", "/auth/signup", "/users/register",
                  "/api/users/register", "/api/v1/auth/register", "/api/v1/users", "/api/users", "/users")  # fmt: skip
LOGIN_PATHS = ("/login", "/api/login", "/api/auth/login", "/auth/login", "/users/login", "/api/users/login",
               "/signin", "/api/signin", "/auth/signin", "/api/v1/auth/login", "/api/v1/login",
               "/api/sessions", "/api/v1/sessions", "/sessions", "/session", "/auth/token", "/token",
               "/api/token")  # fmt: skip
# Field names a registration may ask for in a 400 answer.
KNOWN_FIELDS = ("username", "email", "name", "first_name", "firstName", "last_name", "lastName", "full_name",
                "fullName", "display_name", "displayName", "confirm_password", "confirmPassword",
                "password_confirmation", "passwordConfirmation", "password2", "passwordConfirm",
                "repeat_password", "repeatPassword")  # fmt: skip
_INPUT_RE = re.compile(r"<input\b[^>]*>", re.I)
_ATTR_RE = re.compile(r"""(\w[\w-]*)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))""")
# Where a browser flow sends a refused form: back to the form's own page, or anywhere with an error.
_LOGIN_AGAIN_RE = re.compile(r"/(log-?in|sign-?in)\b", re.I)
_SIGNUP_AGAIN_RE = re.compile(r"/(sign-?up|register)\b", re.I)
_ERROR_RE = re.compile(r"error|fail|denied|invalid|exists|taken", re.I)
_CSRF_RE = CSRF_NAME_RE


def inputs(page: str) -> list[dict[str, str]]:
    """The <input> elements of an HTML page as attribute dicts."""
    out = []
    for tag in _INPUT_RE.findall(page or ""):
        attrs = {m.group(1).lower(): html.unescape(next(g for g in m.groups()[2:] if g is not None) or "")
                 for m in _ATTR_RE.finditer(tag)}  # fmt: skip
        out.append(attrs)
    return out


def hidden_fields(page: str) -> dict[str, str]:
    return {
        i["name"]: i.get("value", "") for i in inputs(page) if i.get("type") == "hidden" and i.get("name")
    }


def text_excerpt(resp: httpx.Response, n: int = 120) -> str:
    """A one-line excerpt of an answer: an HTML page's title or text, not its markup."""
    text = resp.text[:4000]
    if is_html(resp):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        body = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.I | re.S)
        text = (title.group(1) + ": " if title else "") + html.unescape(body)
    return " ".join(text.split())[:n]


def is_html(resp: httpx.Response | None) -> bool:
    return resp is not None and "html" in resp.headers.get("content-type", "").lower()


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait from Retry-After (or RateLimit-Reset); None when the answer does not say."""
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        value = resp.headers.get(name, "").strip()
        if value.isdigit():
            seconds = float(value)
            return seconds if seconds < 10**6 else None  # an epoch timestamp, not a delay
    return None


class Accounts:
    def __init__(
        self,
        ctx: Context,
        cfg: AuthConfig | None,
        *,
        given: list[Account] | None = None,
        admin: Account | None = None,
        token: str | None = None,
        cookies: dict[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.given = list(given or [])
        self.admin_account = admin
        self.ready_token, self.ready_cookies = token, cookies
        self.users: list[User] = []
        self.admin: User | None = None
        self.reason: str | None = None  # why verify could not log in (last failure)
        self.registration_failed = False
        self.created: list[str] = []  # accounts verify registered, for the report
        self.last_body: dict[str, Any] = {}  # the last register body sent
        self._guards: list[str] | None = None  # protected GET paths that refuse anonymous requests
        # The GraphQL mutations that registered and logged in the users, if those did (no REST login).
        self.signup_mutation: str | None = None
        self.login_mutation: str | None = None

    # ---- discovery ----------------------------------------------------------------------------------
    def discover(self) -> None:
        """Without a login in the document: look for one at the usual paths (JSON or an HTML form)."""
        if self.cfg is not None:
            return
        login = next((p for p in LOGIN_PATHS if self._exists(p)), None)
        if login is None:
            if self.ctx.has_secured_ops() or self.given or self.admin_account:
                self.reason = "no login found (none in the document, none at the usual paths); see --auth"
            return
        register = next((p for p in REGISTER_PATHS if p != login and self._exists(p)), None)
        page = self.ctx.request("GET", login, quiet=True)
        form = is_html(page) and any(i.get("type") == "password" for i in inputs(page.text))
        user_field = "username"
        if form:
            names = [
                i.get("name", "") for i in inputs(page.text) if i.get("type") not in ("hidden", "submit")
            ]
            user_field = next((n for n in names if n and "pass" not in n.lower()), user_field)
        self.cfg = AuthConfig(
            register_path=register,
            login_path=login,
            user_field=user_field,
            password_field="password",
            token_key="token",
            source=FROM_PROBING,
            login_encoding="form" if form else "json",
            register_encoding="form" if form else "json",
            token_prefix=None,
        )
        self.ctx.auth = self.cfg

    def _exists(self, path: str) -> bool:
        resp = self.ctx.request("POST", path, json_body={}, quiet=True, retry_429=False)
        return resp is not None and resp.status_code not in (404, 405, 501)

    # ---- users --------------------------------------------------------------------------------------
    def user(self, index: int) -> User | None:
        while len(self.users) <= index:
            u = self._next_user(len(self.users))
            if u is None:
                return None
            self.users.append(u)
        return self.users[index]

    def _next_user(self, index: int) -> User | None:
        from .base import User

        if index == 0 and (self.ready_token or self.ready_cookies):
            u = User("(--token)" if self.ready_token else "(--cookie)", "", token=self.ready_token,
                     cookies=dict(self.ready_cookies or {}))  # fmt: skip
            return self._accepted(u, "--token" if self.ready_token else "--cookie")
        offset = 1 if (self.ready_token or self.ready_cookies) else 0
        if index - offset < len(self.given):
            acc = self.given[index - offset]
            return self.log_in(acc.ident, acc.password)
        return self.new_user()

    def admin_user(self) -> User | None:
        if self.admin is None and self.admin_account is not None:
            reason = self.reason  # the admin's failure is not the probe users' reason
            self.admin = self.log_in(self.admin_account.ident, self.admin_account.password)
            self.reason = reason
            if self.admin is None:
                self.admin_account = None  # tried once: creating as an ordinary user stays the API's rule
            else:
                self.admin.admin = True
        return self.admin

    def reset(self) -> None:
        """After a restart: sessions and in-memory accounts may be gone."""
        self.users.clear()
        self.admin = None

    def new_user(self, *, password: str | None = None, extra: dict | None = None) -> User | None:
        """Register and log in a fresh user (None, with `reason` set, when that does not work)."""
        cfg = self.cfg
        if cfg is None:
            return None  # no login anywhere: fine for an API without protected operations (discover says)
        if cfg.register_path is None:
            self.reason = (
                "no signup endpoint: give existing accounts with --user NAME:PASSWORD (twice for two users)"
            )
            return None
        if self.registration_failed:
            return None
        ident, fresh = new_credentials(cfg)
        password = password or fresh
        reg = self.register(ident, password, extra=extra)
        if reg is None:
            self.registration_failed = not self.users
            return None
        user = self.log_in(ident, password, register_resp=reg)
        return user

    def register(self, ident: str, password: str, *, extra: dict | None = None) -> httpx.Response | None:
        cfg = self.cfg
        assert cfg is not None and cfg.register_path is not None
        self.ctx.remember_secret(password)
        tag = secrets.token_hex(4)
        body = self.register_body(ident, password, tag)
        body.update(extra or {})
        self.last_body = body
        resp = None
        for _attempt in range(3):
            hidden, cookies = (
                self._form_page(cfg.register_path) if cfg.register_encoding == "form" else ({}, {})
            )
            resp = self._post(
                cfg.register_path, {**hidden, **cfg.wrap(body)}, cfg.register_encoding, cookies=cookies
            )
            if resp is not None and resp.status_code < 400 and not self._redirected(resp, _SIGNUP_AGAIN_RE):
                self.created.append(ident)
                return resp
            if resp is None or resp.status_code not in (400, 409, 422):
                break
            learned = self._fields_asked_for(resp.text, body)
            if not learned:
                break
            for name in learned:
                body[name] = self._value(name, {}, ident, password, tag)
        status = "no answer" if resp is None else f"HTTP {resp.status_code}"
        if resp is not None and self._redirected(resp, _SIGNUP_AGAIN_RE):
            status += f" to {resp.headers.get('location')}"
        excerpt = "" if resp is None else text_excerpt(resp)
        self.reason = f"registration refused: POST {cfg.register_path} -> {status}" + (
            f" {excerpt}" if excerpt else ""
        )
        return None

    def register_body(self, ident: str, password: str, tag: str) -> dict[str, Any]:
        """Every field the register body needs: the credentials, required and identity-like fields and
        password confirmations, each shaped for the validators such fields usually have."""
        cfg = self.cfg
        assert cfg is not None
        schema = cfg.register_schema or {}
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        body: dict[str, Any] = {}
        for name, prop in props.items():
            wanted = (
                name in required
                or name in (cfg.user_field, cfg.password_field)
                or is_confirm_field(name)
                or "mail" in name.lower()
                or bool(IDENT_NAME_RE.search(name))
            )
            if wanted and not (prop or {}).get("readOnly") and not _CSRF_RE.search(name):
                body[name] = self._value(name, prop or {}, ident, password, tag)
        body.update(cfg.credentials(ident, password))
        if cfg.source == "--auth":
            body.update(cfg.register_extra)  # what the user told us wins
        return body

    def _value(self, name: str, prop: dict, ident: str, password: str, tag: str) -> Any:
        cfg = self.cfg
        assert cfg is not None
        low = name.lower()
        if name == cfg.user_field:
            return ident
        if "pass" in low or is_confirm_field(name):
            return password
        if "mail" in low or prop.get("format") == "email":
            return ident if "@" in ident else f"bimpl{tag}@example.com"
        if IDENT_NAME_RE.search(name) and prop.get("type", "string") == "string" and not prop.get("enum"):
            return fit_length(ident if "@" not in ident else f"bimpl{tag}", prop)
        if name in cfg.register_extra:
            return cfg.register_extra[name]
        return example_value(self.ctx.spec, prop, name) if prop else f"bimpl{tag}"

    def _fields_asked_for(self, text: str, body: dict) -> list[str]:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text[:4000]))
        return [f for f in KNOWN_FIELDS if f in words and f not in body][:3]

    # ---- logging in -----------------------------------------------------------------------------------
    def login_request(
        self,
        ident: str,
        password: str,
        *,
        retry_429: bool = True,
        extra: dict | None = None,
        cookies: dict[str, str] | None = None,
    ) -> tuple[httpx.Response | None, dict[str, str]]:
        """One login attempt (with `extra` fields, e.g. `next`, and the `cookies` a browser already had);
        returns the answer and the cookies sent with it."""
        cfg = self.cfg
        assert cfg is not None
        self.ctx.remember_secret(password)
        body = {**cfg.login_body(ident, password), **(extra or {})}
        pre_cookies: dict[str, str] = dict(cookies or {})
        if cfg.login_encoding == "form":
            hidden, page_cookies = self._form_page(cfg.login_path, pre_cookies)
            pre_cookies = {**pre_cookies, **page_cookies}
            body = {**hidden, **body}
        resp = self._post(cfg.login_path, body, cfg.login_encoding, cookies=pre_cookies, retry_429=retry_429)
        return resp, pre_cookies

    def _form_page(
        self, path: str, cookies: dict[str, str] | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The hidden fields (a CSRF token) and cookies of the HTML form a browser would show first."""
        page = self.ctx.request("GET", path, quiet=True, retry_429=False, cookies=cookies)
        if not is_html(page):
            return {}, {}
        return hidden_fields(page.text), dict(page.cookies)

    def log_in(
        self, ident: str, password: str, *, register_resp: httpx.Response | None = None
    ) -> User | None:
        from .base import User, json_of

        cfg = self.cfg
        if cfg is None:
            self.reason = (
                self.reason or "no login found (none in the document, none at the usual paths); see --auth"
            )
            return None
        resp, pre = self.login_request(ident, password)
        if (resp is None or resp.status_code >= 400) and register_resp is not None:
            # Some APIs log the new user in at registration and have no separate login for them yet.
            token = self.token_from(register_resp)
            if token:
                resp = register_resp
        why = self.login_failure(resp)
        if why:
            self.reason = f"login failed: POST {cfg.login_path} {why}"
            return None
        assert resp is not None
        token = self.token_from(resp)
        cookies = {**pre, **dict(resp.cookies)}
        if register_resp is not None:
            cookies = {**dict(register_resp.cookies), **cookies}
        fields = {cfg.user_field: ident}
        if register_resp is not None:
            fields.update({k: v for k, v in self.last_body.items() if isinstance(v, str) and k != cfg.password_field
                           and not is_confirm_field(k) and ("mail" in k.lower() or IDENT_NAME_RE.search(k))})  # fmt: skip
        user = User(ident, password, token=token, cookies=cookies if not token else dict(resp.cookies),
                    register_json=json_of(register_resp), login_json=json_of(resp), fields=fields)  # fmt: skip
        user.set_cookies = resp.headers.get_list("set-cookie")
        return self._accepted(user, f"POST {cfg.login_path}")

    def login_failure(self, resp: httpx.Response | None) -> str | None:
        """Why a login answer did not let the client in; None when it did."""
        if resp is None:
            return "got no answer"
        if resp.status_code >= 400:
            excerpt = text_excerpt(resp)
            return f"-> HTTP {resp.status_code}" + (f" {excerpt}" if excerpt else "")
        if self._redirected(resp, _LOGIN_AGAIN_RE):
            return f"redirected to {resp.headers.get('location')}"
        if not self.token_from(resp) and not resp.cookies:
            if is_html(resp) and any(i.get("type") == "password" for i in inputs(resp.text)):
                return "answered the login form again"
            return f"-> HTTP {resp.status_code} without a token or a session cookie"
        return None

    @staticmethod
    def _redirected(resp: httpx.Response, back: re.Pattern[str]) -> bool:
        """A redirect back to the form (or to an error): the browser flow's way of saying no."""
        if not 300 <= resp.status_code < 400:
            return False
        loc = urlsplit(resp.headers.get("location", ""))
        return bool(back.search(loc.path) or _ERROR_RE.search(loc.query) or _ERROR_RE.search(loc.path))

    def token_from(self, resp: httpx.Response | None) -> str | None:
        from .base import json_of

        if resp is None:
            return None
        token = find_token(json_of(resp), self.cfg.token_key if self.cfg else None)
        if token:
            return token
        header = resp.headers.get("authorization", "")
        return header.split(" ", 1)[1] if header.lower().startswith("bearer ") else None

    def _accepted(self, user: User, via: str) -> User | None:
        """The login works only if a protected operation accepts what it gave (and picks how the token is
        sent when the document does not say)."""
        from .base import find_key, jwt_claims

        cfg = self.cfg or AuthConfig()
        self.ctx.remember_secret(user.token or "")
        for value in user.cookies.values():
            self.ctx.remember_secret(value)
        prefixes = [cfg.token_prefix] if cfg.token_prefix is not None else ["Bearer", "Token", ""]
        guards = self.guards()
        if user.token:
            user.header_name = cfg.token_header
            for prefix in prefixes:
                user.prefix = prefix
                if not guards or self._passes(user, guards[0]):
                    break
            else:
                self.reason = f"the API refused the token from {via} on GET {guards[0]} (tried as {self._shown(prefixes)})"
                return None
            if cfg.token_prefix is None and guards:
                cfg.token_prefix = user.prefix  # found out once, for every user
        else:
            # A browser names the page's origin on every unsafe request, and apps that check it (against
            # CSRF) refuse writes without it; the app's own pages are on its own origin.
            user.extra_headers.setdefault("Origin", self.ctx.origin)
            self._csrf(user)
            if guards and not self._passes(user, guards[0]):
                self.reason = f"the API refused the session cookie from {via} on GET {guards[0]}"
                return None
        user.id = find_key(user.register_json, ("id", "_id", "userId", "user_id", "uuid"))
        user.id = (
            user.id if user.id is not None else find_key(user.login_json, ("id", "_id", "userId", "user_id"))
        )
        if user.id is None:
            claims = jwt_claims(user.token) or {}
            user.id = claims.get("sub") or claims.get("id") or claims.get("userId")
        return user

    @staticmethod
    def _shown(prefixes: list[str | None]) -> str:
        return ", ".join(repr(f"{p} <token>".strip()) for p in prefixes)

    def guards(self) -> list[str]:
        """Protected GET paths without parameters that refuse a request without credentials."""
        if self._guards is None:
            self._guards = []
            ops = [o for o in self.ctx.get_ops(with_path_params=False) if o.secured]
            ops.sort(key=lambda o: not re.search(r"/(me|profile|account|whoami|user)\b", o.path, re.I))
            for op in ops[:4]:
                if any(p.required for p in op.query_params):
                    continue
                resp = self.ctx.request("GET", op.path, quiet=True)
                if resp is not None and (self.ctx.denied(resp)):
                    self._guards.append(op.path)
                    break
        return self._guards

    def _passes(self, user: User, path: str) -> bool:
        resp = self.ctx.request("GET", path, user=user, quiet=True)
        return resp is not None and resp.status_code < 400 and not self.ctx.denied(resp)

    def _csrf(self, user: User) -> None:
        """For a cookie session: the CSRF token the app wants on unsafe requests, from a csrf endpoint of the
        document, a csrf cookie or a hidden form field, sent as a header (and a form field)."""
        from .base import find_key, json_of

        token, header, field = None, "X-CSRF-Token", None
        for op in self.ctx.ops:
            for p in op.params:
                if p.where == "header" and _CSRF_RE.search(p.name):
                    header = p.name
        for op in self.ctx.get_ops(with_path_params=False):
            if _CSRF_RE.search(op.path):
                resp = self.ctx.request("GET", op.path, user=user, quiet=True)
                if resp is not None and resp.status_code < 400:
                    user.cookies.update(dict(resp.cookies))
                    token = find_key(json_of(resp), ("csrfToken", "csrf_token", "csrf", "_csrf", "xsrfToken",
                                                     "token"))  # fmt: skip
                    if token is None and is_html(resp):
                        token = next(
                            (v for k, v in hidden_fields(resp.text).items() if _CSRF_RE.search(k)), None
                        )
                    if token:
                        break
        if token is None:
            token = next((v for k, v in user.cookies.items() if _CSRF_RE.search(k)), None)
        if token is None and self.cfg is not None:
            for path in dict.fromkeys(("/", self.cfg.login_path)):
                resp = self.ctx.request("GET", path, user=user, quiet=True)
                if is_html(resp):
                    found = {k: v for k, v in hidden_fields(resp.text).items() if _CSRF_RE.search(k)}
                    if found:
                        field, token = next(iter(found.items()))
                        break
        if token:
            user.extra_headers[header] = str(token)
            user.form_extra[field or "_csrf"] = str(token)
            self.ctx.remember_secret(str(token))

    def _post(
        self,
        path: str,
        body: dict,
        encoding: str,
        *,
        cookies: dict[str, str] | None = None,
        retry_429: bool = True,
    ) -> httpx.Response | None:
        if encoding == "form":
            return self.ctx.request("POST", path, form=body, cookies=cookies, retry_429=retry_429)
        return self.ctx.request("POST", path, json_body=body, cookies=cookies, retry_429=retry_429)

    def describe(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "login": None if cfg is None else {
                "register": cfg.register_path, "login": cfg.login_path, "user_field": cfg.user_field,
                "encoding": cfg.login_encoding, "source": cfg.source,
                "sends": "cookie" if self.users and not self.users[0].token else (
                    f"{cfg.token_header}: {(cfg.token_prefix or '') + ' ' if cfg.token_prefix else ''}<token>"),
            },
            "graphql_login": self.signup_mutation and (
                f"mutation {self.signup_mutation}"
                + (f", then mutation {self.login_mutation}" if self.login_mutation else "")),
            "users": [u.ident for u in self.users],
            "registered": list(self.created),
            "reason": self.reason,
        }  # fmt: skip


__all__ = ["Accounts", "hidden_fields", "inputs", "is_html", "retry_after", "text_excerpt"]
