"""Benchmark of `bimpl new`: spec -> green time, and the generated library backend's throughput next to a
minimal hand-written Express 5 + pg server on the same PostgreSQL tables, for four workloads — GET /books/{id},
a filtered sorted list, an authenticated POST /books, and a deep offset — at each --rows size of the books
table (targets: <= 30 s to green; ratio >= 0.9 of the bare server). The library is generated with
`graphql: true`, and a second table sets a GraphQL page of books with each book's author and each author's
book count beside the REST list: req/s and SQL statements per request (PostgreSQL's transaction count: every
statement the app runs is its own transaction).

    python benchmarks/generate_bench.py [--rows 100000,1000000] [--duration 5] [--rounds 4] [--connections 32]

Throughput needs PostgreSQL: BIMPL_BENCH_DATABASE_URL or BIMPL_TEST_DATABASE_URL (a server URL; a fresh
database is created and dropped). Load comes from autocannon, installed once into the npm cache dir
(BIMPL_NPM_CACHE_DIR). Everything runs on 127.0.0.1 with bounded durations. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from backend_implementor.generate import generate_project
from backend_implementor.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[1]
ADMIN = ("bench-admin@example.com", "bench-admin-password")

# What a developer writes by hand for the same four routes: no validation, auth, headers or request log.
BASELINE = """
import express from 'express';
import pg from 'pg';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = express();
app.use(express.json());
app.get('/books/:id', async (req, res) => {
  const { rows } = await pool.query('select * from books where id = $1', [req.params.id]);
  if (rows.length === 0) return res.status(404).end();
  res.json(rows[0]);
});
app.get('/books', async (req, res) => {
  const limit = Number(req.query.limit ?? 20), offset = Number(req.query.offset ?? 0);
  const by = req.query.author ? [req.query.author] : [];
  const where = by.length ? 'where author = $1' : '';
  const order = req.query.sort === 'title' ? 'title, id' : 'created_at, id';
  const page = `limit $${by.length + 1} offset $${by.length + 2}`;
  const [items, total] = await Promise.all([
    pool.query(`select * from books ${where} order by ${order} ${page}`, [...by, limit, offset]),
    pool.query(`select count(*)::int as n from books ${where}`, by),
  ]);
  res.json({ items: items.rows, total: total.rows[0].n, limit, offset });
});
app.post('/books', async (req, res) => {
  const { title, author, copies = 1, format = 'paper' } = req.body;
  const { rows } = await pool.query(
    'insert into books (title, author, copies, format) values ($1, $2, $3, $4) returning *',
    [title, author, copies, format],
  );
  res.status(201).json(rows[0]);
});
app.listen(Number(process.env.PORT), '127.0.0.1');
"""

FILL = """
insert into authors (name) select 'author ' || n from generate_series(1, 1000) n;
insert into books (title, author, copies, format, created_at)
  select 'title ' || lpad((n::bigint * 7919 % {rows})::text, 7, '0'), a.ids[1 + n % 1000], n % 5,
         case when n % 3 = 0 then 'ebook' else 'paper' end, now() - n * interval '1 second'
  from generate_series(1, {rows}) n, (select array_agg(id) ids from authors) a
"""

SQL = """
import pg from 'pg';
const client = new pg.Client({ connectionString: process.env.ADMIN_URL });
await client.connect();
await client.query(process.env.SQL);
await client.end();
"""


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], cwd: Path, env: dict[str, str], health: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=2).status_code < 500:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    stop(proc)
    sys.exit(f"{' '.join(cmd)} did not come up")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def autocannon(cache: Path) -> Path:
    tool = cache / "autocannon"
    binary = tool / "node_modules" / ".bin" / "autocannon"
    if not binary.exists():
        tool.mkdir(parents=True, exist_ok=True)
        sh(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "autocannon@8"], tool)
    return binary


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to report server cost per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    binary: Path, target: Target, duration: int, connections: int, server: subprocess.Popen
) -> tuple[float, float | None]:
    """Requests/s over one run, and the server's CPU microseconds per request."""
    cmd = [str(binary), "-j", "-c", str(connections), "-d", str(duration), "-m", target.method]
    for k, v in target.headers.items():
        cmd += ["-H", f"{k}={v}"]
    if target.body is not None:
        cmd += ["-H", "content-type=application/json", "-b", json.dumps(target.body)]
    before = cpu_seconds(server.pid)
    out = sh([*cmd, target.url], Path.cwd()).stdout
    after = cpu_seconds(server.pid)
    result = json.loads(out)
    if result.get("non2xx"):
        sys.exit(f"{target.method} {target.url}: {result['non2xx']} non-2xx responses")
    total = result["requests"]["total"]
    cpu_us = (after - before) / total * 1e6 if before is not None and after is not None and total else None
    return float(result["requests"]["average"]), cpu_us


