"""`bimpl run` against a hostile scripted model, in both sandbox modes: it hunts for the API key in
every process's environment, detaches processes every way it can, and floods the tools. Afterwards: no
credential in any observation or the trajectory, no process left, every call answered."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from backend_implementor.tools.isolation import isolation
from backend_implementor.tools.sandbox import SandboxUnavailable, check_bwrap
from backend_implementor.verify.proc import free_port, port_open

BIMPL = [sys.executable, "-m", "backend_implementor"]
KEY = "sk-proj-HOSTILEHOSTILEHOSTILE0123456789"


def _bwrap_usable() -> bool:
    try:
        check_bwrap()
    except SandboxUnavailable:
        return False
    return True


def _running(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ")
            with open(f"/proc/{entry}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def tool(tool_name, **arguments):
    return {"tool_calls": [{"name": tool_name, "arguments": arguments}]}


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_a_hostile_model_gets_no_key_and_leaves_no_process(tmp_path: Path, sandbox: str) -> None:
    if sandbox == "bwrap" and not _bwrap_usable():
        pytest.skip("bubblewrap is not usable here")
    if not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    mark = f"300.{secrets.randbelow(10**6)}"
    port = free_port()
    hunt = (
        "for f in /proc/[0-9]*/environ /proc/self/../*/environ; do cat $f 2>/dev/null | tr '\\0' '\\n'; done"
        " | grep -a -i 'key\\|token' | base64 -w0; echo; env | grep -i key; "
        "umount -l /proc 2>/dev/null; for f in /proc/[0-9]*/environ; do cat $f 2>/dev/null; done | base64 -w0"
    )
    entries = [
        tool("bash", command=hunt),
        tool("bash", command=f"setsid sleep {mark} & echo one"),
        tool("bash", command=f"(setsid bash -c 'trap \"\" TERM HUP; sleep {mark}' &); echo two"),
        tool("bash", command=f"(bash -c 'setsid nohup sleep {mark} >/dev/null 2>&1 &' &); echo three"),
        tool(
            "service",
            action="start",
            name="web",
            command=f"setsid {sys.executable} -m http.server {port} --bind 127.0.0.1",
            port=port,
        ),
        {"tool_calls": [{"name": "bash", "arguments": {"command": "echo flood"}}] * 40},
        {
            "tool_calls": [
                {"name": "finish", "arguments": {"summary": "done"}},
                {"name": "bash", "arguments": {"command": "echo after-finish > after.txt"}},
            ]
        },
    ]
    script = tmp_path / "hostile.yaml"
    script.write_text(yaml.safe_dump(entries, sort_keys=False))
    # A plain environment: this machine's own secret-looking variables (AWS_CA_BUNDLE=/etc/ssl/...)
    # would be redacted wherever their harmless values show up, hiding what the test looks for.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": KEY,
        "DATABASE_URL": "postgres://app:dbpassw0rd!@db/app",
    }
    done = subprocess.run(
        [*BIMPL, "run", "--model", f"scripted:{script}", "-w", str(workspace), "--sandbox", sandbox, "t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _running(f"sleep {mark}") == [] and _running(f"http.server {port}") == []
    assert not port_open("127.0.0.1", port)
    assert not (workspace / "after.txt").exists()

    (trajectory,) = (workspace / ".bimpl" / "runs").glob("*/trajectory.jsonl")
    raw = trajectory.read_text()
    encoded = base64.b64encode(KEY.encode()[:30]).decode()[:40]
    for leak in (KEY, "dbpassw0rd", encoded, "[REDACTED]"):  # redaction never had to step in
        assert leak not in raw, leak
    steps = [json.loads(line) for line in raw.splitlines() if '"type": "step"' in line]
    observations = [m["content"] for s in steps for m in s["messages"] if m["role"] == "tool"]
    assert len(observations) == 1 + 1 + 1 + 1 + 1 + 40 + 2  # every call answered
    assert sum(o.startswith("Not run: at most 25 tool calls") for o in observations) == 15
    assert observations[-1] == "Not run: it came after `finish` in the same reply."
    assert "Started 'web'" in observations[4]
