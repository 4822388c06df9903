"""How verify reads documents and logs in, against small servers on 127.0.0.1: Swagger 2.0 bodies, form
logins with a CSRF field and a session cookie, tokens the API refuses, 429s waited out, and the
engine's secrets rule, npm error extraction and terminal summary."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from rich.console import Console

from backend_implementor.verify.auth import detect_auth
from backend_implementor.verify.engine import (
    VerifyOptions,
    _Run,
    _secrets_to_give,
    package_manager_error,
)
from backend_implementor.verify.findings import Evidence, Finding, ProbeResult
from backend_implementor.verify.openapi_doc import operations
from backend_implementor.verify.probes import ProbeTarget, open_session
from backend_implementor.verify.probes.accounts import hidden_fields, retry_after
from backend_implementor.verify.project import detect_project
from backend_implementor.verify.report import Report

SWAGGER2 = {
    "swagger": "2.0",
    "basePath": "/api",
    "produces": ["application/json"],
    "securityDefinitions": {"tok": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
    "paths": {
        "/users/login": {
            "post": {
                "consumes": ["application/x-www-form-urlencoded"],
                "parameters": [
                    {"name": "username", "in": "formData", "type": "string", "required": True},
                    {"name": "password", "in": "formData", "type": "string", "required": True},
                ],
                "responses": {"200": {"description": "ok", "schema": {"type": "object", "properties": {
                    "data": {"type": "object", "properties": {"authToken": {"type": "string"}}}}}}},
            }
        },
        "/users": {"post": {"parameters": [{"name": "body", "in": "body", "schema": {"$ref": "#/definitions/U"}}],
                            "responses": {"201": {"description": "ok"}}}},
        "/items": {"get": {"security": [{"tok": []}], "parameters": [
            {"name": "limit", "in": "query", "type": "integer", "minimum": 1}], "responses": {"200": {"description": "ok"}}}},
    },
    "definitions": {"U": {"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string", "maxLength": 12}, "password": {"type": "string"}}}},
}  # fmt: skip


def test_swagger2_operations_bodies_and_base_path():
    ops = {str(o): o for o in operations(SWAGGER2)}
    assert set(ops) == {"POST /api/users/login", "POST /api/users", "GET /api/items"}
    login = ops["POST /api/users/login"]
    assert login.body_encoding == "form" and login.body_schema["required"] == ["username", "password"]
    assert ops["POST /api/users"].body_schema["properties"]["username"]["maxLength"] == 12
    assert ops["GET /api/items"].secured and ops["GET /api/items"].query_params[0].schema["minimum"] == 1


def test_detect_auth_reads_form_logins_envelopes_and_token_schemes():
    cfg = detect_auth(SWAGGER2)
    assert (cfg.login_path, cfg.register_path, cfg.user_field, cfg.login_encoding) == (
        "/api/users/login", "/api/users", "username", "form",
    )  # fmt: skip
    assert (cfg.token_key, cfg.token_header, cfg.token_prefix) == ("authToken", "X-Auth-Token", "")
    conduit = {
        "openapi": "3.0.0",
        "components": {"securitySchemes": {"t": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "paths": {"/users/login": {"post": {"requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"user": {"type": "object", "properties": {
                "email": {"type": "string"}, "password": {"type": "string"}}}}}}}}}}},
    }  # fmt: skip
    cfg = detect_auth(conduit)
    assert cfg.envelope == "user" and cfg.user_field == "email" and cfg.token_prefix is None
    assert cfg.login_body("a@b.c", "pw") == {"user": {"email": "a@b.c", "password": "pw"}}


def _doc(paths: dict, **extra) -> dict:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


CREDENTIALS = {"requestBody": {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}}}  # fmt: skip


def test_openapi3_servers_path_prefixes_every_operation():
    doc = _doc({"/auth/login": {"post": CREDENTIALS}}, servers=[{"url": "/api/v1"}])
    assert [str(op) for op in operations(doc)] == ["POST /api/v1/auth/login"]
    assert detect_auth(doc).login_path == "/api/v1/auth/login"
    absolute = _doc({"/x": {"get": {}}}, servers=[{"url": "{scheme}://localhost:3000/v2/", "variables": {
        "scheme": {"default": "http"}}}])  # fmt: skip
    assert [op.path for op in operations(absolute)] == ["/v2/x"]
    assert [
        op.path for op in operations(_doc({"/x": {"get": {}}}, servers=[{"url": "https://a.example"}]))
    ] == ["/x"]


def test_a_signup_is_found_by_its_operation_words_where_no_path_says_it():
    doc = _doc({
        "/api/login": {"post": CREDENTIALS},
        "/api/readers": {"post": {**CREDENTIALS, "operationId": "signUp"}},
        "/api/books": {"post": {"operationId": "createBook", "requestBody": {"content": {"application/json": {
            "schema": {"type": "object", "properties": {"title": {"type": "string"}}}}}}}},
    })  # fmt: skip
    assert detect_auth(doc).register_path == "/api/readers"


def test_the_login_token_goes_by_the_bearer_scheme_where_operations_accept_either():
    schemes = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
               "bearer": {"type": "apiKey", "in": "header", "name": "Authorization"}}  # fmt: skip
    me = {"get": {"security": [{"apiKey": []}, {"bearer": []}]}}
    doc = {"swagger": "2.0", "securityDefinitions": schemes,
           "paths": {"/api/login": {"post": {"parameters": [{"in": "body", "name": "b", "schema": CREDENTIALS[
               "requestBody"]["content"]["application/json"]["schema"]}]}}, "/api/me": me}}  # fmt: skip
    cfg = detect_auth(doc)
    assert (cfg.token_header, cfg.token_prefix) == ("Authorization", None)
    only_key = {**doc, "securityDefinitions": {"apiKey": schemes["apiKey"]},
                "paths": {**doc["paths"], "/api/me": {"get": {"security": [{"apiKey": []}]}}}}  # fmt: skip
    assert detect_auth(only_key).token_header == "X-Api-Key"


def test_hidden_fields_and_retry_after():
    page = '<form><input type="hidden" name="_csrf" value="a&amp;b"><input name=user></form>'
    assert hidden_fields(page) == {"_csrf": "a&b"}

    class R:
        def __init__(self, h):
            self.headers = h

    assert retry_after(R({"retry-after": "7"})) == 7
    assert retry_after(R({"ratelimit-reset": "3"})) == 3
    assert retry_after(R({"retry-after": "1900000000"})) is None  # a timestamp, not a delay
    assert retry_after(R({})) is None


class _FormApp:
    """A server-rendered app: signup and login forms with a per-session CSRF field, a session cookie,
    /api/me refusing anonymous callers with a 200 whose body only says so, and a JSON /api/notes that
    wants the CSRF token in a header. `refuse_sessions`: every session is refused (a broken login)."""

    def __init__(self, *, refuse_sessions: bool = False, limit_first: int = 0) -> None:
        app = self
        self.sessions: dict[str, dict] = {}
        self.users: dict[str, str] = {}
        self.limited = limit_first  # answer the first N logins with 429

        class H(BaseHTTPRequestHandler):
            def _session(self):
                for part in (self.headers.get("Cookie") or "").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == "sid" and v in app.sessions:
                        return v, app.sessions[v]
                sid = secrets.token_hex(8)
                app.sessions[sid] = {"csrf": secrets.token_hex(8)}
                return sid, app.sessions[sid]

            def _send(self, status, body, ctype="text/html", sid=None, location=None, extra=None):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if sid:
                    self.send_header("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")
                if location:
                    self.send_header("Location", location)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                sid, sess = self._session()
                path = urlsplit(self.path).path
                if path in ("/login", "/signup"):
                    form = f'<form method=post><input type="hidden" name="_csrf" value="{sess["csrf"]}">'
                    return self._send(
                        200,
                        form + '<input name="username"><input type="password" name="password"></form>',
                        sid=sid,
                    )
                if path == "/api/me":
                    if sess.get("user") and not refuse_sessions:
                        return self._send(200, json.dumps({"username": sess["user"]}), "application/json")
                    return self._send(200, json.dumps({"error": "login required"}), "application/json")
                self._send(404, "{}", "application/json")

            def do_POST(self):
                _sid, sess = self._session()
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                if path in ("/signup", "/login") and form.get("_csrf") != sess["csrf"]:
                    return self._send(403, "bad csrf")
                if path == "/signup":
                    if form.get("confirm_password") != form.get("password"):
                        return self._send(400, "confirm_password must match")
                    app.users[form["username"]] = form["password"]
                    return self._send(302, "", location="/login?registered=1")
                if path == "/login":
                    if app.limited > 0:
                        app.limited -= 1
                        return self._send(429, "slow down", extra={"Retry-After": "1"})
                    if app.users.get(form.get("username")) != form.get("password"):
                        return self._send(302, "", location="/login?error=1")
                    new = secrets.token_hex(8)
                    app.sessions[new] = {"csrf": secrets.token_hex(8), "user": form["username"]}
                    return self._send(302, "", sid=new, location="/")
                self._send(404, "{}", "application/json")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FORM_DOC = {
    "openapi": "3.0.3",
    "components": {"securitySchemes": {"c": {"type": "apiKey", "in": "cookie", "name": "sid"}}},
    "paths": {
        "/signup": {"post": {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["_csrf", "username", "password", "confirm_password"],
            "properties": {"_csrf": {"type": "string"}, "username": {"type": "string", "pattern": "^[a-z0-9]+$"},
                           "password": {"type": "string"}, "confirm_password": {"type": "string"}}}}}},
            "responses": {"302": {"description": "to the login"}}}},
        "/login": {"post": {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["_csrf", "username", "password"],
            "properties": {"_csrf": {"type": "string"}, "username": {"type": "string"},
                           "password": {"type": "string"}}}}}}, "responses": {"302": {"description": "in"}}}},
        "/api/me": {"get": {"security": [{"c": []}], "responses": {"200": {"description": "me"}}}},
    },
}  # fmt: skip


def test_form_login_with_csrf_field_session_cookie_and_confirmation():
    app = _FormApp()
    try:
        ctx = open_session(ProbeTarget(app.url, FORM_DOC), budget_s=20)
        users = ctx.accounts.users
        assert len(users) == 2, ctx.accounts.reason
        assert users[0].token is None and "sid" in users[0].cookies
        assert users[0].ident.isalnum()  # the pattern allows letters and digits only
        assert ctx.accounts.describe()["login"]["sends"] == "cookie"
    finally:
        app.stop()


def test_a_session_the_api_refuses_is_no_login():
    app = _FormApp(refuse_sessions=True)
    try:
        ctx = open_session(ProbeTarget(app.url, FORM_DOC), budget_s=20)
        assert ctx.accounts.users == []
        assert "refused the session cookie" in ctx.accounts.reason and "/api/me" in ctx.accounts.reason
    finally:
        app.stop()


def test_a_429_is_waited_out_and_said(monkeypatch):
    app = _FormApp(limit_first=1)
    try:
        t0 = time.monotonic()
        ctx = open_session(ProbeTarget(app.url, FORM_DOC), budget_s=20)
        assert len(ctx.accounts.users) == 2, ctx.accounts.reason
        assert time.monotonic() - t0 >= 1
        assert any("rate limit on POST /login" in c for c in ctx.changes)
    finally:
        app.stop()


def test_npm_error_lines_without_the_usage_text(tmp_path):
    log = tmp_path / "install.log"
    log.write_text(
        "$ npm ci\nnpm error code EUSAGE\nnpm error\nnpm error `npm ci` can only install packages when your "
        "package.json and package-lock.json are in sync.\nnpm error Missing: left-pad@1.3.0 from lock file\n"
        "npm error\nnpm error Clean install a project\nnpm error\nnpm error Usage:\nnpm error npm ci\n"
    )
    text = package_manager_error(log)
    assert "are in sync" in text and "Missing: left-pad" in text
    assert "Usage" not in text and "Clean install" not in text


def _project(tmp_path: Path, source: str, dotenv: str | None = None):
    (tmp_path / "package.json").write_text('{"name": "x", "scripts": {"start": "node app.js"}}')
    (tmp_path / "app.js").write_text(source)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    run = _Run(Report("project", str(tmp_path), "0", "now"), VerifyOptions(base_env={}), tmp_path, [])
    run.project = detect_project(tmp_path)
    return run


def test_secrets_only_where_a_foreign_app_reads_them_and_sets_none(tmp_path):
    read = "const s = process.env.JWT_SECRET || crypto.randomBytes(32).toString('hex')"
    assert _secrets_to_give(_project(tmp_path, read)) == ["JWT_SECRET"]
    # A secret the app configures itself is never overridden: in .env, or as a literal fallback.
    assert _secrets_to_give(_project(tmp_path, "const s = process.env.JWT_SECRET", "JWT_SECRET=mine\n")) == []
    assert _secrets_to_give(_project(tmp_path, "const s = process.env.JWT_SECRET || 'dev-secret'", "")) == []
    assert _secrets_to_give(_project(tmp_path, "const s = require('./config').secret", None)) == []


def test_secrets_read_in_a_shared_module_outside_the_project(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "index.js").write_text("module.exports = process.env.APP_SECRET")
    app = tmp_path / "app"
    app.mkdir()
    assert _secrets_to_give(_project(app, "const secret = require('../lib');")) == ["APP_SECRET"]


def test_terminal_summary_lists_findings_and_checks_that_could_not_run():
    from backend_implementor.verify.cli import print_summary

    report = Report("url", "http://x", "0", "now", out_dir="/tmp/out")
    report.findings = [Finding("sqli-query", 89, "SQL injection in 'q'", "critical", "bind",
                               Evidence(request="GET /a?q='\nAuthorization: Bearer <token>", response="HTTP 500"))]  # fmt: skip
    report.probes = [ProbeResult("idor", 639, "inconclusive", "login failed: POST /login -> HTTP 401")]
    report.changes = ["registered 2 account(s) named bimpl…"]
    console = Console(record=True, width=200)
    print_summary(console, report)
    text = console.export_text()
    assert "CWE-89 [critical] SQL injection in 'q'" in text and "GET /a?q='" in text
    assert "idor (CWE-639) could not run: login failed" in text
    assert "registered 2 account(s)" in text and "exit 1" in text and "/tmp/out/report.md" in text


@pytest.mark.parametrize(("status", "code"), [("clean", 0), ("incomplete", 3)])
def test_incomplete_is_its_own_exit_status(status, code):
    from backend_implementor.verify.report import StageResult

    report = Report("url", "http://x", "0", "now")
    report.stages = [StageResult("security", "passed" if status == "clean" else "incomplete")]
    assert (report.status, report.exit_code) == (status, code)


def test_a_native_module_left_unbuilt_points_at_install_scripts(tmp_path):
    from backend_implementor.verify.engine import _native_hint

    run = _project(tmp_path, "require('bcrypt')")
    tail = "Error: Cannot find module '/app/node_modules/bcrypt/lib/binding/napi-v3/bcrypt_lib.node'"
    assert "--install-scripts" in _native_hint(run, tail)
    assert _native_hint(run, "Error: listen EADDRINUSE") == ""
    run.opts.install_scripts = True
    assert _native_hint(run, tail) == ""
