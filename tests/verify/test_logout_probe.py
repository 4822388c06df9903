"""The logout probe (CWE-613) against a tiny in-process backend: cookie sessions and refresh tokens that a
logout does or does not end on the server, and the shared probe users it must leave logged in."""

from __future__ import annotations

import json
import re
import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend_implementor.verify import probes
from backend_implementor.verify.auth import AuthConfig
from backend_implementor.verify.probes import ProbeTarget, logout, open_session, run_probes


class _Backend:
    """/auth/register, /auth/login, /auth/logout, /auth/refresh and GET /me on 127.0.0.1.

    `mode`: "cookie" (a `sid` cookie naming a server-side session) or "refresh" (a bearer access token
    and a refresh token in the login answer). `revokes`: whether the logout ends the session (deletes it,
    or revokes the refresh token); `everywhere`: it ends every session of the account."""

    def __init__(self, mode: str, *, revokes: bool, everywhere: bool = False, refresh_token: bool = True):
        sessions: dict[str, str] = {}  # sid or access token -> email
        refreshes: dict[str, str] = {}  # refresh token -> email
        self.logouts = 0

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status, data=None, headers=()):
                raw = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _credential(self) -> str | None:
                if mode == "cookie":
                    for part in self.headers.get("Cookie", "").split(";"):
                        name, _, value = part.strip().partition("=")
                        if name == "sid":
                            return value
                    return None
                return self.headers.get("Authorization", "").removeprefix("Bearer ") or None

            def _issue(self, email: str) -> dict:
                access, refresh = "a" + secrets.token_hex(12), "r" + secrets.token_hex(12)
                sessions[access] = email
                if not refresh_token:
                    return {"access_token": access}
                refreshes[refresh] = email
                return {"access_token": access, "refresh_token": refresh}

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/auth/register":
                    return self._json(201, {"email": body.get("email")})
                if self.path == "/auth/login":
                    if mode == "cookie":
                        sid = secrets.token_hex(12)
                        sessions[sid] = body.get("email")
                        cookie = f"sid={sid}; Path=/; HttpOnly; SameSite=Lax"
                        return self._json(200, {"ok": True}, [("Set-Cookie", cookie)])
                    return self._json(200, self._issue(body.get("email")))
                if self.path == "/auth/refresh":
                    email = refreshes.pop(str(body.get("refresh_token")), None)
                    if email is None:
                        return self._json(401, {"error": "invalid refresh token"})
                    return self._json(200, self._issue(email))
                if self.path == "/auth/logout":
                    who = sessions.get(self._credential() or "")
                    if who is None:
                        return self._json(401, {"error": "unauthorized"})
                    outer.logouts += 1
                    if revokes and mode == "cookie":
                        for key in (
                            [k for k, v in sessions.items() if v == who]
                            if everywhere
                            else [self._credential()]
                        ):
                            sessions.pop(key, None)
                    if revokes and mode == "refresh":
                        refreshes.pop(str(body.get("refresh_token")), None)
                    return self._json(204)
                self._json(404, {"error": "not found"})

            def do_GET(self):
                if self.path == "/me":
                    who = sessions.get(self._credential() or "")
                    return (
                        self._json(200, {"email": who}) if who else self._json(401, {"error": "unauthorized"})
                    )
                self._json(404, {"error": "not found"})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _op(secured: bool = False, body: dict | None = None) -> dict:
    op: dict = {"responses": {"200": {"description": "ok"}}}
    if secured:
        op["security"] = [{"s": []}]
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return op


CREDS = {"type": "object", "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}
REFRESH = {"type": "object", "properties": {"refresh_token": {"type": "string"}}}


def _spec(*, logout_path: str | None = "/auth/logout", refresh: bool = True) -> dict:
    paths = {
        "/auth/register": {"post": _op(body=CREDS)},
        "/auth/login": {"post": _op(body=CREDS)},
        "/me": {"get": _op(secured=True)},
    }
    if logout_path:
        paths[logout_path] = {"post": _op(secured=True, body=REFRESH)}
    if refresh:
        paths["/auth/refresh"] = {"post": _op(body=REFRESH)}
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths}


