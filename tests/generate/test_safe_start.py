"""Safe starts on a real PostgreSQL: replicas started together apply the migrations once (under an advisory
lock), and a server whose database is behind the code answers 503 naming the pending migrations until
someone migrates it, then becomes ready without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, build, query, require_ok, run, start, wait_for_health

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPLICAS = 4
# MIGRATION_LOCK_KEY in src/db/client.ts: "drizzle" in ASCII, read as one bigint.
MIGRATION_LOCK_KEY = str(int.from_bytes(b"drizzle", "big"))

# Takes the migration lock, says so, and holds it until its stdin closes.
HOLD_LOCK = """
import pg from 'pg';
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
await client.query('select pg_advisory_lock($1)', [process.env.KEY]);
console.log('locked');
process.stdin.on('end', () => client.end()).resume();
"""
WAITING_FOR_LOCK = """
select count(*)::int as n from pg_locks
where locktype = 'advisory' and not granted
  and database = (select oid from pg_database where datname = current_database())
"""


@pytest.fixture
def library(projects):
    project = projects["library"]
    build(project)
    return project


def journal_tags(project) -> list[str]:
    journal = json.loads((project.dir / "drizzle" / "meta" / "_journal.json").read_text())
    return [entry["tag"] for entry in journal["entries"]]


def log_lines(server) -> list[dict]:
    """The server's pino log, one JSON object per line; anything else (a crash trace) fails the test."""
    lines = server.log.read_text().splitlines()
    assert all(line.startswith("{") for line in lines), server.log.read_text()
    return [json.loads(line) for line in lines]


def errors_logged(server) -> list[dict]:
    return [line for line in log_lines(server) if line["level"] >= 50]  # pino: 50 error, 60 fatal


def assert_schema_pending(answer: httpx.Response, pending: list[str]) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "5"
    body = answer.json()
    assert body["pending"] == pending
    assert all(tag in body["detail"] for tag in pending), body["detail"]


def test_replicas_started_together_apply_the_migrations_once(library, database_url, tmp_path):
    # Holding the lock first makes all four queue on it for sure, rather than maybe start one after another.
    holder = subprocess.Popen(
        ["node", "--input-type=module", "-e", HOLD_LOCK],
        cwd=library.dir,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": database_url, "KEY": MIGRATION_LOCK_KEY},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    servers = []
    try:
        assert holder.stdout.readline().strip() == "locked"
        servers = [
            start(library, tmp_path / f"replica{i}", {"DATABASE_URL": database_url}) for i in range(REPLICAS)
        ]
        deadline = time.monotonic() + 30
        while query(library, database_url, WAITING_FOR_LOCK) != [{"n": REPLICAS}]:
            if time.monotonic() > deadline:
                pytest.fail(f"not all {REPLICAS} replicas wait for the migration lock")
            time.sleep(0.2)
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        for i, server in enumerate(servers):
            assert wait_for_health(server, f"replica {i}").json() == {"status": "ok"}
            assert httpx.get(f"{server.url}/books").status_code == 200
    finally:
        holder.kill()
        for server in servers:
            server.stop()
    recorded = query(library, database_url, "select created_at from drizzle.__drizzle_migrations")
    assert len(recorded) == len(journal_tags(library)), recorded
    for i, server in enumerate(servers):
        assert errors_logged(server) == [], f"replica {i}: {server.log.read_text()}"


def test_without_migrate_on_start_it_waits_for_db_migrate_then_becomes_ready(library, database_url, tmp_path):
    server = start(library, tmp_path, {"DATABASE_URL": database_url, "MIGRATE_ON_START": "false"})
    try:
        tags = journal_tags(library)
        assert tags[0] == "0000_init"
        assert_schema_pending(wait_for_health(server, "server", status=503), tags)
        assert_schema_pending(httpx.get(f"{server.url}/books"), tags)
        exists = "select to_regclass('drizzle.__drizzle_migrations') is not null as found"
        assert query(library, database_url, exists) == [{"found": False}], "the server must not migrate"

        migrate = run(["npm", "run", "db:migrate"], library.dir, env={"DATABASE_URL": database_url})
        require_ok(migrate, "npm run db:migrate")
        # The same process, no restart: it re-checks a pending schema every ~2 s.
        wait_for_health(server, "server", timeout=5)
        assert httpx.get(f"{server.url}/books").status_code == 200
        # The admin account is seeded once the users table exists.
        admin = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        assert httpx.post(f"{server.url}/auth/login", json=admin).status_code == 200
    finally:
        server.stop()
    assert errors_logged(server) == []


def test_a_failed_migration_is_logged_and_served_as_503_not_a_crash(library, database_url, tmp_path):
    # A table in the way makes 0000_init fail; drizzle's transaction leaves nothing half-applied.
    query(library, database_url, "create table books (id int)")
    server = start(library, tmp_path, {"DATABASE_URL": database_url})
    try:
        assert_schema_pending(wait_for_health(server, "server", status=503), journal_tags(library))
        assert_schema_pending(httpx.get(f"{server.url}/books"), journal_tags(library))
    finally:
        assert server.stop() == 0, "it keeps serving and still shuts down cleanly"
    (error,) = errors_logged(server)
    assert error["msg"] == 'migrations failed: relation "books" already exists', error
