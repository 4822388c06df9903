"""`bimpl run` end to end through the real CLI, with scripted models (no LLM)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from backend_implementor.verify.proc import free_port, port_open

BIMPL = [sys.executable, "-m", "backend_implementor"]


def script(tmp_path: Path, entries: list, name: str = "script.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def bimpl(*args, cwd=None, env=None, timeout=60):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*BIMPL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def tool(name, **arguments):
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("# demo\nold line\n")
    return ws


def run_records(ws: Path, pending: bool = False) -> tuple[str, list[dict]]:
    """The run's trajectory records; without `pending`, the markers written before each step's calls."""
    (run_dir,) = (ws / ".bimpl" / "runs").iterdir()
    records = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    return run_dir.name, [r for r in records if pending or r["type"] != "pending"]


def test_scripted_run_edits_files_and_reports(tmp_path, workspace):
    entries = [
        tool("write_file", path="src/hello.ts", content="export const x = 1;\n"),
        {"text": "thinking out loud, no tool call"},
        tool("read_file", path="README.md"),
        tool("edit_file", path="README.md", old_text="old line", new_text="new line"),
        tool("bash", command="cat src/hello.ts && echo done"),
        tool("finish", summary="wrote hello", deliverables={"api-endpoints": "none yet"}),
    ]
    result = bimpl(
        "run", "--model", f"scripted:{script(tmp_path, entries)}", "-w", str(workspace), "add hello"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "finished" in out and "wrote hello" in out
    assert "src/hello.ts" in out and "+1" in out
    assert "Deliverables" in out and "api-endpoints" in out and "missing" in out
    assert (workspace / "src" / "hello.ts").read_text() == "export const x = 1;\n"
    assert (workspace / "README.md").read_text() == "# demo\nnew line\n"
    _, records = run_records(workspace)
    assert [r["type"] for r in records] == ["start"] + ["step"] * 6 + ["end"]
    assert records[-1]["exit_status"] == "finished"
    bash_obs = records[5]["messages"][1]["content"]
    assert "export const x = 1;" in bash_obs and "done" in bash_obs


def test_json_summary(tmp_path, workspace):
    entries = [
        tool("write_file", path="test/a.test.ts", content="test('a', () => {});\n"),
        tool("finish", summary="ok"),
    ]
    result = bimpl(
        "run", "--json", "--model", f"scripted:{script(tmp_path, entries)}", "-w", str(workspace), "t"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "finished" and summary["steps"] == 2
    assert summary["files"] == [{"path": "test/a.test.ts", "status": "added", "added": 1, "removed": 0}]
    tests = next(d for d in summary["deliverables"] if d["key"] == "tests")
    assert tests["files"] == ["test/a.test.ts"]


def test_script_running_out_is_a_clear_exit(tmp_path, workspace):
    entries = [tool("bash", command="true")]
    result = bimpl("run", "--model", f"scripted:{script(tmp_path, entries)}", "-w", str(workspace), "t")
    assert result.returncode == 1
    assert "script_exhausted" in result.stdout
    assert "bimpl run --resume" in result.stdout


def test_step_limit_exit(tmp_path, workspace):
    entries = [tool("bash", command=f"echo {i}") for i in range(5)]
    result = bimpl(
        "run",
        "--max-steps",
        "2",
        "--model",
        f"scripted:{script(tmp_path, entries)}",
        "-w",
        str(workspace),
        "t",
    )
    assert (
        result.returncode == 1
        and "limits_exceeded" in result.stdout
        and "step limit reached (2 steps)" in result.stdout
    )


def test_secrets_never_reach_the_trajectory_or_the_shell(tmp_path, workspace):
    secret = "sk-test-SUPERSECRET-0123456789"
    entries = [
        tool("bash", command='echo "key=[$OPENAI_API_KEY] tok=[$GH_TOKEN]"; echo ' + secret),
        tool("finish", summary=f"the key was {secret}"),
    ]
    env = {"OPENAI_API_KEY": secret, "GH_TOKEN": "ghp_abcdefghijkl"}
    result = bimpl(
        "run", "--model", f"scripted:{script(tmp_path, entries)}", "-w", str(workspace), "t", env=env
    )
    assert result.returncode == 0, result.stderr
    run_id, records = run_records(workspace)
    observation = records[1]["messages"][1]["content"]
    assert "key=[] tok=[]" in observation  # scrubbed from the command's environment
    for file in (workspace / ".bimpl" / "runs" / run_id).iterdir():
        text = file.read_text() if file.suffix != ".gz" else ""
        assert secret not in text and "ghp_abcdefghijkl" not in text
    assert "[REDACTED]" in (workspace / ".bimpl" / "runs" / run_id / "trajectory.jsonl").read_text()


@contextlib.contextmanager
def background_run(script_path: Path, workspace: Path) -> Iterator[subprocess.Popen]:
    """`bimpl run` in a session of its own, for tests that kill it; its group is gone afterwards."""
    proc = subprocess.Popen(
        [*BIMPL, "run", "--model", f"scripted:{script_path}", "-w", str(workspace), "t"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_kill_9_mid_run_then_resume_tells_the_model_the_step_was_interrupted(tmp_path, workspace):
    entries = [
        tool("write_file", path="a.txt", content="a\n"),
        tool("bash", command="echo started >> log.txt; sleep 4; echo slow > slow.txt"),
        tool("write_file", path="b.txt", content="b\n"),
        tool("finish", summary="all written"),
    ]
    path = script(tmp_path, entries)

    with background_run(path, workspace) as proc:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = list((workspace / ".bimpl" / "runs").glob("*/trajectory.jsonl"))
            if runs and '"step": 1' in runs[0].read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never completed its first step")
        time.sleep(0.5)  # inside the slow bash step now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    run_id, records = run_records(workspace, pending=True)
    assert [(r["type"], r["step"]) for r in records[-2:]] == [("step", 1), ("pending", 2)]
    assert not (workspace / "b.txt").exists()

    result = bimpl("run", "--resume", run_id, "-w", str(workspace))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming at step 3" in result.stdout
    # The interrupted bash call is not run again: the model is told it may have partly run.
    assert (workspace / "log.txt").read_text() == "started\n" and not (workspace / "slow.txt").exists()
    assert (workspace / "a.txt").read_text() == "a\n" and (workspace / "b.txt").read_text() == "b\n"
    _, records = run_records(workspace)
    assert [r.get("step") for r in records if r["type"] == "step"] == [1, 2, 3, 4]
    (interrupted,) = [r for r in records if r.get("interrupted")]
    assert interrupted["step"] == 2
    assert interrupted["messages"][1]["content"].startswith("Interrupted: the run stopped while this call")
    assert records[-1] == {"type": "end", "exit_status": "finished", "message": "all written", "steps": 4}
    again = bimpl("run", "--resume", run_id, "-w", str(workspace))
    assert again.returncode == 2 and "already finished" in again.stderr


def test_kill_9_mid_run_stops_the_services_it_started(tmp_path, workspace):
    port = free_port()
    server = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    entries = [
        {
            "tool_calls": [
                {
                    "name": "service",
                    "arguments": {"action": "start", "name": "web", "command": server, "port": port},
                }
            ]
        },
        tool("bash", command="sleep 30"),
        tool("finish", summary="never reached"),
    ]
    with background_run(script(tmp_path, entries), workspace) as proc:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            assert time.monotonic() < deadline, "the service never started"
            assert proc.poll() is None, "bimpl ended before the service started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup code of bimpl's can run
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_open("127.0.0.1", port), "the dev server outlived bimpl"


def test_kill_9_mid_run_leaves_no_detached_process(tmp_path, workspace):
    from backend_implementor.tools.isolation import isolation

    if not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    mark = f"300.{os.getpid()}{int(time.time()) % 10000}"
    command = (
        f"setsid sleep {mark} & (setsid bash -c 'trap \"\" TERM HUP; sleep {mark}' &); "
        "echo detached > detached.txt; sleep 30"
    )
    entries = [tool("bash", command=command), tool("finish", summary="never reached")]
    with background_run(script(tmp_path, entries), workspace) as proc:
        deadline = time.monotonic() + 30
        while not (workspace / "detached.txt").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the command never ran"
            time.sleep(0.1)
        # the second sleeper is a grandchild that may not have reached exec yet
        while len(_sleepers(mark)) < 2:
            assert time.monotonic() < deadline, f"sleepers seen: {_sleepers(mark)}"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup code of bimpl's can run: the watchdog's job
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while _sleepers(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert _sleepers(mark) == [], "a setsid process outlived bimpl"


def _sleepers(mark: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat") as fh:
                zombie = fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if cmdline.startswith(b"sleep\0" + mark.encode()) and not zombie:
            found.append(entry)
    return found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-w", "{ws}", "--model", "scripted:x.yaml"], "no task given"),
        (["run", "-w", "{ws}", "task"], "no model: pass --model"),
        (["run", "-w", "{ws}/nope", "--model", "scripted:x", "task"], "no such directory"),
        (["run", "-w", "{ws}", "--agent", "ghost", "--model", "scripted:x", "t"], "no agent named 'ghost'"),
        (
            ["run", "-w", "{ws}", "--approve", "confirm", "--model", "scripted:x", "t"],
            "needs an interactive terminal",
        ),
        (
            ["run", "-w", "{ws}", "--sandbox", "docker", "--model", "scripted:x", "t"],
            "--sandbox must be 'none' or 'bwrap'",
        ),
        (["run", "-w", "{ws}", "--resume", "r1", "t"], "either a TASK or --resume"),
        (["run", "-w", "{ws}", "--resume", "r1"], "no run 'r1'"),
        (
            ["run", "-w", "{ws}", "--deny", "(", "--model", "scripted:x", "t"],
            "not a valid regular expression",
        ),
        (["agents", "show", "missing.md"], "no such agent definition file"),
    ],
)
def test_usage_errors_are_one_clear_line(workspace, args, message, monkeypatch):
    monkeypatch.delenv("BIMPL_MODEL", raising=False)
    result = bimpl(*[a.format(ws=workspace) for a in args], cwd=workspace)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("model", "variable"),
    [("openai/gpt-5", "OPENAI_API_KEY"), ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY")],
)
def test_a_missing_api_key_is_a_usage_error_before_any_run(workspace, model, variable):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [*BIMPL, "run", "--model", model, "-w", str(workspace), "add a health endpoint"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{model} needs an API key: set {variable}" in result.stderr
    assert "Traceback" not in result.stderr and "--resume" not in result.stdout + result.stderr
    assert not (workspace / ".bimpl").exists()


def test_bad_script_file_is_a_clear_error(tmp_path, workspace):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- tool_calls: [{arguments: {}}]\n")
    result = bimpl("run", "--model", f"scripted:{bad}", "-w", str(workspace), "t")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "bad.yaml" in result.stderr + result.stdout


def test_agents_show_our_sectioned_example():
    example = Path(__file__).resolve().parents[2] / "examples" / "agents" / "api-hardener.md"
    result = bimpl("agents", "show", str(example))
    assert result.returncode == 0, result.stderr
    assert "Tools (5): read_file, edit_file, write_file, bash, verify" in result.stdout
    assert "Deliverables (3)" in result.stdout and "#security" in result.stdout


def test_agents_show_seed_and_list():
    seed = Path(__file__).resolve().parents[3] / "shared" / "seed" / "backend-implementor-agent.md"
    if not seed.exists():
        pytest.skip("../shared is not beside the repo")
    result = bimpl("agents", "show", str(seed))
    assert result.returncode == 0, result.stderr
    assert "Tools (4)" in result.stdout and "write_file, read_file, bash, edit_file" in result.stdout
    assert "Deliverables (4)" in result.stdout
    assert "#typescript #node #express" in result.stdout
    listed = bimpl("agents", "list")
    assert listed.returncode == 0 and "backend-implementor" in listed.stdout


def test_finish_is_gated_on_verify_in_a_node_project(tmp_path, workspace):
    (workspace / "package.json").write_text(
        json.dumps({"name": "gated", "scripts": {"test": "node check.js"}})
    )
    (workspace / "check.js").write_text(
        "const fs = require('fs');\n"
        "if (!fs.existsSync('fixed.txt')) { console.error('expected fixed.txt'); process.exit(1); }\n"
    )
    entries = [
        tool("finish", summary="done too early"),
        tool("write_file", path="fixed.txt", content="ok\n"),
        tool("finish", summary="fixed and verified"),
    ]
    result = bimpl(
        "run", "--json", "--verify-stages", "test", "--model", f"scripted:{script(tmp_path, entries)}",
        "-w", str(workspace), "make the tests pass",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "finished" and summary["message"] == "fixed and verified"
    assert summary["verification"].startswith("verify: clean")
    _, records = run_records(workspace)
    refused = records[1]["messages"][1]["content"]
    assert (
        refused.startswith("finish refused") and "test: failed" in refused and "expected fixed.txt" in refused
    )


def test_verify_gate_budget_then_unverified_and_no_verify_flag(tmp_path, workspace):
    (workspace / "package.json").write_text(json.dumps({"name": "gated", "scripts": {"test": "exit 1"}}))
    entries = [tool("finish", summary="try")] * 3
    path = script(tmp_path, entries)
    args = [
        "run",
        "--json",
        "--verify-stages",
        "test",
        "--verify-retries",
        "1",
        "--model",
        f"scripted:{path}",
    ]
    result = bimpl(*args, "-w", str(workspace), "t")
    assert result.returncode == 1
    assert json.loads(result.stdout)["exit_status"] == "unverified"
    result = bimpl("run", "--json", "--no-verify", "--model", f"scripted:{path}", "-w", str(workspace), "t")
    assert result.returncode == 0 and json.loads(result.stdout)["verification"] is None


def test_confirm_mode_asks_on_a_terminal(tmp_path, workspace):
    import pty

    entries = [
        tool("write_file", path="yes.txt", content="approved\n"),
        tool("bash", command="echo no > no.txt"),
        tool("read_file", path="yes.txt"),  # reading is never asked about
        tool("finish", summary="done"),
    ]
    path = script(tmp_path, entries)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*BIMPL, "run", "--approve", "confirm", "--model", f"scripted:{path}", "-w", str(workspace), "t"],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    try:
        os.write(primary, b"y\n")
        os.write(primary, b"n\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(primary)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = out.decode()
    assert proc.returncode == 0, text
    assert text.count("Allow") == 2
    assert (workspace / "yes.txt").read_text() == "approved\n"
    assert not (workspace / "no.txt").exists()
    assert "The user declined this action" in text