@dataclass
class Target:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None


def _sizes(text: str) -> list[int]:
    """--rows: positive whole numbers, comma-separated (argparse turns the error into a usage message)."""
    try:
        sizes = [int(n) for n in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive row counts separated by commas, got {text!r}")
    return sizes


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def progress(message: str) -> None:
    """Long steps (npm, filling a million rows) say what they are doing, on stderr beside the table."""
    print(f"... {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=_sizes, default="100000,1000000", help="sizes of the books table, comma-separated"
    )
    parser.add_argument("--duration", type=_positive, default=5, help="seconds per load run")
    parser.add_argument("--rounds", type=_positive, default=4, help="alternating generated/hand-written runs")
    parser.add_argument("--connections", type=_positive, default=32)
    args = parser.parse_args()
    cache = Path(os.environ.get("BIMPL_NPM_CACHE_DIR") or Path.home() / ".cache" / "bimpl-tests" / "npm")
    spec = load_spec(REPO / "examples" / "library.yaml").model_copy(update={"graphql": True})
    sizes: list[int] = args.rows

    with tempfile.TemporaryDirectory(prefix="bimpl-bench-") as tmp:
        project = Path(tmp) / spec.name
        t0 = time.perf_counter()
        generate_project(spec, project)
        t1 = time.perf_counter()
        progress("npm ci and npm test of the generated project")
        sh(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], project)
        t2 = time.perf_counter()
        sh(["npm", "test"], project)
        t3 = time.perf_counter()
        print(
            f"spec -> green ({spec.name}): {t3 - t0:.1f} s  [generate {t1 - t0:.2f} s, npm ci {t2 - t1:.1f} s, npm test {t3 - t2:.1f} s]"
        )

        server = os.environ.get("BIMPL_BENCH_DATABASE_URL") or os.environ.get("BIMPL_TEST_DATABASE_URL")
        if not server:
            print(
                "throughput: skipped (set BIMPL_BENCH_DATABASE_URL or BIMPL_TEST_DATABASE_URL to a PostgreSQL server)"
            )
            return
        sh(["npm", "run", "build"], project)
        (project / "baseline.mjs").write_text(BASELINE)
        binary = autocannon(cache)
        print(
            f"requests/s, medians of {args.rounds} alternating {args.duration} s runs, {args.connections} "
            "connections; server CPU per request in brackets"
        )
        print("| workload | rows | generated | bare Express 5 + pg | generated / bare |")
        print("|---|---|---|---|---|")
        for rows in sizes:
            throughput(project, server, binary, rows, args)
    shutil.rmtree(project, ignore_errors=True)


