"""The same black-box checks against a real PostgreSQL (BIMPL_TEST_DATABASE_URL), one database per test
(the `database_url` fixture in conftest.py), plus migrations up -> down (rollback) -> up with the project's
own npm scripts."""

from __future__ import annotations

import pytest

from .blackbox import run_checks
from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, EXAMPLES, query, require_ok, run, serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.mark.parametrize("name", EXAMPLES)
def test_black_box_checks_on_postgres(projects, name, database_url, tmp_path):
    project = projects[name]
    with serve(project, tmp_path, {"DATABASE_URL": database_url}) as server:
        facts = run_checks(server.url, project.spec, (ADMIN_EMAIL, ADMIN_PASSWORD))
    if project.spec.auth is None:
        return  # no users table to inspect
    rows = query(project, database_url, "select email, password_hash from users")
    hashes = {r["email"]: r["password_hash"] for r in rows}
    assert set(facts["emails"]) <= set(hashes)
    assert all(h.startswith("$argon2id$") for h in hashes.values())


def test_migrations_up_down_up(projects, database_url):
    project = projects["library"]
    env = {"DATABASE_URL": database_url}
    tables = "select table_name from information_schema.tables where table_schema = 'public' order by 1"

    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate")
    up = {r["table_name"] for r in query(project, database_url, tables)}
    assert {"users", "refresh_tokens", *project.spec.resources} <= up
    indexes = {r["indexname"] for r in query(project, database_url, "select indexname from pg_indexes")}
    assert {"books_author_idx", "loans_owner_id_idx", "books_isbn_unique"} <= indexes

    proc = run(["npm", "run", "db:rollback"], project.dir, env=env)
    require_ok(proc, "db:rollback")
    assert "rolled back 0000_init" in proc.stdout
    assert query(project, database_url, tables) == []

    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate again")
    assert {r["table_name"] for r in query(project, database_url, tables)} == up
