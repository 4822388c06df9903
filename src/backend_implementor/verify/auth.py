"""How verify registers and logs in to a backend: `--auth` parsing, detection, fresh credentials, tokens.

One `AuthConfig` serves the contract stage (`obtain_token`, a bearer token for schemathesis) and the
security probes (probes/base.py registers and logs in its own users with it).

Detection follows bimpl's own convention first (POST /auth/register + /auth/login with {email, password},
token in `access_token`), then register/login-like POST paths in the OpenAPI document, reading the body
fields, the token key of the login response and the other fields registration requires."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .openapi_doc import deref, example_value, json_body_schema, merged_schema

CONVENTION = "bimpl convention"
FROM_DOCUMENT = "OpenAPI document"
FROM_OPTION = "--auth"


@dataclass
class AuthConfig:
    register_path: str = "/auth/register"
    login_path: str = "/auth/login"
    user_field: str = "email"  # "email" or "username" (or what the API calls it)
    password_field: str = "password"
    token_key: str = "access_token"  # JSON key of the token in the login (or register) response
    register_extra: dict[str, Any] = field(default_factory=dict)  # other fields registration requires
    source: str = field(default=CONVENTION, compare=False)  # where it came from, for the report

    def credentials(self, ident: str, password: str) -> dict[str, str]:
        """The login body (and the core of the register body)."""
        return {self.user_field: ident, self.password_field: password}


# ---------------------------------------------------------------- --auth


class AuthOptionError(ValueError):
    """A malformed --auth value; the message is meant for the user as is."""


_OPTION_KEYS = {
    "register": "register_path",
    "login": "login_path",
    "user": "user_field",
    "password": "password_field",
    "token": "token_key",
}


def parse_auth_option(text: str) -> AuthConfig:
    """`register=/signup,login=/login,user=email,password=password,token=token` (any subset; the rest keeps
    bimpl's convention); `extra.NAME=VALUE` adds a field to the registration body."""
    cfg = AuthConfig(source=FROM_OPTION)
    given = False
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise AuthOptionError(f"--auth: expected key=value, got {part!r}")
        if key.startswith("extra.") and len(key) > len("extra."):
            cfg.register_extra[key[len("extra.") :]] = value
        elif key in _OPTION_KEYS:
            if key in ("register", "login") and not value.startswith("/"):
                raise AuthOptionError(f"--auth: {key} must be a path starting with '/', got {value!r}")
            setattr(cfg, _OPTION_KEYS[key], value)
        else:
            known = ", ".join([*_OPTION_KEYS, "extra.NAME"])
            raise AuthOptionError(f"--auth: unknown key {key!r} (known: {known})")
        given = True
    if not given:
        raise AuthOptionError(
            "--auth: empty; e.g. register=/signup,login=/login,user=email,password=password"
        )
    return cfg


# ---------------------------------------------------------------- detection

TOKEN_KEYS = ("access_token", "accessToken", "token", "jwt", "id_token", "idToken", "authToken")
_USER_FIELDS = ("email", "username", "user_name", "userName", "login", "user", "name")
_LOGIN_RE = re.compile(r"(^|/)(log-?in|sign-?in|sessions?|tokens?|auth/token)(/|$)", re.I)
_REGISTER_RE = re.compile(r"(^|/)(register|sign-?up|users|accounts|create_user)(/|$)", re.I)


def _post_ops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = doc.get("paths")
    out = {}
    for path, item in paths.items() if isinstance(paths, dict) else ():
        post = deref(doc, item).get("post") if isinstance(item, dict) else None
        if isinstance(post, dict):
            out[str(path)] = post
    return out


def _pick(paths: Iterable[str], rx: re.Pattern[str]) -> str | None:
    # The shortest match without path parameters: "/auth/login" over "/auth/login/{provider}".
    hits = sorted((p for p in paths if rx.search(p)), key=lambda p: ("{" in p, len(p)))
    return hits[0] if hits else None


def detect_auth(doc: dict[str, Any] | None) -> AuthConfig | None:
    """bimpl's convention without a document or when it has bimpl's paths; otherwise what the document
    shows. None when the document describes no way to register and log in."""
    default = AuthConfig()
    if not doc:
        return default
    posts = _post_ops(doc)
    if default.register_path in posts and default.login_path in posts:
        register, login, source = default.register_path, default.login_path, CONVENTION
    else:
        register, login, source = _pick(posts, _REGISTER_RE), _pick(posts, _LOGIN_RE), FROM_DOCUMENT
        if register is None or login is None:
            return None
    reg_schema = json_body_schema(doc, posts[register]) or {}
    reg_props = reg_schema.get("properties") or {}
    props = (json_body_schema(doc, posts[login]) or {}).get("properties") or reg_props
    user_field = next((f for f in _USER_FIELDS if f in props), None)
    password_field = next((f for f in props if "pass" in f.lower()), None)
    if source == FROM_DOCUMENT and not (user_field and password_field):
        return None
    user_field, password_field = user_field or default.user_field, password_field or default.password_field
    extra = {
        name: example_value(doc, reg_props[name], name)
        for name in reg_schema.get("required") or []
        if name not in (user_field, password_field) and name in reg_props
    }
    return AuthConfig(
        register_path=register,
        login_path=login,
        user_field=user_field,
        password_field=password_field,
        token_key=_token_key_from_responses(doc, posts[login]) or default.token_key,
        register_extra=extra,
        source=source,
    )


def _token_key_from_responses(doc: dict[str, Any], op: dict[str, Any]) -> str | None:
    for code, resp in (op.get("responses") or {}).items():
        if not str(code).startswith("2"):
            continue
        content = deref(doc, resp).get("content") or {}
        schema = merged_schema(doc, (content.get("application/json") or {}).get("schema") or {})
        props = schema.get("properties") or {}
        key = next((k for k in TOKEN_KEYS if k in props), None)
        if key:
            return key
    return None


# ---------------------------------------------------------------- users and tokens


def new_credentials(cfg: AuthConfig) -> tuple[str, str]:
    """A fresh user (an e-mail address when the user field is one) and a password strong enough for the
    usual rules (upper and lower case, digit, symbol)."""
    tag = secrets.token_hex(4)
    ident = f"bimpl-{tag}@example.com" if "mail" in cfg.user_field.lower() else f"bimpl_{tag}"
    return ident, f"Bimpl-{secrets.token_hex(5)}-Pw9!"


def find_token(data: Any, preferred: str | None = None, _depth: int = 0) -> str | None:
    """The token in a login/register response body: the `preferred` key, then the usual names, also inside
    an envelope such as {"data": {"token": ...}}."""
    if not isinstance(data, dict) or _depth > 4:
        return None
    for key in (preferred, *TOKEN_KEYS) if preferred else TOKEN_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    for value in data.values():
        found = find_token(value, preferred, _depth + 1)
        if found:
            return found
    return None


@dataclass
class TokenResult:
    token: str | None
    detail: str  # what happened, for the report
    refused: bool = False  # the backend answered registration or login with an error, or not at all


def obtain_token(base_url: str, cfg: AuthConfig, *, timeout_s: float = 10.0) -> TokenResult:
    """Register a fresh user and log in. Never raises on HTTP trouble: `detail` says what went wrong."""
    user, password = new_credentials(cfg)
    body = cfg.credentials(user, password)

    def token_of(r: httpx.Response) -> str | None:
        try:
            return find_token(r.json(), cfg.token_key)
        except ValueError:
            return None

    def refused(path: str, r: httpx.Response) -> TokenResult:
        return TokenResult(None, f"POST {path} -> {r.status_code}", refused=True)

    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s, trust_env=False) as client:
            r = client.post(cfg.register_path, json={**cfg.register_extra, **body})
            if r.status_code >= 400:
                return refused(cfg.register_path, r)
            token = token_of(r)
            if token and cfg.login_path == cfg.register_path:
                return TokenResult(token, f"registered {user} via {cfg.register_path} ({cfg.source})")
            r = client.post(cfg.login_path, json=body)
            if r.status_code >= 400:
                return refused(cfg.login_path, r)
            token = token_of(r)
            if not token:
                return TokenResult(None, f"POST {cfg.login_path} answered without a token")
            return TokenResult(token, f"registered and logged in as {user} ({cfg.source})")
    except httpx.HTTPError as exc:
        return TokenResult(None, f"login failed ({type(exc).__name__})", refused=True)
