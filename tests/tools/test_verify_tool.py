"""The agent's `verify` tool: argument checks and the digest the model reads."""

import json

import pytest

from backend_implementor.tools import ToolContext, ToolError, build_tools
from backend_implementor.tools.verify import digest
from backend_implementor.verify.findings import Evidence, Finding
from backend_implementor.verify.report import Report, StageResult


def test_digest_puts_the_verdict_first_and_only_what_needs_fixing():
    report = Report(mode="project", target="/p", tool_version="0", started_at="now", duration_s=12.4)
    report.stages = [
        StageResult("build", "passed", 3.0),
        StageResult(
            "test",
            "failed",
            5.0,
            detail="3 passed, 1 failed, 0 skipped",
            log_tail="x\nAssertionError: 500 != 201",
        ),
    ]
    report.tests = {
        "failures": [
            {"name": "books › creates", "file": "test/books.test.ts", "message": "expected 201\n got 500"}
        ]
    }
    report.findings = [
        Finding("sqli-query", 89, "SQL injection in query parameter 'q'", "critical", "use parameterised queries",
                Evidence(request="GET /items?q='", response="500 syntax error at or near")),
        Finding("security-headers", 693, "missing security headers", "low", "use helmet()"),
    ]  # fmt: skip
    report.out_dir = "/p/.bimpl/verify"
    text = digest(report)
    lines = text.splitlines()
    assert lines[0] == "verify: failed (exit 1) in 12 s"
    assert (
        "- test: failed — 3 passed, 1 failed, 0 skipped" in text and "    AssertionError: 500 != 201" in text
    )
    assert "- test/books.test.ts: books › creates: expected 201 got 500" in text
    assert text.index("CWE-89") < text.index("CWE-693")  # most severe first
    assert "    request: GET /items?q='" in text and "    fix: use parameterised queries" in text
    assert lines[-1] == "Full report: /p/.bimpl/verify/report.md"


def test_verify_tool_rejects_bad_stage_and_non_project(tmp_path):
    ctx = ToolContext(workspace=tmp_path)
    tool = build_tools(ctx, ["verify"])["verify"]
    with pytest.raises(ToolError, match="unknown stage 'lint'"):
        tool({"stages": "lint"})
    with pytest.raises(ToolError, match="not a Node project folder"):
        tool({"path": "../elsewhere"})
    with pytest.raises(ToolError, match=r"verify could not run: .*package\.json"):
        tool({})


def test_verify_tool_runs_a_project_test_stage(tmp_path):
    (tmp_path / "package.json").write_text(
        json.dumps({"name": "p", "scripts": {"test": "echo boom; exit 1"}})
    )
    ctx = ToolContext(workspace=tmp_path, run_dir=tmp_path / ".bimpl" / "runs" / "r")
    out = build_tools(ctx, ["verify"])["verify"]({"stages": "test"})
    assert out.startswith("verify: failed (exit 1)") and "- test: failed" in out and "boom" in out
    assert (tmp_path / ".bimpl" / "runs" / "r" / "verify" / "report.json").is_file()


def test_project_code_run_by_verify_never_sees_api_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-must-not-leak-0123456789")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    script = "echo key=[$OPENAI_API_KEY] setting=[$HARMLESS_SETTING]; exit 1"
    (tmp_path / "package.json").write_text(json.dumps({"name": "p", "scripts": {"test": script}}))
    ctx = ToolContext(workspace=tmp_path, run_dir=tmp_path / ".bimpl" / "runs" / "r")
    out = build_tools(ctx, ["verify"])["verify"]({"stages": "test"})
    assert "key=[] setting=[visible]" in out


def test_project_commands_run_by_verify_are_confined_like_bash(tmp_path):
    import os
    import secrets
    import subprocess
    import sys

    from tool_helpers import running_with

    from backend_implementor.tools.isolation import isolation

    if not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    holder = subprocess.Popen(  # stands in for bimpl, with a key in its environment
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "OPENAI_API_KEY": "sk-MARKMARKMARKMARKMARKMARK"},
    )
    mark = f"300.{secrets.randbelow(10**6)}"
    script = f"setsid sleep {mark} & cat /proc/{holder.pid}/environ; ls /proc | grep -c '^[0-9]'; exit 1"
    (tmp_path / "package.json").write_text(json.dumps({"name": "p", "scripts": {"test": script}}))
    ctx = ToolContext(workspace=tmp_path, run_dir=tmp_path / ".bimpl" / "runs" / "r")
    try:
        out = build_tools(ctx, ["verify"])["verify"]({"stages": "test"})
    finally:
        holder.kill()
        holder.wait()
    assert "- test: failed" in out and "MARKMARK" not in out and "No such file" in out
    assert running_with(f"sleep {mark}") == []
