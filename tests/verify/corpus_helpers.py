"""Boot the vulnerable corpus apps (tests/fixtures/vulnerable) for the probe and static tests."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend_implementor.verify.proc import free_port

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "vulnerable"


@dataclass
class CorpusApp:
    name: str
    dir: Path
    expected: dict

    @property
    def vulnerable(self) -> bool:
        return self.expected.get("cwe") is not None

    @property
    def cwes(self) -> list[int]:
        """The planted CWEs: `cwe` is one, or a list where an app has several flaws, or null on a twin."""
        cwe = self.expected.get("cwe")
        return [] if cwe is None else list(cwe) if isinstance(cwe, list) else [cwe]


def corpus_apps() -> list[CorpusApp]:
    return [
        CorpusApp(d.name, d, json.loads((d / "expected.json").read_text()))
        for d in sorted(CORPUS.iterdir())
        if (d / "expected.json").is_file()
    ]


def corpus_pairs() -> list[tuple[CorpusApp, CorpusApp]]:
    apps = {a.name: a for a in corpus_apps()}
    return [(a, apps[a.expected["twin"]]) for a in apps.values() if a.vulnerable]


def ensure_node_modules(corpus: Path = CORPUS) -> None:
    """`npm ci --ignore-scripts` once; skipped while node_modules matches the committed lockfile."""
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed")
    lock = corpus / "package-lock.json"
    stamp = corpus / "node_modules" / ".bimpl-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    # xdist workers call this at once: two `npm ci` in one folder delete each other's packages.
    with open(corpus / ".npm-ci.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == digest:
            return
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=corpus,
            check=True,
            capture_output=True,
            timeout=300,
        )
        stamp.write_text(digest)


@dataclass
class Running:
    app: CorpusApp
    base_url: str
    proc: subprocess.Popen
    db_url: str | None
    log: Path
    secret: str

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def openapi(self) -> dict:
        return httpx.get(self.base_url + "/openapi.json", timeout=5).json()


@contextmanager
def boot(app: CorpusApp, *, timeout: float = 60) -> Iterator[Running]:
    """Start `node app.js` on a free port in its own process group; kill the group afterwards."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix=f"bimpl-{app.name}-"))
    # As verify does: the app gets a secret the probes know, so they can sign tokens themselves.
    secret = secrets.token_urlsafe(32)
    env = {**os.environ, "PORT": str(port), "NODE_ENV": "development", "APP_SECRET": secret}
    db_url = None
    if app.expected.get("db_dir_env"):
        db_dir = tmp / "db"
        db_dir.mkdir()
        env[app.expected["db_dir_env"]] = str(db_dir)
        db_url = str(db_dir)
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["node", "app.js"],
            cwd=app.dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(app, f"http://127.0.0.1:{port}", proc, db_url, log, secret)
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app.name} exited during boot:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(running.base_url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"{app.name} did not become healthy:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield running
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the foreign corpus

FOREIGN = Path(__file__).resolve().parents[1] / "fixtures" / "foreign"
BIMPL = [sys.executable, "-c", "from backend_implementor.cli import main; main()"]


def foreign_apps() -> list[CorpusApp]:
    return [
        CorpusApp(d.name, d, json.loads((d / "expected.json").read_text()))
        for d in sorted(FOREIGN.iterdir())
        if (d / "expected.json").is_file()
    ]


def ensure_foreign_node_modules() -> None:
    ensure_node_modules(FOREIGN)


@dataclass
class VerifyRun:
    app: CorpusApp
    returncode: int
    report: dict
    stdout: str
    stderr: str


def verify_app(app: CorpusApp, work: Path, *, fuzz_time: float = 3, timeout: float = 600) -> VerifyRun:
    """The command a user runs: `bimpl verify DIR` (or `--url` against the app started as its
    expected.json says, e.g. under a supervisor), every stage, plus the arguments expected.json gives."""
    out = work / app.name
    out.mkdir(parents=True, exist_ok=True)
    args = [*BIMPL, "verify", "--fuzz-time", str(fuzz_time), "--out", str(out / "report"),
            *app.expected.get("args", [])]  # fmt: skip
    env = dict(os.environ)
    if app.expected.get("db_dir_env"):
        db = out / "db"
        db.mkdir(exist_ok=True)
        args += ["--db-url", str(db), "--env", f"{app.expected['db_dir_env']}={db}"]
        env[app.expected["db_dir_env"]] = str(db)
    proc = None
    if app.expected.get("mode") == "url":
        port = free_port()
        log = open(out / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(app.expected["start"], cwd=app.dir, env={**env, "PORT": str(port)},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        _wait_port(port, proc, out / "server.log")
        args += ["--url", f"http://127.0.0.1:{port}"]
    else:
        args.append(str(app.dir))
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        if proc is not None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            log.close()
    report_file = out / "report" / "report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    return VerifyRun(app, done.returncode, report, done.stdout, done.stderr)


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited during boot:\n{log.read_text()[-2000:]}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened:\n{log.read_text()[-2000:]}")
