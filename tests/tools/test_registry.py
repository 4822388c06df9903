from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from tool_helpers import call

from backend_implementor.models.base import ToolSpec
from backend_implementor.tools import KNOWN_TOOLS, SandboxUnavailable, ToolContext, build_tools
from backend_implementor.tools import sandbox as sandbox_module


def test_known_tools_and_specs() -> None:
    assert set(KNOWN_TOOLS) == {
        "read_file",
        "write_file",
        "edit_file",
        "bash",
        "service",
        "scaffold",
        "verify",
    }
    for name, cls in KNOWN_TOOLS.items():
        spec = cls.spec()
        assert isinstance(spec, ToolSpec) and spec.name == name
        assert spec.openai()["function"]["parameters"]["type"] == "object"
        assert set(spec.parameters["required"]) <= set(spec.parameters["properties"])


def test_build_tools_in_order_and_bash_brings_service(ws: Path) -> None:
    ctx = ToolContext(workspace=ws)
    try:
        assert list(build_tools(ctx, ["write_file", "read_file"])) == ["write_file", "read_file"]
        assert list(build_tools(ctx, ["bash", "edit_file"])) == ["bash", "edit_file", "service"]
        assert list(build_tools(ctx, None)) == list(KNOWN_TOOLS) == list(build_tools(ctx, []))
    finally:
        ctx.close()


def test_unknown_tool_lists_the_known_ones(ws: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown tool\(s\): grep; known tools: read_file, write_file"):
        build_tools(ToolContext(workspace=ws), ["read_file", "grep"])


def test_unknown_sandbox_and_missing_workspace(ws: Path) -> None:
    with pytest.raises(ValueError, match="unknown sandbox 'docker'"):
        build_tools(ToolContext(workspace=ws, sandbox="docker"), ["bash"])
    with pytest.raises(ValueError, match="not a directory"):
        build_tools(ToolContext(workspace=ws / "missing"), ["read_file"])


def test_bwrap_missing_fails_clearly(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="needs bubblewrap, which is not installed"):
        build_tools(ToolContext(workspace=ws, sandbox="bwrap"), ["bash"])


def test_bwrap_unusable_fails_clearly(ws: Path, tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    (fake / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(SandboxUnavailable, match=r"cannot create a sandbox here .*No permissions"):
        build_tools(ToolContext(workspace=ws, sandbox="bwrap"), ["bash"])


def _bwrap_works() -> bool:
    try:
        sandbox_module.check_bwrap()
    except SandboxUnavailable:
        return False
    return True


needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None or not _bwrap_works(), reason="bubblewrap is not usable here"
)


@needs_bwrap
def test_bwrap_read_only_root_writable_workspace_loopback_only(ws: Path, tmp_path: Path) -> None:
    ctx = ToolContext(workspace=ws, env={"PATH": os.environ["PATH"]}, sandbox="bwrap")
    try:
        tools = build_tools(ctx, ["bash"])
        marker = Path("/etc/bimpl_sandbox_marker")
        in_tmp = tmp_path / "tmp_marker"  # /tmp is a private tmpfs: writable, but not the host's
        out = call(
            tools, "bash", command=f"touch {marker} 2>&1; touch {in_tmp} && touch inside && echo wrote"
        )
        assert "Read-only file system" in out and "wrote" in out
        assert not marker.exists() and not in_tmp.exists() and (ws / "inside").exists()
        # Only the loopback interface exists; it is up.
        out = call(tools, "bash", command="cat /proc/net/dev")
        interfaces = [line.split(":")[0].strip() for line in out.splitlines() if ":" in line]
        assert interfaces == ["lo"]
        # A service started in the sandbox is reachable from a later sandboxed bash call, not from the host.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = f"python3 -m http.server {port} --bind 127.0.0.1"
        assert call(
            tools, "service", action="start", name="web", command=command, port=port, timeout=20
        ).startswith("Started")
        probe = (
            f"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)\""
        )
        assert call(tools, "bash", command=probe).startswith("200")
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
        holder = ctx.sandbox_runner._holder
        assert holder is not None and holder.poll() is None
    finally:
        ctx.close()
    assert holder.poll() is not None  # the network holder ends with the run


@needs_bwrap
def test_bwrap_commands_see_no_outside_process_and_leave_none_behind(ws: Path) -> None:
    import secrets
    import subprocess
    import sys

    from tool_helpers import running_with

    holder = subprocess.Popen(  # stands in for bimpl: an API key in its environment
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "OPENAI_API_KEY": "sk-MARKMARKMARKMARKMARKMARK"},
    )
    ctx = ToolContext(workspace=ws, env={"PATH": os.environ["PATH"]}, sandbox="bwrap")
    try:
        tools = build_tools(ctx, ["bash"])
        for command in [
            f"cat /proc/{holder.pid}/environ",
            f"umount -l /proc; mount -t proc proc /tmp; cat /proc/{holder.pid}/environ /tmp/{holder.pid}/environ",
            "ls /proc | grep -c '^[0-9]'",
        ]:
            out = call(tools, "bash", command=command)
            assert "MARKMARK" not in out
        assert int(out.splitlines()[0]) < 10
        mark = f"300.{secrets.randbelow(10**6)}"
        for shape in ["setsid sleep {m} &", "(setsid bash -c 'trap \"\" TERM HUP; sleep {m}' &)"]:
            call(tools, "bash", command=shape.format(m=mark) + " echo started")
            assert running_with(f"sleep {mark}") == []
    finally:
        ctx.close()
        holder.kill()
        holder.wait()


NON_ROOT_SCRIPT = """
import socket, sys
from pathlib import Path
from backend_implementor.tools import ToolContext, build_tools
ctx = ToolContext(workspace=Path(sys.argv[1]), sandbox="bwrap")
try:
    tools = build_tools(ctx, ["bash"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = f"python3 -m http.server {port} --bind 127.0.0.1"
    print(tools["service"]({"action": "start", "name": "web", "command": command, "port": port, "timeout": 20}))
    probe = f"python3 -c \\"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)\\""
    print(tools["bash"]({"command": probe + "; cat /proc/net/dev; touch made_inside; id -u"}))
finally:
    ctx.close()
"""


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to switch users")
def test_bwrap_shared_loopback_works_unprivileged() -> None:
    """Unprivileged bwrap nests user namespaces; bash and services must still share one loopback."""
    import subprocess
    import tempfile

    import backend_implementor

    src = Path(backend_implementor.__file__).resolve().parents[1]
    # The test's own interpreter may live under /root (pyenv); nobody needs a system Python >= 3.11.
    python = next(
        (
            p
            for p in ("/usr/bin/python3", "/usr/local/bin/python3")
            if os.path.exists(p)
            and subprocess.run([p, "-c", "import sys; assert sys.version_info >= (3, 11)"]).returncode == 0
        ),
        None,
    )
    if python is None:
        pytest.skip("no system Python >= 3.11 that the nobody user can run")
    workspace = Path(tempfile.mkdtemp(prefix="bimpl-nobody-"))
    try:
        workspace.chmod(0o777)
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", python, "-c", NON_ROOT_SCRIPT, str(workspace)],
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(src), "HOME": str(workspace)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Started 'web'" in done.stdout and "\n200\n" in done.stdout
        assert "eth" not in done.stdout and "lo:" in done.stdout
        nobody = (workspace / "made_inside").stat().st_uid
        assert nobody != 0
        assert done.stdout.rstrip().endswith(f"\n{nobody}\n[exit code 0]")  # not root inside either
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
