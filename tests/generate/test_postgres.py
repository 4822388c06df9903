"""The same black-box checks against a real PostgreSQL (BIMPL_TEST_DATABASE_URL), one database per test
(the `database_url` fixture in conftest.py), plus migrations up -> down (rollback) -> up with the project's
own npm scripts."""

from __future__ import annotations

import httpx
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
    assert {"books_author_title_id_idx", "loans_owner_id_due_id_idx", "books_isbn_unique"} <= indexes

    proc = run(["npm", "run", "db:rollback"], project.dir, env=env)
    require_ok(proc, "db:rollback")
    assert "rolled back 0000_init" in proc.stdout
    assert query(project, database_url, tables) == []

    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate again")
    assert {r["table_name"] for r in query(project, database_url, tables)} == up


def test_list_totals_and_cursors_past_the_exact_count(projects, database_url, tmp_path):
    """Past 10 000 matching rows the default total is the planner's estimate, marked as one; exact and
    none still answer as asked; cursors walk the whole table. On a real PostgreSQL (the generated tests
    cover PGlite)."""
    project = projects["library"]
    env = {"DATABASE_URL": database_url}
    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate")
    query(
        project,
        database_url,
        "insert into authors (name, born) select 'author ' || n, case when n % 3 = 0 then null"
        " else date '1900-01-01' + (n % 500) end from generate_series(1, 10050) n",
    )
    query(project, database_url, "analyze authors")
    with serve(project, tmp_path, env) as server:
        default = httpx.get(f"{server.url}/authors", params={"limit": 1}).json()
        exact = httpx.get(f"{server.url}/authors", params={"count": "exact"}).json()
        filtered = httpx.get(f"{server.url}/authors", params={"name": "author 7"}).json()
        none = httpx.get(f"{server.url}/authors", params={"count": "none"}).json()
        # Keyset pages over a nullable column with ties, descending: every row once, as ORDER BY has them.
        walked, cursor = [], None
        while True:
            params = {
                "sort": "-born",
                "limit": 100,
                "count": "none",
                **({"cursor": cursor} if cursor else {}),
            }
            page = httpx.get(f"{server.url}/authors", params=params).json()
            walked += [item["id"] for item in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
    ordered = query(project, database_url, "select id from authors order by born desc, id desc")
    assert walked == [r["id"] for r in ordered]
    assert default["count"] == "estimate" and 10_000 < default["total"] < 20_100
    assert (exact["count"], exact["total"]) == ("exact", 10_050)
    assert (filtered["count"], filtered["total"]) == ("exact", 1)
    assert (none["count"], none["total"]) == ("none", None) and len(none["items"]) == 20
