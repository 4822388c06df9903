from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tool_helpers import call, group_members, pid_alive, running_with

from backend_implementor.tools import ToolContext, build_tools
from backend_implementor.verify.proc import free_port, port_open


def http_server(port: int) -> str:
    return f"{sys.executable} -m http.server {port} --bind 127.0.0.1"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def svc_ctx(ws: Path, run_dir: Path):
    ctx = ToolContext(workspace=ws, env={"PATH": "/usr/bin:/bin"}, run_dir=run_dir)
    yield ctx
    ctx.close()


@pytest.fixture
def svc(svc_ctx):
    return build_tools(svc_ctx, ["bash"])


def test_start_waits_for_port_then_logs_and_stop(ws: Path, run_dir: Path, svc) -> None:
    (ws / "index.html").write_text("hello from the workspace\n")
    port = free_port()
    out = call(svc, "service", action="start", name="web", command=http_server(port), port=port, timeout=20)
    assert out.startswith("Started 'web'") and f"port {port} is accepting connections" in out
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as response:
        assert response.read() == b"hello from the workspace\n"

    status = call(svc, "service", action="status", name="web")
    assert status.startswith("web: running") and f"port {port} open" in status
    logs = call(svc, "service", action="logs", name="web", lines=5)
    assert '"GET /index.html HTTP/1.1" 200' in logs
    assert (run_dir / "services" / "web.log").exists()

    pid = int(out.split("pid ")[1].split(")")[0])
    assert call(svc, "service", action="stop", name="web").startswith("Stopped 'web'")
    assert not port_open("127.0.0.1", port)
    assert not pid_alive(pid) and group_members(pid) == []
    assert "no service named 'web'" in call(svc, "service", action="logs", name="web")


def test_a_service_that_detaches_with_setsid_runs_and_then_stops(svc) -> None:
    # setsid moves the server out of the process group; the service must still track and stop it.
    port = free_port()
    command = f"setsid {http_server(port)}"
    out = call(svc, "service", action="start", name="web", command=command, port=port, timeout=20)
    assert out.startswith("Started 'web'") and f"port {port} is accepting connections" in out
    assert call(svc, "service", action="status", name="web").startswith("web: running")
    assert call(svc, "service", action="stop", name="web").startswith("Stopped 'web'")
    assert not port_open("127.0.0.1", port) and running_with(http_server(port)) == []


def test_early_exit_is_reported_with_log_tail(svc) -> None:
    out = call(
        svc, "service", action="start", name="bad", command="echo cannot bind; exit 4", port=free_port()
    )
    assert out.startswith("Error: service 'bad' exited with code 4") and "cannot bind" in out
    assert call(svc, "service", action="status") == "No services started."


def wait_for_log(svc, name: str, text: str) -> str:
    """The service's log once it contains `text` (a loaded machine may take a moment to print)."""
    deadline = time.monotonic() + 30
    while True:
        logs = call(svc, "service", action="logs", name=name)
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


def test_port_that_never_opens_times_out_but_keeps_running(svc) -> None:
    port = free_port()
    command = "echo waiting; sleep 300"
    out = call(svc, "service", action="start", name="quiet", command=command, port=port, timeout=1)
    assert out.startswith("Error: service 'quiet'") and "did not accept connections within 1s" in out
    assert call(svc, "service", action="status", name="quiet").startswith("quiet: running")
    assert "waiting" in wait_for_log(svc, "quiet", "waiting")


def test_start_without_port_watches_for_a_crash(svc) -> None:
    out = call(svc, "service", action="start", name="worker", command="echo up; sleep 300")
    assert out.startswith("Started 'worker'") and "no port given" in out
    assert "up" in wait_for_log(svc, "worker", "up")


def test_refusals(svc) -> None:
    port = free_port()
    call(svc, "service", action="start", name="web", command=http_server(port), port=port, timeout=20)
    assert "already running" in call(svc, "service", action="start", name="web", command="true")
    out = call(svc, "service", action="start", name="web2", command=http_server(port), port=port)
    assert "port" in out and "already in use by service 'web'" in out
    assert "name must be" in call(svc, "service", action="start", name="../x", command="true")
    assert "needs a command" in call(svc, "service", action="start", name="x")
    assert "needs a service name" in call(svc, "service", action="stop")
    assert "unknown action" in call(svc, "service", action="restart", name="web")
    assert "lines must be" in call(svc, "service", action="logs", name="web", lines=0)


def test_close_stops_every_service_including_children(ws: Path) -> None:
    ctx = ToolContext(workspace=ws, env={"PATH": "/usr/bin:/bin"})
    tools = build_tools(ctx, ["bash"])
    ports = [free_port(), free_port()]
    # `bash -c` starting a child the way `npm run dev` starts node: the child must die too.
    for name, port in zip(["a", "b"], ports, strict=True):
        command = f"{http_server(port)} & wait"
        assert call(
            tools, "service", action="start", name=name, command=command, port=port, timeout=20
        ).startswith("Started")
    assert all(running_with(http_server(p)) for p in ports)
    log_dir = ctx.services._tmp_dir
    assert log_dir is not None and log_dir.exists()
    ctx.close()
    assert not any(port_open("127.0.0.1", p) for p in ports)
    assert not any(running_with(http_server(p)) for p in ports)
    assert not log_dir.exists()
    ctx.close()  # idempotent
