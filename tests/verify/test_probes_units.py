"""Unit tests for the probe building blocks: auth detection and parsing, OpenAPI examples, JWT checks,
password-storage scanning, and run_probes' handling of probe bugs, budgets and crashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest

from backend_implementor.verify import probes
from backend_implementor.verify.auth import (
    AuthConfig,
    AuthOptionError,
    detect_auth,
    find_token,
    parse_auth_option,
)
from backend_implementor.verify.openapi_doc import example_value, fill_path, operations
from backend_implementor.verify.probes import ProbeTarget, run_probes
from backend_implementor.verify.probes import password_storage as ps
from backend_implementor.verify.probes.jwt_tamper import _b64, _encode, weak_secret


def _spec(paths: dict, components: dict | None = None) -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": components or {},
    }


def _body(schema: dict) -> dict:
    return {
        "requestBody": {"content": {"application/json": {"schema": schema}}},
        "responses": {"200": {"description": "ok"}},
    }


def test_detect_auth_without_a_document_uses_bimpl_conventions():
    cfg = detect_auth(None)
    assert (cfg.register_path, cfg.login_path, cfg.user_field, cfg.password_field, cfg.token_key) == (
        "/auth/register",
        "/auth/login",
        "email",
        "password",
        "access_token",
    )


def test_detect_auth_reads_paths_fields_token_key_and_required_extras():
    user = {
        "type": "object",
        "required": ["username", "password", "display_name"],
        "properties": {
            "username": {"type": "string"},
            "password": {"type": "string"},
            "display_name": {"type": "string", "example": "Ann"},
        },
    }
    login = _body({"$ref": "#/components/schemas/Login"})
    login["responses"] = {
        "200": {
            "description": "ok",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"token": {"type": "string"}}}
                }
            },
        }
    }
    spec = _spec(
        {
            "/signup": {"post": _body(user)},
            "/sessions": {"post": login},
            "/books": {"get": {"responses": {}}},
        },
        {"schemas": {"Login": {"type": "object", "properties": {"username": {}, "password": {}}}}},
    )
    cfg = detect_auth(spec)
    assert cfg == AuthConfig("/signup", "/sessions", "username", "password", "token", {"display_name": "Ann"})


def test_detect_auth_baxbench_style_login_and_register():
    cred = {
        "type": "object",
        "properties": {"email": {"type": "string", "format": "email"}, "password": {"type": "string"}},
    }
    spec = _spec({"/register": {"post": _body(cred)}, "/login": {"post": _body(cred)}})
    cfg = detect_auth(spec)
    assert (cfg.register_path, cfg.login_path, cfg.user_field) == ("/register", "/login", "email")


def test_detect_auth_none_when_the_document_has_no_login():
    assert detect_auth(_spec({"/items": {"get": {"responses": {}}}})) is None


def test_parse_auth_option():
    cfg = parse_auth_option(
        "register=/signup, login=/login,user=username,password=pw,token=token,extra.name=Bob"
    )
    assert cfg == AuthConfig("/signup", "/login", "username", "pw", "token", {"name": "Bob"})
    assert parse_auth_option("login=/api/login").register_path == "/auth/register"
    for bad in ("registr=/x", "login", "login=signin", "user=", "extra.=x"):
        with pytest.raises(AuthOptionError):
            parse_auth_option(bad)


def test_find_token_prefers_the_configured_key_and_looks_into_envelopes():
    assert find_token({"token": "a", "sid": "b"}, "sid") == "b"
    assert find_token({"data": {"user": {"id": 1}, "accessToken": "t"}}) == "t"
    assert find_token({"token": "", "jwt": None, "x": [{"token": "no lists"}]}) is None
    assert find_token("token") is None


def test_example_values_respect_schema():
    spec = _spec(
        {},
        {
            "schemas": {
                "Base": {
                    "type": "object",
                    "required": ["a"],
                    "properties": {"a": {"type": "integer", "minimum": 3}},
                }
            }
        },
    )
    schema = {
        "allOf": [
            {"$ref": "#/components/schemas/Base"},
            {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["x", "y"]},
                    "email": {"type": "string", "format": "email"},
                    "title": {"type": "string", "maxLength": 5},
                    "tags": {"type": "array", "minItems": 2, "items": {"type": "string"}},
                    "id": {"type": "integer", "readOnly": True},
                },
            },
        ]
    }
    v = example_value(spec, schema)
    assert v["a"] == 3 and v["kind"] == "x" and "@" in v["email"] and len(v["title"]) <= 5
    assert len(v["tags"]) == 2 and "id" not in v


def test_operations_security_and_path_params():
    spec = _spec(
        {
            "/notes/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "get": {"security": [{"bearer": []}], "responses": {}},
                "delete": {"security": [{}], "responses": {}},
            }
        }
    )
    ops = {str(o): o for o in operations(spec)}
    assert ops["GET /notes/{id}"].secured and not ops["DELETE /notes/{id}"].secured
    assert [p.name for p in ops["GET /notes/{id}"].path_params] == ["id"]
    assert fill_path("/files/{name}", {"name": "../etc/passwd"}) == "/files/..%2Fetc%2Fpasswd"


def test_weak_jwt_secret_is_found_offline():
    signing_input = _encode({"alg": "HS256", "typ": "JWT"}, {"sub": "1"})
    weak = signing_input + "." + _b64(hmac.new(b"secret", signing_input.encode(), hashlib.sha256).digest())
    strong = signing_input + "." + _b64(hmac.new(b"k" * 40, signing_input.encode(), hashlib.sha256).digest())
    assert weak_secret(weak) == "secret"
    assert weak_secret(strong) is None


def test_password_storage_scans_sqlite_and_raw_files(tmp_path):
    pw = "Bimpl-abcdef1234-Pw9!"
    db = tmp_path / "app.sqlite3"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users (email TEXT, password TEXT)")
    con.execute("INSERT INTO users VALUES ('a@b.c', ?)", (hashlib.md5(pw.encode()).hexdigest(),))
    con.commit()
    con.close()
    assert ps.scan(str(db), pw) == ("unsalted md5 (hex)", "table users")
    assert ps.scan(str(db), "another-password-1") is None

    raw = tmp_path / "pgdata"
    (raw / "pg_wal").mkdir(parents=True)
    (raw / "pg_wal" / "0001").write_bytes(
        b"\x00junk" + hashlib.sha256(pw.encode()).hexdigest().encode() + b"\x00"
    )
    assert ps.scan(str(raw), pw) == ("unsalted sha256 (hex)", "file pg_wal/0001")
    salted = hashlib.scrypt(pw.encode(), salt=b"0123456789abcdef", n=1024, r=8, p=1).hex()
    (raw / "pg_wal" / "0001").write_bytes(salted.encode())
    assert ps.scan(str(raw), pw) is None


class _Server:
    """A tiny JSON backend on 127.0.0.1 for run_probes' own behaviour (not a vulnerable app)."""

    def __init__(self, port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"status": "ok"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("X-Frame-Options", "DENY")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.up = True

    def stop(self) -> None:
        if self.up:
            self.up = False
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.stop()


def _fake(run, id="fake", cwe=1, seconds=5, max_requests=5):
    return SimpleNamespace(ID=id, CWE=cwe, SECONDS=seconds, MAX_REQUESTS=max_requests, run=run, __name__=id)


def test_probe_bug_is_reported_not_raised(server, monkeypatch):
    def broken(ctx):
        raise KeyError("oops")

    def fine(ctx):
        ctx.request("GET", "/health")

    monkeypatch.setattr(probes, "PROBES", (_fake(broken, "broken"), _fake(fine, "fine")))
    messages: list[str] = []
    spec = _spec({"/health": {"get": {"responses": {"200": {"description": "ok"}}}}})
    run = run_probes(ProbeTarget(server.url, spec), budget_s=10, progress=messages.append)
    assert run.findings == []
    outcomes = {r.id: (r.outcome, r.detail) for r in run.results}
    # Our bug is not the backend's clean bill: the probe is inconclusive, and says why.
    assert outcomes["broken"][0] == "inconclusive" and "internal error" in outcomes["broken"][1]
    assert "KeyError" in outcomes["broken"][1]
    assert outcomes["fine"] == ("clean", "1 request(s)")
    assert any(m.startswith("probe fine") for m in messages)


def test_request_budget_stops_a_probe(server, monkeypatch):
    sent = []

    def greedy(ctx):
        for _ in range(100):
            ctx.request("GET", "/health")
            sent.append(1)

    monkeypatch.setattr(probes, "PROBES", (_fake(greedy, max_requests=3),))
    run = run_probes(ProbeTarget(server.url), budget_s=10)
    assert run.findings == [] and len(sent) == 3
    # It did not finish: not a clean bill.
    assert run.results[0].outcome == "inconclusive" and "budget" in run.results[0].detail


def test_server_dying_during_a_probe_is_cwe_703(server, monkeypatch):
    def killer(ctx):
        ctx.request("GET", "/boom")
        server.stop()
        ctx.request("GET", "/health")

    later = []
    monkeypatch.setattr(
        probes, "PROBES", (_fake(killer, "killer"), _fake(lambda ctx: later.append(1), "later"))
    )
    run = run_probes(ProbeTarget(server.url, is_alive=lambda: server.up), budget_s=10)
    findings = run.findings
    assert [(f.cwe, f.id) for f in findings] == [(703, "crash")]
    assert "killer" in findings[0].title
    # The request that killed it comes first in the evidence, not the ones after it.
    assert findings[0].evidence.request.startswith("GET /health") or findings[0].evidence.request.startswith(
        "GET /boom"
    )
    assert later == []  # the server stayed down: nothing more is probed...
    outcomes = {r.id: r.outcome for r in run.results}
    assert outcomes == {"killer": "inconclusive", "later": "inconclusive"}  # ...and nothing is called clean


def test_a_server_that_comes_back_is_probed_on(monkeypatch):
    first = _Server()
    port = int(first.url.rsplit(":", 1)[1])
    box = {"server": first}

    def killer(ctx):
        ctx.request("GET", "/boom")
        box["server"].stop()
        ctx.request("GET", "/health")

    def recover() -> bool:
        box["server"] = _Server(port)
        return True

    later = []
    monkeypatch.setattr(
        probes,
        "PROBES",
        (_fake(killer, "killer"), _fake(lambda ctx: later.append(ctx.request("GET", "/")), "later")),
    )
    try:
        run = run_probes(
            ProbeTarget(first.url, is_alive=lambda: box["server"].up, recover=recover), budget_s=10
        )
    finally:
        box["server"].stop()
    assert [f.cwe for f in run.findings] == [703]
    assert later and later[0] is not None and later[0].status_code == 200
    assert {r.id: r.outcome for r in run.results}["later"] == "clean"


def test_one_refused_connect_is_not_a_crash(server, monkeypatch):
    # A full listen backlog refuses a connect now and then; the process is alive and the port answers.
    real = httpx.Client.request
    calls = {"n": 0}

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("connection refused")
        return real(self, *a, **kw)

    monkeypatch.setattr(httpx.Client, "request", flaky)
    monkeypatch.setattr(probes, "PROBES", (_fake(lambda ctx: ctx.request("GET", "/health"), "one"),))
    run = run_probes(ProbeTarget(server.url, is_alive=lambda: True), budget_s=10)
    assert run.findings == [] and run.results[0].outcome == "clean"


def test_unreachable_server_yields_nothing_and_says_so():
    messages: list[str] = []
    run = run_probes(ProbeTarget("http://127.0.0.1:9"), budget_s=5, progress=messages.append)
    assert run.findings == [] and run.results
    assert all(r.outcome == "inconclusive" for r in run.results)
    assert any("not answering" in m for m in messages)


def test_real_probes_stay_quiet_on_a_clean_plain_server(server):
    # The stub sets nosniff and X-Frame-Options and has no auth, SQL or HTML: every probe must stay quiet.
    spec = _spec({"/health": {"get": {"responses": {"200": {"description": "ok"}}}}})
    messages: list[str] = []
    run = run_probes(ProbeTarget(server.url, spec), budget_s=20, progress=messages.append)
    assert run.findings == [], run.findings
    assert not run.inconclusive, run.inconclusive


class _NotesBackend:
    """Register/login plus /notes on 127.0.0.1. `list_scoped`: GET /notes shows only the caller's notes;
    `read_scoped`: GET /notes/{id} answers 404 for another user's note."""

    def __init__(self, *, list_scoped: bool, read_scoped: bool) -> None:
        users: dict[str, str] = {}  # token -> email
        notes: dict[int, dict] = {}

        class Handler(BaseHTTPRequestHandler):
            def _user(self):
                return users.get(self.headers.get("Authorization", "").removeprefix("Bearer "))

            def _json(self, status, data):
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/auth/register":
                    return self._json(201, {"email": body.get("email")})
                if self.path == "/auth/login":
                    token = f"t{len(users)}x{body.get('email')}"
                    users[token] = body.get("email")
                    return self._json(200, {"access_token": token})
                if self.path == "/notes" and self._user():
                    note = {"id": len(notes) + 1, "title": str(body.get("title")), "owner": self._user()}
                    notes[note["id"]] = note
                    return self._json(201, note)
                self._json(401, {"error": "unauthorized"})

            def do_GET(self):
                me = self._user()
                if self.path == "/notes" and me:
                    return self._json(200, [n for n in notes.values() if not list_scoped or n["owner"] == me])
                if self.path.startswith("/notes/") and me:
                    note = notes.get(int(self.path.rsplit("/", 1)[1]) if self.path[7:].isdigit() else 0)
                    if note and (not read_scoped or note["owner"] == me):
                        return self._json(200, note)
                    return self._json(404, {"error": "not found"})
                self._json(401 if self.path.startswith("/notes") else 200, {})

            def do_PATCH(self):
                self._json(404, {"error": "not found"})

            do_DELETE = do_PATCH

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


NOTES_SPEC = _spec(
    {
        "/notes": {
            "get": {"security": [{"bearer": []}], "responses": {"200": {"description": "ok"}}},
            "post": {
                "security": [{"bearer": []}],
                **_body(
                    {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
                ),
                "responses": {"201": {"description": "created"}},
            },
        },
        "/notes/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"security": [{"bearer": []}], "responses": {"200": {"description": "ok"}}},
        },
    }
)


@pytest.mark.parametrize(
    ("list_scoped", "read_scoped", "flagged"),
    [
        (True, False, True),  # the list hides other users' notes but GET by id does not: IDOR
        (False, False, False),  # everyone sees every note, in the list too: shared by design
        (True, True, False),  # private and checked
    ],
)
def test_idor_read_is_judged_against_the_listing(monkeypatch, list_scoped, read_scoped, flagged):
    from backend_implementor.verify.probes import idor

    backend = _NotesBackend(list_scoped=list_scoped, read_scoped=read_scoped)
    monkeypatch.setattr(probes, "PROBES", (idor,))
    try:
        findings = run_probes(ProbeTarget(backend.url, NOTES_SPEC, AuthConfig()), budget_s=20).findings
    finally:
        backend.stop()
    if flagged:
        assert [(f.cwe, f.title) for f in findings] == [
            (639, "user B read user A's resource: GET /notes/{id}")
        ]
        assert findings[0].evidence.request.startswith("GET /notes/")  # the read by id, not the listing
        assert '"owner"' in findings[0].evidence.response
    else:
        assert findings == []


def test_pattern_values_are_not_handed_out_twice():
    # hypothesis draws "0" for this one time in ten: a unique slug then met a 409 on the second create.
    schema = {"type": "string", "pattern": "^[a-z0-9-]{1,80}$"}
    values = [example_value(None, schema, "slug") for _ in range(40)]
    assert len(set(values)) == 40
    short = [example_value(None, {"type": "string", "maxLength": 6}, "name") for _ in range(40)]
    assert all(len(v) <= 6 for v in short) and len(set(short)) > 30  # truncation keeps the random tail


def test_a_create_refused_as_a_duplicate_is_drawn_again(monkeypatch):
    """An earlier probe's row holds the unique value the first body drew: a 409 is not a blocked probe."""
    slugs: set[str] = {"taken"}
    posts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            posts.append(body["slug"])
            status = 409 if len(posts) == 1 or body["slug"] in slugs else 201
            slugs.add(body["slug"])
            raw = json.dumps({"id": len(posts), **body} if status == 201 else {"error": "dup"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spec = _spec(
        {
            "/tags": {
                "post": _body(
                    {"type": "object", "required": ["slug"], "properties": {"slug": {"type": "string"}}}
                )
            },
            "/tags/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "get": {"responses": {"200": {"description": "ok"}}},
            },
        }
    )
    made = []

    def creator(ctx):
        made.append(ctx.create(ctx.resource_kinds()[0], None))

    monkeypatch.setattr(probes, "PROBES", (_fake(creator, "creator"),))
    try:
        run = run_probes(ProbeTarget(f"http://127.0.0.1:{httpd.server_address[1]}", spec), budget_s=10)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert run.results[0].outcome == "clean", run.results[0].detail
    assert made[0] is not None and made[0].id == 2 and len(posts) == 2 and posts[0] != posts[1]
