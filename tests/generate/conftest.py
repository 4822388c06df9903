"""Fixtures for the generator's end-to-end tests.

npm is expensive, so: ONE `npm ci --ignore-scripts` per lockfile (cached under $BIMPL_NPM_CACHE_DIR, keyed
by the lockfile's hash, guarded by a file lock for xdist), then every generated project gets a symlink to
that node_modules. Each example is generated and built once per session.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from backend_implementor.generate import generate_project, render_project
from backend_implementor.spec.loader import load_spec
from backend_implementor.spec.model import Spec
from backend_implementor.verify.proc import free_port

REPO = Path(__file__).resolve().parents[2]
OWN_SPECS = Path(__file__).parent / "specs"
EXAMPLES = ("blog", "library", "inventory", "notes", "projects", "shop", "journal", "bookclub")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"


def example_path(name: str) -> Path:
    """The spec engineer's examples/NAME.yaml, or our own copy until it exists."""
    shipped = REPO / "examples" / f"{name}.yaml"
    return shipped if shipped.exists() else OWN_SPECS / f"{name}.yaml"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def require_ok(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0, (
        f"{what} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None:
        pytest.fail("npm is required for the generator's end-to-end tests")
    # The template's whole lock: every package any project may use (each project's own lock is a subset of
    # it, e.g. `cookie` only with cookie sessions), so one install serves every example.
    files = render_project(load_spec(example_path("library")))
    lock = (
        resources.files("backend_implementor.generate.express") / "package-lock.template.json"
    ).read_bytes()
    key = hashlib.sha256(lock).hexdigest()[:16]
    base = Path(os.environ.get("BIMPL_NPM_CACHE_DIR") or tmp_path_factory.getbasetemp() / "npm-cache")
    target = base / f"express-{key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(base / f".{key}.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        if not (target / "node_modules" / ".package-lock.json").exists():
            staging = base / f".staging-{key}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            package = json.loads(files["package.json"])
            root = json.loads(lock)["packages"][""]
            package["dependencies"], package["devDependencies"] = (
                root["dependencies"],
                root["devDependencies"],
            )
            (staging / "package.json").write_text(json.dumps(package, indent=2))
            (staging / "package-lock.json").write_bytes(lock)
            proc = run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], staging, timeout=900)
            require_ok(proc, "npm ci")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target / "node_modules"


@dataclass
class Project:
    name: str
    spec: Spec
    dir: Path
    built: bool = False
    checks: dict[str, object] = field(default_factory=dict)


def make_project(name: str, root: Path, node_modules: Path) -> Project:
    spec = load_spec(example_path(name))
    out = root / name
    generate_project(spec, out)
    (out / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return Project(name=name, spec=spec, dir=out)


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory, node_modules: Path) -> dict[str, Project]:
    """Each example generated once; `build` compiles it on first use."""
    root = tmp_path_factory.mktemp("generated")
    return {name: make_project(name, root, node_modules) for name in EXAMPLES}


def build(project: Project) -> None:
    if not project.built:
        require_ok(run(["npm", "run", "build"], project.dir), f"{project.name}: npm run build")
        project.built = True


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]

    def stop(self) -> int:
        """SIGTERM (graceful shutdown closes the database), then the whole process group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode


def start(project: Project, tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    """Starts the built project (`node dist/server.js`) without waiting for it; logs go to tmp/server.log."""
    build(project)
    port = free_port()
    env = {
        "NODE_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # Nested and absent: the server must create it (like the default .data/pglite).
        "PGLITE_DIR": str(tmp / "data" / "pglite"),
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AUTH_RATE_LIMIT": "10000",
        "LOG_LEVEL": "warn",
        **(extra_env or {}),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "server.log"
    # A DATABASE_URL from the caller's shell must never leak in: PGlite unless the test sets one.
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["node", "dist/server.js"],
            cwd=project.dir,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(url=f"http://127.0.0.1:{port}", proc=proc, log=log, env=env)


def wait_for_health(server: Server, name: str, status: int = 200, timeout: float = 60) -> httpx.Response:
    """Polls /health until it answers `status`; fails if the server exits or takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            pytest.fail(f"{name} exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            answer = httpx.get(f"{server.url}/health", timeout=2)
            if answer.status_code == status:
                return answer
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: /health did not answer {status}:\n{server.log.read_text()[-3000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def serve(project: Project, tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start(project, tmp, extra_env)
    try:
        wait_for_health(server, project.name)
        yield server
    finally:
        server.stop()


def node_eval(project: Project, code: str, env: dict[str, str] | None = None) -> str:
    """Runs an ES module snippet in the project (so it resolves the project's packages)."""
    proc = run(["node", "--input-type=module", "-e", code], project.dir, env=env, timeout=120)
    require_ok(proc, "node script")
    return proc.stdout


ADMIN_SQL = """
import pg from 'pg';
const client = new pg.Client({ connectionString: process.env.ADMIN_URL });
await client.connect();
const result = await client.query(process.env.SQL);
console.log(JSON.stringify(result.rows ?? []));
await client.end();
"""


@pytest.fixture
def database_url(projects):
    """A fresh, empty database on BIMPL_TEST_DATABASE_URL's server, dropped afterwards."""
    base = os.environ.get("BIMPL_TEST_DATABASE_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CI is set but BIMPL_TEST_DATABASE_URL is not: the PostgreSQL tests must run in CI")
        pytest.skip("BIMPL_TEST_DATABASE_URL is not set")
    project = projects["library"]  # any project: only its `pg` package is used
    name = f"bimpl_{uuid.uuid4().hex[:12]}"
    sql = lambda statement: node_eval(project, ADMIN_SQL, env={"ADMIN_URL": base, "SQL": statement})  # noqa: E731
    sql(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(project, url: str, statement: str) -> list[dict]:
    return json.loads(node_eval(project, ADMIN_SQL, env={"ADMIN_URL": url, "SQL": statement}))
