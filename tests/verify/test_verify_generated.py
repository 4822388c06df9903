"""End to end: `bimpl new examples/library.yaml`, then `bimpl verify` on it must come out clean.

Needs node, npm and the npm registry (npm ci of the generated lockfile, ~20 s with a warm npm cache).
The generated vitest suite is left out here (it takes ~2 minutes and tests/generate owns it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend_implementor.cli import app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="needs node+npm"),
]


def test_generated_library_verifies_clean(tmp_path):
    runner = CliRunner()
    proj = tmp_path / "library"
    made = runner.invoke(app, ["new", str(ROOT / "examples" / "library.yaml"), "-o", str(proj)])
    assert made.exit_code == 0, made.output
    out = tmp_path / "verify"
    result = runner.invoke(
        app,
        ["verify", str(proj), "--stages", "install,build,boot,contract,security,static", "--fuzz-time", "5",
         "--format", "json", "--out", str(out)],
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert report["project"]["bimpl_generated"] is True
    assert stages["install"]["status"] == "passed", stages["install"]
    assert stages["install"]["detail"].startswith("npm ci --ignore-scripts")
    assert (stages["build"]["status"], stages["boot"]["status"]) == ("passed", "passed"), report["stages"]
    assert stages["contract"]["status"] == "passed", report["contract"]
    assert report["contract"]["authenticated"] is True  # registered + logged in by bimpl's convention
    assert report["findings"] == []
    assert result.exit_code == 0, result.output
    # The four deliverables are filled from the generated project.
    d = report["deliverables"]
    assert {"method": "POST", "path": "/auth/login"}.items() <= next(
        e for e in d["endpoints"]["items"] if e["path"] == "/auth/login"
    ).items()
    assert {t["name"] for t in d["schema"]["tables"]} >= {"users", "authors", "books", "loans"}
    assert any(i["name"] == "books_title_idx" for i in d["schema"]["indexes"])
    assert d["middleware"]["items"], d["middleware"]
    # verify used its own PGlite directory, not the project's .data/.
    assert (out / "pglite").is_dir() and not (proj / ".data").exists()