def throughput(project: Path, server: str, binary: Path, rows: int, args: argparse.Namespace) -> None:
    db_name = f"bimpl_bench_{uuid.uuid4().hex[:8]}"

    def sql(statement: str, url: str = server) -> None:
        sh(["node", "--input-type=module", "-e", SQL], project, {"ADMIN_URL": url, "SQL": statement})

    sql(f'CREATE DATABASE "{db_name}"')
    url = urlunsplit(urlsplit(server)._replace(path=f"/{db_name}"))
    procs: list[subprocess.Popen] = []
    try:
        sh(["npm", "run", "db:migrate"], project, {"DATABASE_URL": url})
        progress(f"filling {rows:,} books")
        sql(FILL.format(rows=rows), url)
        sql("vacuum analyze", url)
        port, bport = free_port(), free_port()
        env = {
            "DATABASE_URL": url,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "NODE_ENV": "production",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
            "JWT_SECRET": "b" * 48,
            "ADMIN_EMAIL": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "AUTH_RATE_LIMIT": "1000",
        }
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bport}"
        procs.append(start(["node", "dist/server.js"], project, env, f"{base}/health"))
        procs.append(
            start(
                ["node", "baseline.mjs"],
                project,
                {"DATABASE_URL": url, "PORT": str(bport)},
                f"{bare}/books?limit=1",
            )
        )
        token = httpx.post(f"{base}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()[
            "access_token"
        ]
        some = httpx.get(f"{base}/books", params={"limit": 1, "offset": rows // 2}).json()["items"][0]
        book = {"title": "A new book", "author": some["author"], "copies": 2}
        workloads = {
            "GET /books/{id}": ("GET", f"/books/{some['id']}", None, False),
            "GET /books?author=…&sort=title&limit=20": (
                "GET",
                f"/books?author={some['author']}&sort=title&limit=20",
                None,
                False,
            ),
            "POST /books (librarian token)": ("POST", "/books", book, True),
            "GET /books?offset=50000": ("GET", "/books?offset=50000&limit=20", None, False),
        }
        for name, (method, path, body, authed) in workloads.items():
            progress(f"{name}, {rows:,} rows: {args.rounds} rounds of {args.duration} s per server")
            targets = {
                "generated": Target(
                    method, base + path, {"authorization": f"Bearer {token}"} if authed else {}, body
                ),
                "bare": Target(method, bare + path, {}, body),
            }
            pairs = {"generated": procs[0], "bare": procs[1]}
            for k, t in targets.items():
                load(binary, t, 2, args.connections, pairs[k])  # warm-up: JIT, pool, caches
            # Alternating rounds, so drift on a shared machine hits both servers alike; medians are reported.
            runs: dict[str, list[tuple[float, float | None]]] = {k: [] for k in targets}
            for _ in range(args.rounds):
                for k, t in targets.items():
                    runs[k].append(load(binary, t, args.duration, args.connections, pairs[k]))
            rps = {k: statistics.median(r for r, _ in v) for k, v in runs.items()}

            cell = {k: _cell(rps[k], runs[k]) for k in runs}

            print(
                f"| {name} | {rows:,} | {cell['generated']} | {cell['bare']} | {rps['generated'] / rps['bare']:.2f} |"
            )
        graphql_beside_rest(
            binary, base, url, procs[0], rows, args, sql_rows=lambda q: query(project, url, q)
        )
    finally:
        for proc in procs:
            stop(proc)
        sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


GRAPHQL_PAGE = "{ books(limit: 20) { items { id title author { id name books(limit: 5) { total } } } } }"


def graphql_beside_rest(binary: Path, base: str, url: str, server: subprocess.Popen, rows: int,
                        args: argparse.Namespace, sql_rows) -> None:  # fmt: skip
    """The REST list and a GraphQL page with references, on the generated server: req/s and statements."""
    workloads = {
        "REST GET /books?limit=20": Target("GET", f"{base}/books?limit=20"),
        "GraphQL books(limit: 20) { author { books { total } } }": Target(
            "POST", f"{base}/graphql", {}, {"query": GRAPHQL_PAGE}
        ),
    }
    print(f"\n| workload ({rows:,} books) | req/s (CPU per request) | SQL statements per request |")
    print("|---|---|---|")
    for name, target in workloads.items():
        progress(f"{name}: {args.rounds} rounds of {args.duration} s")
        load(binary, target, 2, args.connections, server)
        runs = [load(binary, target, args.duration, args.connections, server) for _ in range(args.rounds)]
        rps = statistics.median(r for r, _ in runs)
        print(f"| {name} | {_cell(rps, runs)} | {statements_per_request(target, sql_rows):.1f} |")


def statements_per_request(target: Target, sql_rows, requests: int = 200) -> float:
    """PostgreSQL's committed transactions in this database over `requests` sequential requests, per request.
    Backends report their counts when idle, at the latest after 10 s (PostgreSQL 15), hence the waits."""
    count = "select xact_commit::bigint as n from pg_stat_database where datname = current_database()"
    time.sleep(11)
    before = int(sql_rows(count)[0]["n"])
    with httpx.Client() as client:
        for _ in range(requests):
            client.request(
                target.method, target.url, json=target.body, headers=target.headers
            ).raise_for_status()
    time.sleep(11)
    # The first count query is one transaction more, reported (when its connection closed) by the second.
    return (int(sql_rows(count)[0]["n"]) - before - 1) / requests


QUERY = """
import pg from 'pg';
const client = new pg.Client({ connectionString: process.env.DB_URL });
await client.connect();
const { rows } = await client.query(process.env.SQL);
await client.end();
process.stdout.write(JSON.stringify(rows));
"""


def query(project: Path, url: str, statement: str) -> list[dict]:
    return json.loads(
        sh(["node", "--input-type=module", "-e", QUERY], project, {"DB_URL": url, "SQL": statement}).stdout
    )


def _cell(rps: float, runs: list[tuple[float, float | None]]) -> str:
    cpu = [c for _, c in runs if c is not None]
    return f"{rps:.0f} ({statistics.median(cpu):.0f} µs)" if cpu else f"{rps:.0f}"


if __name__ == "__main__":
    main()
