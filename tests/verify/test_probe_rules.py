"""The decision rules of the access-control, exposure, bounds, redirect, SSRF and session probes, on the
shapes real apps answer with (the corpus runs them end to end against servers)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from backend_implementor.verify.openapi_doc import Operation
from backend_implementor.verify.probes.base import User
from backend_implementor.verify.probes.bounds import violations
from backend_implementor.verify.probes.exposure import leaks
from backend_implementor.verify.probes.function_authz import admin_only
from backend_implementor.verify.probes.jwt_tamper import CANDIDATES, cookie_secret
from backend_implementor.verify.probes.sessions import attributes, same_site, session_cookies
from backend_implementor.verify.probes.ssrf import Canary, is_url_input


@pytest.mark.parametrize(
    ("name", "schema", "values"),
    [
        ("quantity", {"type": "integer", "minimum": 1}, [-1]),
        ("rating", {"type": "integer", "minimum": 1, "maximum": 5}, [-1, 6]),
        ("delta", {"type": "integer", "minimum": -100}, [-101]),
        ("price", {"type": "number"}, [-1]),  # undocumented, but a price is never negative
        ("amount", {"type": ["number", "null"]}, [-1]),
        ("discount", {"type": "integer"}, []),  # signed by design: never guessed at
        ("temperature_offset", {"type": "number"}, []),
        ("count", {"type": "integer"}, []),  # a cart's count may remove items
        ("quantity", {"type": "string"}, []),
        ("stars", {"type": "integer", "minimum": 1, "exclusiveMaximum": True, "maximum": 6}, [-1, 7]),
    ],
)
def test_bounds_come_from_the_document_or_from_names_that_cannot_be_negative(name, schema, values):
    assert [v for v, _ in violations(name, schema)] == values


def test_exposure_flags_password_fields_env_dumps_and_other_accounts_tokens():
    me = {"alice@example.com", "alice"}
    assert (
        leaks({"id": 1, "email": "alice@example.com", "password_hash": "scrypt$ab$cd"}, caller=me)[0]
        == "password"
    )
    assert leaks({"user": {"passwordHash": "$2b$10$N9qo8uLOickgx2ZMRZoMye"}}, caller=me)[0] == "password"
    assert leaks({"password": "********"}, caller=me) is None  # masked
    assert leaks({"password": {"type": "string"}}, caller=me) is None  # a schema, not a value
    env = {
        "uptime": 3,
        "env": {"PATH": "/usr/bin", "HOME": "/root", "NODE_ENV": "dev", "PORT": "1", "JWT_SECRET": "s"},
    }
    assert leaks(env, caller=me)[0] == "env"
    members = [
        {"email": "bob@example.com", "api_key": "k" * 32},
        {"email": "carol@example.com", "api_key": "q" * 32},
    ]
    assert leaks(members, caller=me)[0] == "token"
    assert leaks(members, caller=set())[0] == "token"  # anonymous
    # The caller's own record and tokens in login answers are theirs to see.
    assert leaks({"email": "alice@example.com", "api_key": "k" * 32}, caller=me) is None
    assert leaks({"access_token": "t" * 40, "user": {"email": "bob@example.com"}}, caller=None) is None
    assert leaks([{"name": "vault", "secret": "s" * 20}], caller=me) is None  # no account named
    assert leaks({"ok": True, "note": "started with k3y-of-the-server"}, caller=me, secrets=("k3y-of-the-server",),
                 text='{"note": "started with k3y-of-the-server"}')[0] == "secret"  # fmt: skip
    assert (
        leaks({"openapi": "3.1.0", "components": {"examples": {"password": "hunter22"}}}, caller=me) is None
    )


def _op(path: str, **op) -> Operation:
    return Operation("GET", path, op)


def test_admin_operations_are_known_by_path_tags_words_or_role_extensions():
    assert admin_only(_op("/admin/users"))
    assert admin_only(_op("/api/v1/admin/orders/export"))
    assert admin_only(_op("/api/users", summary="List all users (admin only)"))
    assert admin_only(_op("/api/users", description="Requires the admin role."))
    assert admin_only(_op("/api/users", tags=["Admin"]))
    assert admin_only(_op("/reports", **{"x-roles": ["admin"]}))
    assert not admin_only(_op("/api/users/{id}", summary="Read a user's public profile"))
    assert not admin_only(_op("/reports", **{"x-roles": ["admin", "member"]}))
    assert not admin_only(_op("/api/administrative-areas"))
    assert admin_only(_op("/api/accounts", summary="All accounts (administrators only)"))
    assert admin_only(_op("/api/users", description="Admin role required."))
    # A wider view for admins is not a gate: ordinary users may call it too.
    assert not admin_only(_op("/api/tickets", summary="Your tickets (all tickets for administrators)"))
    assert not admin_only(_op("/api/posts", description="Admins get full access; users see their own"))


def test_url_inputs_by_format_or_name():
    assert is_url_input("url", {"type": "string"})
    assert is_url_input("callback_url", {})
    assert is_url_input("imageUrl", {"type": "string"})
    assert is_url_input("target", {"type": "string", "format": "uri"})
    assert is_url_input("webhook", {"type": "string"})
    assert not is_url_input("title", {"type": "string"})
    assert not is_url_input("url", {"type": "string", "enum": ["a", "b"]})
    assert not is_url_input("curl_count", {"type": "integer"})


def test_the_canary_records_requests_by_token():
    with httpx.Client(trust_env=False) as client:
        c = Canary()
        try:
            assert client.get(c.url("abc123")).status_code == 200
            assert c.seen("abc123") == "GET /bimpl-ssrf/abc123"
            assert c.seen("other") is None
        finally:
            c.close()


def test_cookie_attributes_and_which_cookies_carry_the_session():
    headers = ["sid=abc; Path=/; HttpOnly; SameSite=Lax", "csrf_token=xyz; Path=/", "theme=dark; Path=/"]
    attrs = attributes(headers)
    assert attrs["sid"] == {"path": "/", "httponly": True, "samesite": "Lax"}
    user = User(
        "alice", "pw", cookies={"sid": "abc", "csrf_token": "xyz", "theme": "dark"}, set_cookies=headers
    )
    assert session_cookies(user) == ["sid"]
    assert same_site(user, "sid") == "lax"
    # An app may call its session anything: then every cookie of the login but a CSRF one counts.
    other = User("bob", "pw", cookies={"appstate": "q"}, set_cookies=["appstate=q; Path=/"])
    assert session_cookies(other) == ["appstate"]


def test_weak_secrets_in_their_usual_spellings_and_signed_cookies():
    for spelling in (
        "SuperSecret",
        "super-secret",
        "SUPER_SECRET",
        "superSecret",
        "Keyboard Cat",
        "changeme",
    ):
        assert spelling in CANDIDATES
    sid = "k2fLq0Zt"
    mac = base64.b64encode(hmac.new(b"Keyboard Cat", sid.encode(), hashlib.sha256).digest()).decode()
    assert cookie_secret(f"s%3A{sid}.{mac.rstrip('=')}") == "Keyboard Cat"
    strong = base64.b64encode(hmac.new(b"x" * 32, sid.encode(), hashlib.sha256).digest()).decode()
    assert cookie_secret(f"s:{sid}.{strong.rstrip('=')}") is None
    assert cookie_secret("plainvalue") is None
