"""The oidc-state probe (CWE-352) against a tiny in-process app that logs users in through verify's own
OpenID provider: callbacks that check the state the browser's cookie holds, ignore it, accept any state
the server issued, or redeem the code before looking; and the cases where the probe cannot or need not
test."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from backend_implementor.verify import probes
from backend_implementor.verify.oidc_provider import oidc_provider, s256
from backend_implementor.verify.probes import ProbeTarget, oidc_state, run_probes


def _doc(
    login: str = "/auth/oidc/{provider}/login", callback: str = "/auth/oidc/{provider}/callback"
) -> dict:
    provider = [
        {"name": "provider", "in": "path", "required": True, "schema": {"type": "string", "enum": ["main"]}}
    ]
    params = lambda path: provider if "{provider}" in path else []  # noqa: E731
    return {
        "openapi": "3.0.3",
        "info": {"title": "fake", "version": "1"},
        "paths": {
            login: {"get": {"parameters": params(login), "responses": {"302": {"description": "to the provider"}}}},
            callback: {"get": {"parameters": [*params(callback), {"name": "code", "in": "query", "schema": {"type": "string"}},
                                              {"name": "state", "in": "query", "schema": {"type": "string"}}],
                               "responses": {"303": {"description": "signed in"}, "400": {"description": "refused"}}}},
            "/me": {"get": {"security": [{"cookieAuth": []}], "responses": {"200": {"description": "me"}, "401": {"description": "no"}}}},
        },
        "components": {"securitySchemes": {"cookieAuth": {"type": "apiKey", "in": "cookie", "name": "sid"}}},
    }  # fmt: skip


class _App:
    """An app whose login goes through `provider`. `mode`:
    - "fixed": state and PKCE verifier kept under a random id in the browser's `tx` cookie; the callback
      needs the cookie and its state before it redeems the code;
    - "ignores-state": no PKCE, nothing bound to the browser, any state accepted;
    - "ignores-state-pkce": the verifier is bound to the browser's cookie, the state is never compared;
    - "map": the sign-in filed under its state on the server, no cookie at all;
    - "redeems-first": redeems the code, then compares the state and refuses;
    - "broken": the callback never signs anyone in;
    - "elsewhere": the login redirects to another provider."""

    def __init__(self, provider, mode: str, *, bearer: bool = False):
        pending: dict[str, dict] = {}  # tx id (or state, in "map") -> state, verifier
        sessions: set[str] = set()
        self.token_calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, data=None, headers=()):
                raw = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _cookie(self, name):
                for part in self.headers.get("Cookie", "").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == name:
                        return v
                return None

            def do_POST(self):
                self._send(404, {"error": "not found"})

            def do_GET(self):
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                if url.path == "/auth/oidc/main/login":
                    return self._login()
                if url.path == "/auth/oidc/main/callback":
                    return self._callback(query)
                if url.path == "/me":
                    ok = (
                        self._cookie("sid") in sessions
                        or self.headers.get("Authorization", "")[7:] in sessions
                    )
                    return self._send(200, {"me": True}) if ok else self._send(401, {"error": "log in"})
                return self._send(404, {"error": "not found"})

            def _login(self):
                base = (
                    "https://accounts.example.com/authorize"
                    if mode == "elsewhere"
                    else provider.authorization_endpoint
                )
                state, verifier, tx = (
                    secrets.token_urlsafe(16),
                    secrets.token_urlsafe(48),
                    secrets.token_hex(12),
                )
                query = {"response_type": "code", "client_id": provider.client_id, "scope": "openid email",
                         "redirect_uri": f"http://127.0.0.1:{outer.port}/auth/oidc/main/callback", "state": state}  # fmt: skip
                headers = []
                if mode in ("fixed", "ignores-state-pkce", "redeems-first", "map"):
                    query |= {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
                    pending[state if mode == "map" else tx] = {"state": state, "verifier": verifier}
                if mode != "map":
                    headers.append(("Set-Cookie", f"tx={tx}; Path=/; HttpOnly; SameSite=Lax"))
                self._send(302, None, [("Location", base + "?" + urlencode(query)), *headers])

            def _callback(self, query):
                key = query.get("state") if mode == "map" else self._cookie("tx")
                p = pending.pop(key or "", None)
                if mode in ("fixed", "map") and (p is None or query.get("state") != p["state"]):
                    return self._send(400, {"error": "state mismatch"})
                if mode == "broken":
                    return self._send(400, {"error": "sign-in failed"})
                verifier = p["verifier"] if p else None
                if mode == "ignores-state-pkce" and p is None:
                    return self._send(400, {"error": "no sign-in in progress"})
                form = {"grant_type": "authorization_code", "code": query.get("code", ""),
                        "redirect_uri": f"http://127.0.0.1:{outer.port}/auth/oidc/main/callback"}  # fmt: skip
                if verifier:
                    form["code_verifier"] = verifier
                basic = base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode()).decode()
                outer.token_calls += 1
                r = httpx.post(provider.token_endpoint, data=form, headers={"Authorization": "Basic " + basic},
                               trust_env=False)  # fmt: skip
                if r.status_code != 200:
                    return self._send(400, {"error": "the provider refused the code"})
                if mode == "redeems-first" and (p is None or query.get("state") != p["state"]):
                    return self._send(400, {"error": "state mismatch"})
                sid = secrets.token_hex(16)
                sessions.add(sid)
                clear = ("Set-Cookie", "tx=; Path=/; Max-Age=0")
                if bearer:
                    return self._send(
                        200, {"access_token": sid, "token_type": "Bearer", "expires_in": 3600}, [clear]
                    )
                self._send(
                    303,
                    None,
                    [("Location", "/"), ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly; SameSite=Lax"), clear],
                )

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def _running(mode: str, *, bearer: bool = False, doc: dict | None = None, provider_for_probe: bool = True):
    with oidc_provider() as provider:
        app = _App(provider, mode, bearer=bearer)
        try:
            target = ProbeTarget(base_url=f"http://127.0.0.1:{app.port}", openapi=doc or _doc(),
                                 oidc=provider if provider_for_probe else None, oidc_names=("main",))  # fmt: skip
            yield target, provider, app
        finally:
            app.close()


def _probe(monkeypatch, target):
    monkeypatch.setattr(probes, "PROBES", (oidc_state,))
    run = run_probes(target, budget_s=20)
    (result,) = run.results
    return result, run.findings


@pytest.mark.parametrize("bearer", [False, True], ids=["cookie", "bearer"])
def test_a_callback_that_checks_the_browsers_state_is_clean(monkeypatch, bearer):
    with _running("fixed", bearer=bearer) as (target, _, app):
        result, findings = _probe(monkeypatch, target)
    assert result.outcome == "clean" and findings == [], result
    assert app.token_calls == 1  # only the genuine login reached the token endpoint


def test_a_callback_that_ignores_the_state_is_found(monkeypatch):
    with _running("ignores-state") as (target, _, _):
        result, findings = _probe(monkeypatch, target)
    assert result.outcome == "found", result
    (f,) = findings
    assert f.cwe == 352 and f.severity == "high"
    assert f.title.startswith(
        "OIDC callback accepts a wrong state: GET /auth/oidc/main/callback logged in with state=bimpl-forged-"
    )
    assert "state=bimpl-forged-" in f.evidence.request and "passed GET /me" in f.evidence.response
    assert "another browser's login also logged in" in f.evidence.response


def test_an_ignored_state_behind_a_browser_bound_pkce_verifier_is_medium(monkeypatch):
    with _running("ignores-state-pkce") as (target, _, _):
        _, findings = _probe(monkeypatch, target)
    (f,) = findings
    assert f.severity == "medium" and "accepts a wrong state" in f.title
    assert "PKCE or the nonce still bind the code" in f.evidence.response


def test_a_state_not_bound_to_the_browser_is_found(monkeypatch):
    with _running("map", bearer=True) as (target, _, _):
        _, findings = _probe(monkeypatch, target)
    (f,) = findings
    assert f.title == (
        "OIDC callback does not bind the state to the browser: GET /auth/oidc/main/callback logged in a browser "
        "without the cookies of GET /auth/oidc/main/login"
    )
    assert f.severity == "high" and "it answered tokens" in f.evidence.response
    assert "<redacted>" in f.evidence.response  # the token the app handed out stays out of the report


def test_a_code_redeemed_before_the_state_is_checked_is_found(monkeypatch):
    with _running("redeems-first") as (target, _, _):
        _, findings = _probe(monkeypatch, target)
    (f,) = findings
    assert f.severity == "medium" and "redeemed the code at the provider with state=bimpl-forged-" in f.title


def test_a_genuine_login_that_fails_makes_the_probe_inconclusive(monkeypatch):
    with _running("broken") as (target, _, _):
        result, findings = _probe(monkeypatch, target)
    assert findings == [] and result.outcome == "inconclusive"
    assert "the genuine OpenID login did not log in" in result.detail and "HTTP 400" in result.detail


def test_a_login_to_another_provider_is_not_applicable(monkeypatch):
    with _running("elsewhere") as (target, _, _):
        result, _ = _probe(monkeypatch, target)
    assert result.outcome == "clean"
    assert "redirects to https://accounts.example.com, not to a provider verify runs" in result.detail
    assert "--oidc-env" in result.detail


def test_without_verify_s_provider_the_probe_says_how_to_give_it(monkeypatch):
    with _running("fixed", provider_for_probe=False) as (target, _, _):
        result, _ = _probe(monkeypatch, target)
    assert result.outcome == "clean" and "not to a provider verify runs" in result.detail


def test_an_api_without_an_oidc_login_is_not_applicable(monkeypatch):
    doc = _doc()
    doc["paths"] = {
        "/me": doc["paths"]["/me"],
        "/login": {"post": {"responses": {"200": {"description": "ok"}}}},
    }
    with _running("fixed", doc=doc) as (target, _, _):
        result, _ = _probe(monkeypatch, target)
    assert result.outcome == "clean" and result.detail.startswith("not applicable: no OpenID Connect")


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/auth/oidc/{provider}/login", True),
        ("/auth/{provider}/login", True),
        ("/oauth/acme/start", True),
        ("/api/oauth2/google/authorize", True),
        ("/sso/login", True),
        ("/login", False),
        ("/auth/login", False),
        ("/users/{id}/start", False),
    ],
)
def test_which_operations_look_like_an_oidc_login(path, found):
    from backend_implementor.verify.probes.base import Context

    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in ("provider", "id") if "{" + n + "}" in path]  # fmt: skip
    doc = {"openapi": "3.0.3", "info": {"title": "x", "version": "1"},
           "paths": {path: {"get": {"parameters": params, "responses": {"302": {"description": "r"}}}}}}  # fmt: skip
    ctx = Context(ProbeTarget(base_url="http://127.0.0.1:9", openapi=doc), deadline=0)
    assert bool(oidc_state.login_operations(ctx)) is found
    ctx.http.close()


def test_set_cookies_leaves_out_what_an_answer_clears():
    resp = httpx.Response(200, headers=[("Set-Cookie", "sid=abc; Path=/; HttpOnly"), ("Set-Cookie", "tx=; Max-Age=0"),
                                        ("Set-Cookie", "old=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
                                        ("Set-Cookie", "st=x; Max-Age=600")])  # fmt: skip
    assert oidc_state.set_cookies(resp) == {"sid": "abc", "st": "x"}
