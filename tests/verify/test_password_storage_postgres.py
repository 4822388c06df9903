"""The CWE-522 password-storage probe against a real PostgreSQL (BIMPL_TEST_DATABASE_URL; scripts/test.sh
starts one): a fresh database per test, dropped afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import pytest

from backend_implementor.verify import probes
from backend_implementor.verify.auth import AuthConfig
from backend_implementor.verify.probes import ProbeTarget, run_probes
from backend_implementor.verify.probes import password_storage as ps

pytestmark = pytest.mark.postgres
try:
    import psycopg
except ImportError:  # a declared dependency: only an out-of-date local install lacks it
    if os.environ.get("CI"):
        raise
    pytest.skip("psycopg is not installed (pip install -e .)", allow_module_level=True)

# Argon2id of "password" with salt "somesalt" (m=65536, t=2, p=1): a test vector of the Argon2 reference
# implementation, i.e. what a backend using argon2 stores for that password.
ARGON2ID_OF_PASSWORD = (
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
)


@pytest.fixture
def database_url() -> Iterator[str]:
    base = os.environ.get("BIMPL_TEST_DATABASE_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CI is set but BIMPL_TEST_DATABASE_URL is not: the PostgreSQL tests must run in CI")
        pytest.skip("BIMPL_TEST_DATABASE_URL is not set")
    name = f"bimpl_pw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _exec(url: str, statement: str, params: tuple = ()) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(statement, params)


USERS_TABLE = (
    "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, "
    "password_hash varchar(255) NOT NULL, profile jsonb NOT NULL DEFAULT '{}')"
)


def test_plaintext_password_is_flagged_argon2_hash_is_not(database_url):
    plain = f"Plain-{secrets.token_hex(6)}-Pw9!"
    _exec(database_url, USERS_TABLE)
    _exec(
        database_url,
        "INSERT INTO users (email, password_hash) VALUES (%s, %s)",
        ("bob@example.com", ARGON2ID_OF_PASSWORD),
    )
    _exec(
        database_url, "INSERT INTO users (email, password_hash) VALUES (%s, %s)", ("alice@example.com", plain)
    )

    assert ps.scan(database_url, plain) == ("plain text", "public.users.password_hash")
    assert ps.scan(database_url, "password") is None  # bob's argon2 hash does not give the password away


def test_unsalted_hash_in_other_schemas_and_column_types(database_url):
    pw = f"Hashed-{secrets.token_hex(6)}-Pw9!"
    _exec(database_url, "CREATE EXTENSION IF NOT EXISTS citext")
    _exec(database_url, "CREATE SCHEMA auth")
    _exec(database_url, "CREATE TABLE auth.accounts (login citext, secrets text[])")
    _exec(database_url, USERS_TABLE)
    _exec(database_url, "CREATE VIEW users_view AS SELECT * FROM users")
    sha1 = hashlib.sha1(pw.encode()).hexdigest()
    _exec(database_url, "INSERT INTO auth.accounts VALUES ('carol', ARRAY['x', %s])", (sha1,))
    assert ps.scan(database_url, pw) == ("unsalted sha1 (hex)", "auth.accounts.secrets")

    other = f"Json-{secrets.token_hex(6)}-Pw9!"
    _exec(database_url, "INSERT INTO users (email, password_hash, profile) VALUES ('d@e.f', 'x', %s)",
          (json.dumps({"old_password": other}),))  # fmt: skip
    assert ps.scan(database_url, other) == ("plain text", "public.users.profile")  # the table, not the view


def test_scan_is_read_only(database_url):
    _exec(database_url, USERS_TABLE)
    ps.scan(database_url, "nothing-to-find-1")
    with psycopg.connect(database_url) as con:
        assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)


class _Backend:
    """A minimal register/login API on 127.0.0.1 that stores users in PostgreSQL, plain or salted."""

    def __init__(self, db_url: str, store: str) -> None:
        def stored(password: str) -> str:
            if store == "plain":
                return password
            salt = secrets.token_bytes(16)
            key = hashlib.scrypt(password.encode(), salt=salt, n=1024, r=8, p=1)
            return f"scrypt${salt.hex()}${key.hex()}"

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/auth/register":
                    with psycopg.connect(db_url, autocommit=True) as con:
                        row = con.execute(
                            "INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id",
                            (body["email"], stored(body["password"])),
                        ).fetchone()
                    self._json(201, {"id": row[0], "email": body["email"]})
                elif self.path == "/auth/login":
                    self._json(200, {"access_token": "tok-" + secrets.token_hex(8)})
                else:
                    self._json(404, {"error": "not found"})

            def do_GET(self):
                self._json(200, {"status": "ok"})

            def _json(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(("store", "flagged"), [("plain", True), ("salted-scrypt", False)])
def test_probe_registers_a_user_and_reads_the_database(database_url, monkeypatch, store, flagged):
    _exec(database_url, USERS_TABLE)
    backend = _Backend(database_url, store)
    monkeypatch.setattr(probes, "PROBES", (ps,))
    messages: list[str] = []
    try:
        findings = run_probes(
            ProbeTarget(backend.url, auth=AuthConfig(), db_url=database_url),
            budget_s=30,
            progress=messages.append,
        ).findings
    finally:
        backend.stop()
    assert not [m for m in messages if "internal error" in m or "not installed" in m], messages
    with psycopg.connect(database_url) as con:
        # The two probe users logged in before probing, and the probe's own user with a unique password.
        assert con.execute("SELECT count(*) FROM users").fetchone() == (3,)
    if flagged:
        assert [(f.cwe, f.id, f.title) for f in findings] == [
            (522, "password-storage", "Password stored as plain text (public.users.password_hash)")
        ]
        assert "public.users.password_hash" in findings[0].evidence.response
    else:
        assert findings == []