@contextmanager
def _probed(backend: _Backend, spec: dict, monkeypatch):
    """The logout probe run on `backend`: (the run, its session, still open for checks)."""
    monkeypatch.setattr(probes, "PROBES", (logout,))
    ctx = None
    try:
        ctx = open_session(ProbeTarget(backend.url, spec, AuthConfig()), budget_s=20)
        yield run_probes(ctx, budget_s=20), ctx
    finally:
        if ctx is not None:
            ctx.http.close()
        backend.stop()


@pytest.mark.parametrize("mode", ["cookie", "refresh"])
@pytest.mark.parametrize("revokes", [False, True])
def test_a_logout_that_keeps_the_session_is_found(monkeypatch, mode, revokes):
    backend = _Backend(mode, revokes=revokes)
    with _probed(backend, _spec(), monkeypatch) as (run, ctx):
        shared = ctx.accounts.users[0]
        # The shared probe user was never the one logged out.
        assert ctx.request("GET", "/me", user=shared, quiet=True).status_code == 200
    (result,) = run.results
    assert backend.logouts == 1
    assert not run.inconclusive, result
    if revokes:
        assert run.findings == [] and result.outcome == "clean", result
        return
    (finding,) = run.findings
    assert finding.cwe == 613 and finding.severity == "medium"
    if mode == "cookie":
        assert finding.title == (
            "Logout does not end the session on the server: the session cookie 'sid' still works after "
            "POST /auth/logout"
        )
        assert finding.evidence.request.startswith("POST /auth/logout")
        assert "GET /me" in finding.evidence.request
    else:
        assert finding.title == (
            "Logout does not end the session on the server: the refresh token ('refresh_token') still gets "
            "new tokens from POST /auth/refresh after POST /auth/logout"
        )
        assert "POST /auth/refresh" in finding.evidence.request
        assert '"refresh_token": "<redacted>"' in finding.evidence.request
        # The tokens the replay minted are withheld too.
        assert re.search(r'"[ar][0-9a-f]{24}"', finding.evidence.response) is None, finding.evidence


def test_a_logout_of_every_session_logs_the_shared_users_in_again(monkeypatch):
    backend = _Backend("cookie", revokes=True, everywhere=True)
    with _probed(backend, _spec(), monkeypatch) as (run, ctx):
        for user in ctx.accounts.users:
            assert ctx.request("GET", "/me", user=user, quiet=True).status_code == 200
    assert run.findings == [] and not run.inconclusive
    assert any("logged in again" in c for c in run.changes)


def test_a_stateless_access_token_alone_is_not_asked_about(monkeypatch):
    backend = _Backend("refresh", revokes=False, refresh_token=False)
    with _probed(backend, _spec(), monkeypatch) as (run, _ctx):
        (result,) = run.results
    assert run.findings == [] and result.outcome == "clean"
    assert "no refresh token" in result.detail and backend.logouts == 0


def test_no_logout_operation_is_not_applicable(monkeypatch):
    backend = _Backend("cookie", revokes=False)
    with _probed(backend, _spec(logout_path=None, refresh=False), monkeypatch) as (run, _ctx):
        (result,) = run.results
    assert result.outcome == "clean" and result.detail == "not applicable: no logout operation"


def test_the_logout_operation_is_found_by_path_or_by_its_words():
    from types import SimpleNamespace

    from backend_implementor.verify.openapi_doc import operations

    def found(paths: dict) -> str | None:
        spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths}
        op = logout.logout_operation(SimpleNamespace(ops=operations(spec)))
        return str(op) if op else None

    assert found({"/api/v1/auth/sign-out": {"post": _op()}, "/logout/{id}": {"post": _op()}}) == (
        "POST /api/v1/auth/sign-out"
    )
    assert found({"/session": {"delete": {**_op(), "operationId": "userLogOut"}}}) == "DELETE /session"
    assert found({"/catalog": {"post": {**_op(), "summary": "Catalog output"}}}) is None
    assert found({"/me": {"get": {**_op(), "summary": "Log out"}}}) is None  # a GET only by its path
