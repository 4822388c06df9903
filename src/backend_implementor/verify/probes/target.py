"""What the probes attack (a running backend) and how they obtain a token from it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .openapi import deref, example_value, json_body_schema

# bimpl's own convention (what `bimpl new` generates): POST /auth/register + /auth/login {email,password}.
DEFAULT_AUTH = {
    "register_path": "/auth/register",
    "login_path": "/auth/login",
    "user_field": "email",
    "password_field": "password",
    "token_key": "access_token",
}

_TOKEN_KEYS = ("access_token", "accessToken", "token", "jwt", "id_token", "idToken", "authToken")
_USER_FIELDS = ("email", "username", "user_name", "userName", "login", "user", "name")


@dataclass
class AuthConfig:
    register_path: str = DEFAULT_AUTH["register_path"]
    login_path: str = DEFAULT_AUTH["login_path"]
    user_field: str = DEFAULT_AUTH["user_field"]  # "email" or "username" (or what the API calls it)
    password_field: str = DEFAULT_AUTH["password_field"]
    token_key: str = DEFAULT_AUTH["token_key"]  # JSON key of the token in the login (or register) response
    register_extra: dict[str, Any] = field(default_factory=dict)  # other required register fields


@dataclass
class ProbeTarget:
    base_url: str
    openapi: dict | None = None
    auth: AuthConfig | None = None
    db_url: str | None = None  # postgres URL, sqlite file, or a directory/file to scan raw (e.g. PGlite data)
    is_alive: Callable[[], bool] = field(default=lambda: True)


def _post_ops(openapi: dict) -> list[tuple[str, dict]]:
    out = []
    for path, item in (openapi.get("paths") or {}).items():
        if isinstance(item, dict) and isinstance(item.get("post"), dict):
            out.append((path, item["post"]))
    return out


def _pick(paths: list[tuple[str, dict]], pattern: str) -> tuple[str, dict] | None:
    rx = re.compile(pattern, re.I)
    hits = [(p, op) for p, op in paths if rx.search(p)]
    # Prefer the shortest matching path without path parameters: "/auth/login" over "/auth/login/{provider}".
    hits.sort(key=lambda h: ("{" in h[0], len(h[0])))
    return hits[0] if hits else None


def detect_auth(openapi: dict | None, base_url: str = "") -> AuthConfig | None:
    """Register/login paths and body fields from the OpenAPI document; bimpl's conventions without one.

    Returns None when the document describes no way to register and log in."""
    if not openapi:
        return AuthConfig()
    posts = _post_ops(openapi)
    login = _pick(posts, r"(^|/)(log-?in|sign-?in|sessions?|tokens?|auth/token)(/|$)")
    register = _pick(posts, r"(^|/)(register|sign-?up|users|accounts|create_user)(/|$)")
    if not login or not register:
        return None
    reg_schema = json_body_schema(openapi, register[1]) or {}
    login_schema = json_body_schema(openapi, login[1]) or {}
    reg_props = (deref(openapi, reg_schema).get("properties") or {}) if reg_schema else {}
    login_props = (deref(openapi, login_schema).get("properties") or {}) if login_schema else {}
    props = login_props or reg_props
    user_field = next((f for f in _USER_FIELDS if f in props), None)
    password_field = next((f for f in props if "pass" in f.lower()), None)
    if not user_field or not password_field:
        return None
    token_key = _token_key_from_responses(openapi, login[1]) or DEFAULT_AUTH["token_key"]
    required = deref(openapi, reg_schema).get("required") or [] if reg_schema else []
    extra = {}
    for name in required:
        if name in (user_field, password_field) or name not in reg_props:
            continue
        extra[name] = example_value(openapi, reg_props[name], name)
    return AuthConfig(
        register_path=register[0],
        login_path=login[0],
        user_field=user_field,
        password_field=password_field,
        token_key=token_key,
        register_extra=extra,
    )


def _token_key_from_responses(openapi: dict, op: dict) -> str | None:
    for code, resp in (op.get("responses") or {}).items():
        if not str(code).startswith("2"):
            continue
        resp = deref(openapi, resp)
        schema = deref(
            openapi, ((resp.get("content") or {}).get("application/json") or {}).get("schema") or {}
        )
        props = schema.get("properties") or {}
        for key in _TOKEN_KEYS:
            if key in props:
                return key
    return None


_OPTION_KEYS = {
    "register": "register_path",
    "login": "login_path",
    "user": "user_field",
    "password": "password_field",
    "token": "token_key",
}


def parse_auth_option(text: str) -> AuthConfig:
    """Parse `register=/signup,login=/login,user=email,password=password,token=token`.

    Unnamed keys keep bimpl's defaults; `extra.NAME=VALUE` adds a register field."""
    cfg = AuthConfig()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"--auth: expected key=value, got {part!r}")
        if key.startswith("extra."):
            cfg.register_extra[key[len("extra.") :]] = value
        elif key in _OPTION_KEYS:
            if key in ("register", "login") and not value.startswith("/"):
                raise ValueError(f"--auth: {key} must be a path starting with '/', got {value!r}")
            setattr(cfg, _OPTION_KEYS[key], value)
        else:
            allowed = ", ".join([*_OPTION_KEYS, "extra.NAME"])
            raise ValueError(f"--auth: unknown key {key!r} (allowed: {allowed})")
    return cfg
