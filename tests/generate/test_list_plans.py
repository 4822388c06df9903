"""Lists at a million rows on a real PostgreSQL: every list query an example allows — no filter and each
filter, the default order and every sort both ways, the first page and the next by cursor, with the default
count — plans no sequential scan of a large table. The plans are the server's own for the statements the
running backend sends (logged by auto_explain), not SQL re-typed here. The backend prepares its list
statements, and PostgreSQL may keep a generic plan for one (planned without the values, LIMIT unknown): the
server runs with generic plans forced, so what is proved holds for whichever plan it keeps."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from backend_implementor.generate.express import codegen
from backend_implementor.generate.express.samples import sample_value
from backend_implementor.spec.model import Spec

from .blackbox import session_cookie
from .cluster import Cluster
from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, EXAMPLES, Server, require_ok, run, start, wait_for_health

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROWS = 1_000_000
VALUES = 1000  # distinct values of a field that is not unique (and parents a reference points to)
PASSWORD = "list-plans-password-1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    explain = "-c shared_preload_libraries=auto_explain -c auto_explain.log_min_duration=0"
    generic = "-c plan_cache_mode=force_generic_plan"
    c.ctl("start", f"{explain} -c auto_explain.log_format=json -c synchronous_commit=off {generic}")
    yield c
    c.close()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return str(value)


def _pool(
    conn: psycopg.Connection, joins: list[str], values: list[str], cast: str, *, cycle: bool = True
) -> str:
    """A temporary table of values, joined to the row number modulo its size (an array subscript per row
    would walk the array), and the expression that reads one. Without `cycle` only the first rows get one
    (the others NULL)."""
    table = f"pool_{uuid.uuid4().hex[:8]}"
    conn.execute(f"create temp table {table} (i int primary key, v text)")
    with conn.cursor().copy(f"copy {table} (i, v) from stdin") as copy:
        for i, v in enumerate(values):
            copy.write_row((i, v))
    joins.append(
        f"join {table} on {table}.i = g.n % {len(values)}"
        if cycle
        else f"left join {table} on {table}.i = g.n"
    )
    return f"{table}.v::{cast}"


@contextlib.contextmanager
def _indexes_rebuilt(conn: psycopg.Connection, table: str) -> Iterator[None]:
    """Loads without the table's plain indexes, then builds them again from their own definitions: sorting
    a million rows once is far faster than a million btree inserts per index."""
    indexes = conn.execute(
        "select indexname, indexdef from pg_indexes i where tablename = %s and not exists "
        "(select 1 from pg_constraint c where c.conname = i.indexname)",
        [table],
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'drop index "{name}"')
    yield
    for _, definition in indexes:
        conn.execute(definition)


def _fill(conn: psycopg.Connection, spec: Spec, owners: list[str]) -> None:
    """ROWS rows in every table, a tenth of the owned ones the test user's, nullable columns partly NULL."""
    conn.execute("set maintenance_work_mem = '256MB'")
    # The references are valid by construction (taken from the parent table): skip the per-row checks.
    conn.execute("set session_replication_role = replica")
    if spec.auth:
        conn.execute(
            "insert into users (email, password_hash, role, created_at) select 'filler' || n || "
            "'@example.com', 'x', %s, now() - n * interval '1 second' from generate_series(1, %s) n",
            [spec.auth.default_role, ROWS],
        )
    resources = codegen.topo_order([codegen.resource_code(spec, n, r) for n, r in spec.resources.items()])
    for r in resources:
        fields = spec.resources[r.name].fields
        columns, values, joins = [], [], []

        if r.owned:
            columns.append("owner_id")
            values.append(_pool(conn, joins, owners, "uuid"))
        for fc in r.fields:
            f = fields[fc.name]
            columns.append(fc.name)
            if f.type == "ref":
                parents = conn.execute(f'select id::text from "{f.to}" limit {VALUES}').fetchall()
                value = _pool(conn, joins, [p[0] for p in parents], "uuid")
            elif f.type == "array":
                value = f"'{{}}'::{fc.sql_type}"
            elif f.unique and f.pattern:
                # Sampling a pattern a million times takes minutes; the plans do not read the strings, so
                # the first rows get pattern samples (the filter values asked for) and the rest distinct fill.
                samples = [_text(sample_value(fc.name, f, i)) for i in range(VALUES)]
                pooled = _pool(conn, joins, samples, "text", cycle=False)
                value = f"coalesce({pooled}, 'u' || g.n)::{fc.sql_type}"
            else:
                samples = [_text(sample_value(fc.name, f, i)) for i in range(ROWS if f.unique else VALUES)]
                value = _pool(conn, joins, samples, fc.sql_type)
            values.append(f"case when g.n % 7 = 0 then null else {value} end" if fc.nullable else value)
        columns += ["created_at", "updated_at"]
        values += ["now() - g.n * interval '1 second'", "now() - (g.n % 5000) * interval '1 minute'"]
        cols = ", ".join(f'"{c}"' for c in columns)
        with _indexes_rebuilt(conn, r.name):
            conn.execute(
                f'insert into "{r.name}" ({cols}) select {", ".join(values)} '
                f"from generate_series(1, {ROWS}) g(n) {' '.join(joins)}"
            )
    conn.execute("set session_replication_role = default")
    # As autovacuum leaves a table: statistics, and a visibility map for index-only scans.
    conn.execute("vacuum analyze")


