"""How verify gets a bearer token for the contract stage: `--auth` parsing, detection, register + login.

Detection follows bimpl's own convention (POST /auth/register + /auth/login with {email, password},
token in `access_token`) and otherwise looks for register/login-like POST paths in the OpenAPI doc."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

_KEYS = {
    "register": "register_path",
    "login": "login_path",
    "user": "user_field",
    "password": "password_field",
    "token": "token_key",
}


class AuthOptionError(ValueError):
    pass


@dataclass
class AuthSpec:
    register_path: str | None = "/auth/register"
    login_path: str = "/auth/login"
    user_field: str = "email"
    password_field: str = "password"
    token_key: str = "access_token"
    register_extra: dict[str, Any] = field(default_factory=dict)  # other fields registration requires
    source: str = "bimpl convention"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_auth_option(text: str) -> AuthSpec:
    """`register=/signup,login=/login,user=email,password=password,token=token` (any subset);
    `extra.NAME=VALUE` adds a field to the registration body (same syntax as the probes' parser)."""
    spec = AuthSpec(source="--auth")
    given = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise AuthOptionError(f"--auth: expected key=value, got {part!r}")
        if key.startswith("extra.") and len(key) > len("extra."):
            spec.register_extra[key[len("extra.") :]] = value
            given.add(key)
            continue
        if key not in _KEYS:
            raise AuthOptionError(f"--auth: unknown key {key!r} (known: {', '.join(_KEYS)}, extra.NAME)")
        if key in ("register", "login") and not value.startswith("/"):
            raise AuthOptionError(f"--auth: {key} must be a path starting with '/', got {value!r}")
        setattr(spec, _KEYS[key], value)
        given.add(key)
    if not given:
        raise AuthOptionError(
            "--auth: empty; e.g. register=/signup,login=/login,user=email,password=password"
        )
    if "register" not in given and "login" in given:
        spec.register_path = None  # only login given: verify cannot create users itself
    return spec


def _post_ops(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, item in (doc.get("paths") or {}).items():
        if isinstance(item, dict) and isinstance(item.get("post"), dict):
            out[str(path)] = item["post"]
    return out


def _body_props(op: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    content = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    schema = content.get("schema") or {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def detect_auth_spec(doc: dict[str, Any] | None) -> AuthSpec | None:
    """None when the API shows no way to log in."""
    if not doc:
        return None
    posts = _post_ops(doc)
    if "/auth/register" in posts and "/auth/login" in posts:
        return AuthSpec()
    login = next((p for p in posts if re.search(r"(^|/)(log-?in|sign-?in|token|sessions?)$", p, re.I)), None)
    if login is None:
        return None
    register = next((p for p in posts if re.search(r"(^|/)(register|sign-?up|users)$", p, re.I)), None)
    props = _body_props(posts[login], doc)
    user_field = next((f for f in ("email", "username", "user", "login", "name") if f in props), "email")
    password_field = next((f for f in ("password", "pass", "pwd") if f in props), "password")
    return AuthSpec(register, login, user_field, password_field, "access_token", source="OpenAPI document")


_TOKEN_KEYS = ("access_token", "accessToken", "token", "jwt", "id_token")


def _find_token(body: Any, preferred: str) -> str | None:
    if isinstance(body, dict):
        for key in (preferred, *_TOKEN_KEYS):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        for value in body.values():  # e.g. {"data": {"token": ...}}
            if isinstance(value, dict):
                found = _find_token(value, preferred)
                if found:
                    return found
    return None


@dataclass
class TokenResult:
    token: str | None
    detail: str  # what happened, for the report


def obtain_token(base_url: str, spec: Any, *, timeout_s: float = 10.0) -> TokenResult:
    """Register a fresh user (when a register path is known) and log in. Never raises on HTTP trouble.

    `spec` is an AuthSpec or anything with the same attributes (the probes' AuthConfig)."""
    ident = "bimpl-verify-" + secrets.token_hex(4)
    user = f"{ident}@example.com" if spec.user_field == "email" else ident
    password = "Vf-" + secrets.token_urlsafe(12)
    body = {spec.user_field: user, spec.password_field: password}
    source = getattr(spec, "source", "detected")
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s, trust_env=False) as client:
            if spec.register_path:
                r = client.post(
                    spec.register_path, json={**(getattr(spec, "register_extra", None) or {}), **body}
                )
                if r.status_code >= 400:
                    return TokenResult(
                        None, f"POST {spec.register_path} -> {r.status_code}; running unauthenticated"
                    )
                try:
                    token = _find_token(r.json(), spec.token_key)
                except ValueError:
                    token = None
                if token and spec.login_path == spec.register_path:
                    return TokenResult(token, f"registered {user} via {spec.register_path}")
            r = client.post(spec.login_path, json=body)
            if r.status_code >= 400:
                return TokenResult(
                    None, f"POST {spec.login_path} -> {r.status_code}; running unauthenticated"
                )
            try:
                token = _find_token(r.json(), spec.token_key)
            except ValueError:
                token = None
            if not token:
                return TokenResult(
                    None, f"POST {spec.login_path} answered without a token; running unauthenticated"
                )
            return TokenResult(token, f"registered and logged in as {user} ({source})")
    except httpx.HTTPError as exc:
        return TokenResult(None, f"login failed ({type(exc).__name__}); running unauthenticated")
