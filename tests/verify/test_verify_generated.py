"""End to end: `bimpl new examples/NAME.yaml`, then `bimpl verify` on it must come out clean — probes, and
the contract fuzzed with every schemathesis check at 200 examples per operation (what the server does is
what its document says).

Needs node, npm and the npm registry. With $BIMPL_NPM_CACHE_DIR set (scripts/test.sh sets it) the project
gets a symlink to the node_modules tests/generate installed there (same cache key scheme, same file lock),
so verify's install stage is skipped; without it verify runs `npm ci` itself (~20 s).
The generated vitest suite is left out here (it takes ~2 minutes and tests/generate owns it)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend_implementor.cli import app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="needs node+npm"),
]


def shared_node_modules(name: str, lock: bytes, package_json: bytes) -> Path | None:
    """The node_modules of tests/generate's cache (its key: the lockfile without the project name)."""
    base = os.environ.get("BIMPL_NPM_CACHE_DIR")
    if not base:
        return None
    key = hashlib.sha256(lock.replace(f'"{name}"'.encode(), b'"x"')).hexdigest()[:16]
    target = Path(base) / f"express-{key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(base) / f".{key}.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        if not (target / "node_modules" / ".package-lock.json").exists():
            staging = Path(base) / f".staging-{key}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            (staging / "package.json").write_bytes(package_json)
            (staging / "package-lock.json").write_bytes(lock)
            cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
            proc = subprocess.run(cmd, cwd=staging, capture_output=True, text=True, timeout=900, check=False)
            assert proc.returncode == 0, proc.stderr[-3000:]
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target / "node_modules"


EXAMPLES = ("blog", "bookclub", "inventory", "library", "notes", "projects", "shop")


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_example_verifies_clean(name, tmp_path):
    runner = CliRunner()
    proj = tmp_path / name
    made = runner.invoke(app, ["new", str(ROOT / "examples" / f"{name}.yaml"), "-o", str(proj)])
    assert made.exit_code == 0, made.output
    shared = shared_node_modules(
        name, (proj / "package-lock.json").read_bytes(), (proj / "package.json").read_bytes()
    )
    if shared is not None:
        (proj / "node_modules").symlink_to(shared, target_is_directory=True)
    # The developer's .env points at their own database: verify must still use a fresh one of its own.
    (proj / ".env").write_text("DATABASE_URL=postgresql://dev@127.0.0.1:1/devdata\n")
    out = tmp_path / "verify"
    result = runner.invoke(
        app,
        ["verify", str(proj), "--stages", "install,build,boot,contract,security,static",
         "--fuzz-time", "60", "--contract-examples", "200", "--contract-checks", "all",
         "--format", "json", "--out", str(out)],
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert report["project"]["bimpl_generated"] is True
    if shared is None:
        assert stages["install"]["status"] == "passed", stages["install"]
        assert stages["install"]["detail"].startswith("npm ci --ignore-scripts")
    else:
        assert stages["install"]["detail"].startswith("node_modules is a symlink")
    assert (stages["build"]["status"], stages["boot"]["status"]) == ("passed", "passed"), report["stages"]
    assert "GET /health -> 200" in stages["boot"]["detail"]  # ready means the database answers
    assert report["contract"]["failures"] == [], report["contract"]
    assert stages["contract"]["status"] == "passed", report["contract"]
    has_users = name != "notes"
    assert report["contract"]["authenticated"] is has_users  # registered + logged in by bimpl's convention
    assert report["findings"] == []
    assert result.exit_code == 0, result.output
    # verify used its own PGlite directory, not the project's .data/.
    assert (out / "pglite").is_dir() and not (proj / ".data").exists()
    if name != "library":
        return
    # The four deliverables are filled from the generated project.
    d = report["deliverables"]
    assert {"method": "POST", "path": "/auth/login"}.items() <= next(
        e for e in d["endpoints"]["items"] if e["path"] == "/auth/login"
    ).items()
    assert {t["name"] for t in d["schema"]["tables"]} >= {"users", "authors", "books", "loans"}
    assert any(i["name"] == "books_author_title_id_idx" for i in d["schema"]["indexes"])
    assert d["middleware"]["items"], d["middleware"]