def _plans(log: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(log, log.index("{", m.end()))[0] for m in re.finditer(r"plan:\s*\n", log)]


def _seq_scans(node: dict[str, Any], parent: dict[str, Any] | None = None) -> Iterator[str]:
    """Sequential scans that may read the whole table. One with no filter right under a Limit reads only as
    many rows as the limit (the capped count of `?count=estimate`) and is not one."""
    if node["Node Type"] == "Seq Scan":
        bounded = parent is not None and parent["Node Type"] == "Limit" and "Filter" not in node
        if not bounded:
            yield node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _seq_scans(child, node)


def _login(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    """The headers of a logged-in user: a bearer token, or the session cookie of a cookie spec."""
    answer = client.post("/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    if "access_token" in answer.json():
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return {"Cookie": session_cookie(answer)}


@dataclass
class Loaded:
    server: Server
    headers: dict[str, str]  # the test user's
    admin_headers: dict[str, str]
    samples: dict[tuple[str, str], str]  # (resource, filter) -> a value some rows have


def _load(project, cluster: Cluster, tmp: Path) -> Loaded:
    """A database of the example's schema with ROWS rows a table, and its backend running on it."""
    spec = project.spec
    with psycopg.connect(cluster.url, autocommit=True) as admin:
        admin.execute(f'create database "plans_{project.name}"')
    url = cluster.url.rsplit("/", 1)[0] + f"/plans_{project.name}"
    env = {"DATABASE_URL": url}
    require_ok(run(["npm", "run", "db:migrate"], project.dir, env=env), "db:migrate")
    server = start(project, tmp, env)
    wait_for_health(server, project.name)
    loaded = Loaded(server, {}, {}, {})
    owners: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        if spec.auth:
            email = "plans@example.com"
            assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).is_success
            loaded.headers = _login(client, email, PASSWORD)
            loaded.admin_headers = _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
            owners = [client.get("/auth/me", headers=loaded.headers).json()["id"]]
    with psycopg.connect(url, autocommit=True) as conn:
        if spec.auth:
            conn.execute("set session_replication_role = replica")
            conn.execute(
                "insert into users (email, password_hash, role) select 'owner' || n || '@example.com', 'x', %s "
                "from generate_series(1, 9) n",
                [spec.auth.default_role],
            )
            owners += [str(r[0]) for r in conn.execute("select id from users where email like 'owner%'")]
        _fill(conn, spec, owners)
        for rname, res in spec.resources.items():
            for f in res.filters:
                field = res.fields[f]
                if field.unique and field.pattern:
                    loaded.samples[(rname, f)] = _text(sample_value(f, field, 7))
                    continue
                row = conn.execute(
                    f'select "{f}" from "{rname}" where "{f}" is not null offset 4321 limit 1'
                ).fetchone()
                loaded.samples[(rname, f)] = _text(row[0])
    return loaded


@pytest.fixture(scope="module")
def loaded(projects, cluster, tmp_path_factory) -> Iterator[dict[str, Loaded]]:
    """Every example loaded, two at a time (the machine's two cores)."""
    tmp = tmp_path_factory.mktemp("plans")
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {n: pool.submit(_load, projects[n], cluster, tmp / n) for n in EXAMPLES}
        done: dict[str, Loaded] = {}
        try:
            for n, job in jobs.items():
                done[n] = job.result()
            yield done
        finally:
            for job in jobs.values():
                with contextlib.suppress(Exception):
                    job.result().server.stop()


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_list_query_scans_a_million_row_table(projects, cluster, loaded, name):
    spec, data = projects[name].spec, loaded[name]
    start_at = cluster.log.stat().st_size
    asked = 0
    with httpx.Client(base_url=data.server.url, timeout=60) as client:
        for rname, res in spec.resources.items():
            who = data.admin_headers if isinstance(res.access.list, list) else data.headers
            for f in [None, *res.filters]:
                for s in [None, *res.sort, *("-" + s for s in res.sort)]:
                    params = {
                        "limit": 20,
                        **({"sort": s} if s else {}),
                        **({f: data.samples[(rname, f)]} if f else {}),
                    }
                    page = client.get(f"/{rname}", params=params, headers=who)
                    assert page.status_code == 200, (rname, params, page.text)
                    asked += 1
                    if cursor := page.json()["next_cursor"]:
                        after = client.get(f"/{rname}", params={**params, "cursor": cursor}, headers=who)
                        assert after.status_code == 200, (rname, params, after.text)
                        asked += 1
        if spec.auth:
            first = client.get("/users", params={"limit": 20}, headers=data.admin_headers).json()
            page = client.get("/users", params={"cursor": first["next_cursor"]}, headers=data.admin_headers)
            assert page.is_success, page.text
    with open(cluster.log, encoding="utf-8", errors="replace") as log:
        log.seek(start_at)
        plans = _plans(log.read())
    large = set(spec.resources) | ({"users"} if spec.auth else set())
    # EXPLAIN (the estimate of ?count=estimate) is logged too, but plans without reading a row.
    listed = [
        p
        for p in plans
        if any(f'from "{t}"' in p["Query Text"] for t in large) and not p["Query Text"].startswith("explain")
    ]
    assert len(listed) >= asked, (len(listed), asked)  # every request's statements were logged
    scans = {(t, p["Query Text"][:300]) for p in listed for t in _seq_scans(p["Plan"]) if t in large}
    assert not scans, "\n".join(f"{t}: {q}" for t, q in sorted(scans))
