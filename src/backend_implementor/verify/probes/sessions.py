"""What cookie sessions share: which cookies carry the session, and the attributes their Set-Cookie gave."""

from __future__ import annotations

import re
from dataclasses import replace

from .base import User

SESSION_NAME = re.compile(r"sess|sid|connect\.sid|auth|token|jwt|login|user|remember", re.I)


def attributes(set_cookie: list[str]) -> dict[str, dict[str, str | bool]]:
    """Cookie name -> its attributes (lower-case keys; flags as True) from raw Set-Cookie headers."""
    out: dict[str, dict[str, str | bool]] = {}
    for header in set_cookie:
        name, _, rest = header.partition("=")
        attrs: dict[str, str | bool] = {}
        for part in rest.split(";")[1:]:
            key, eq, value = part.strip().partition("=")
            attrs[key.lower()] = value.strip() if eq else True
        out[name.strip()] = attrs
    return out


def session_cookies(user: User) -> list[str]:
    """The cookies of a login that carry the session: the ones named like a session, else all of them
    (an app may call its session anything); never a CSRF cookie."""
    names = [
        n for n in attributes(user.set_cookies) if n in user.cookies and not re.search(r"csrf|xsrf", n, re.I)
    ]
    named = [n for n in names if SESSION_NAME.search(n)]
    return named or names


def same_site(user: User, name: str) -> str:
    value = attributes(user.set_cookies).get(name, {}).get("samesite")
    return value.lower() if isinstance(value, str) else ""


def without_csrf(user: User) -> User:
    """The same login, sending only its cookies: no CSRF header or form field."""
    return replace(user, extra_headers={}, form_extra={})
