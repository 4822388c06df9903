"""Boot the vulnerable corpus apps (tests/fixtures/vulnerable) for the probe and static tests."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
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


def corpus_apps() -> list[CorpusApp]:
    return [
        CorpusApp(d.name, d, json.loads((d / "expected.json").read_text()))
        for d in sorted(CORPUS.iterdir())
        if (d / "expected.json").is_file()
    ]


def corpus_pairs() -> list[tuple[CorpusApp, CorpusApp]]:
    apps = {a.name: a for a in corpus_apps()}
    return [(a, apps[a.expected["twin"]]) for a in apps.values() if a.vulnerable]


def ensure_node_modules() -> None:
    """`npm ci --ignore-scripts` once; skipped while node_modules matches the committed lockfile."""
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed")
    lock = CORPUS / "package-lock.json"
    stamp = CORPUS / "node_modules" / ".bimpl-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=CORPUS,
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
