"""The product's whole loop with no LLM: a scripted agent writes a spec, scaffolds, builds, and may only
finish once `bimpl verify` passes on what it built."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "scripted" / "todo-api.yaml"


@pytest.mark.slow
def test_scripted_agent_builds_a_verified_api(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "backend_implementor", "run", "--json", "--model", f"scripted:{SCRIPT}",
         "-w", str(ws), "build a todo API"],
        capture_output=True, text=True, timeout=1200, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "finished" and summary["steps"] == 5
    assert summary["verification"].startswith("verify: clean"), summary["verification"]
    assert "- install: skipped — node_modules present" in summary["verification"]  # the agent installed
    for stage in ("build", "test", "boot", "contract", "security", "static"):
        assert f"- {stage}: passed" in summary["verification"]
    produced = {d["key"]: d["files"] for d in summary["deliverables"]}
    assert "src/resources/items.ts" in produced["api-endpoints"]
    assert "drizzle/0000_init.sql" in produced["database-schemas"]
    assert any(f.startswith("src/middleware/") for f in produced["middleware"])
    assert "test/items.test.ts" in produced["tests"]
    report = json.loads(next((ws / ".bimpl" / "runs").glob("*/verify/report.json")).read_text())
    assert report["status"] == "clean" and report["deliverables"]["tests"]["failed"] == 0
