"""Benchmark of `bimpl new`: spec -> green time, and the generated app's GET-by-id throughput next to a
minimal hand-written Express + pg handler on the same PostgreSQL database (targets: <= 30 s; ratio >= 0.9).

    python benchmarks/generate_bench.py [--spec examples/library.yaml] [--duration 5] [--rounds 4] [--connections 50]

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
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from backend_implementor.generate import generate_project
from backend_implementor.generate.express.samples import sample_body
from backend_implementor.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[1]
ADMIN = ("bench-admin@example.com", "bench-admin-password")

BASELINE = """
import express from 'express';
import pg from 'pg';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = express();
app.get('/:table/:id', async (req, res) => {
  const { rows } = await pool.query(`select * from "${req.params.table}" where id = $1`, [req.params.id]);
  if (rows.length === 0) return res.status(404).end();
  res.json(rows[0]);
});
app.listen(Number(process.env.PORT), '127.0.0.1');
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
    binary: Path, url: str, duration: int, connections: int, server: subprocess.Popen
) -> tuple[float, float | None]:
    """Requests/s over one run, and the server's CPU microseconds per request."""
    before = cpu_seconds(server.pid)
    out = sh([str(binary), "-j", "-c", str(connections), "-d", str(duration), url], Path.cwd()).stdout
    after = cpu_seconds(server.pid)
    result = json.loads(out)
    if result.get("non2xx"):
        sys.exit(f"{url}: {result['non2xx']} non-2xx responses")
    total = result["requests"]["total"]
    cpu_us = (after - before) / total * 1e6 if before is not None and after is not None and total else None
    return float(result["requests"]["average"]), cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(REPO / "examples" / "library.yaml"))
    parser.add_argument("--duration", type=int, default=5, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=4, help="alternating generated/hand-written runs")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    cache = Path(os.environ.get("BIMPL_NPM_CACHE_DIR") or Path.home() / ".cache" / "bimpl-tests" / "npm")
    spec = load_spec(args.spec)

    with tempfile.TemporaryDirectory(prefix="bimpl-bench-") as tmp:
        project = Path(tmp) / spec.name
        t0 = time.perf_counter()
        generate_project(spec, project)
        t1 = time.perf_counter()
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
        binary = autocannon(cache)
        db_name = f"bimpl_bench_{uuid.uuid4().hex[:8]}"

        def sql(statement: str) -> None:
            sh(["node", "--input-type=module", "-e", SQL], project, {"ADMIN_URL": server, "SQL": statement})

        sql(f'CREATE DATABASE "{db_name}"')
        url = urlunsplit(urlsplit(server)._replace(path=f"/{db_name}"))
        procs: list[subprocess.Popen] = []
        try:
            port = free_port()
            env = {
                "DATABASE_URL": url,
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "NODE_ENV": "production",
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
                "JWT_SECRET": "b" * 48,
                "ADMIN_EMAIL": ADMIN[0],
                "ADMIN_PASSWORD": ADMIN[1],
            }
            base = f"http://127.0.0.1:{port}"
            procs.append(start(["node", "dist/server.js"], project, env, f"{base}/health"))
            # The public GET-by-id route of the first resource whose `read` is public and `create` a role list.
            name, res = next((n, r) for n, r in spec.resources.items() if r.access.read == "public")
            token = httpx.post(f"{base}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()[
                "access_token"
            ]
            body = sample_body(spec, name, 0)
            for fname, f in res.fields.items():
                if f.type == "ref":
                    sys.exit(f"benchmark needs a public resource without refs; {name}.{fname} is a ref")
            created = httpx.post(f"{base}/{name}", json=body, headers={"Authorization": f"Bearer {token}"})
            if created.status_code != 201:
                sys.exit(f"could not create a {name}: {created.text}")
            path = f"/{name}/{created.json()['id']}"

            baseline_file = project / "baseline.mjs"
            baseline_file.write_text(BASELINE)
            bport = free_port()
            procs.append(
                start(
                    ["node", "baseline.mjs"],
                    project,
                    {"DATABASE_URL": url, "PORT": str(bport)},
                    f"http://127.0.0.1:{bport}{path}",
                )
            )

            targets = {
                "generated": (f"{base}{path}", procs[0]),
                "hand-written": (f"http://127.0.0.1:{bport}{path}", procs[1]),
            }
            for url_, proc in targets.values():
                load(binary, url_, 2, args.connections, proc)  # warm-up: JIT, pool, prepared statements
            # Alternating rounds, so drift on a shared machine hits both servers alike; medians are reported.
            runs: dict[str, list[tuple[float, float | None]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name_, (url_, proc) in targets.items():
                    runs[name_].append(load(binary, url_, args.duration, args.connections, proc))
            rps = {k: statistics.median(r for r, _ in v) for k, v in runs.items()}
            print(
                f"GET {name}/{{id}} requests/s (median of {args.rounds} alternating {args.duration} s runs, "
                f"{args.connections} connections): generated {rps['generated']:.0f}, hand-written Express+pg "
                f"{rps['hand-written']:.0f}, ratio {rps['generated'] / rps['hand-written']:.2f} (target >= 0.9)"
            )
            for k, v in runs.items():
                cpu = [c for _, c in v if c is not None]
                cost = f", server CPU {statistics.median(cpu):.0f} us/request" if cpu else ""
                print(f"  {k:12} runs: {', '.join(f'{r:.0f}' for r, _ in v)} req/s{cost}")
        finally:
            for proc in procs:
                stop(proc)
            sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
