"""run_cmd's `cancel`: a command running in a worker thread is stopped, with its whole process group, when
another thread sets the event (Ctrl-C only ever reaches the main thread)."""

from __future__ import annotations

import threading
from pathlib import Path

from backend_implementor.processes import group_alive
from backend_implementor.verify.proc import run_cmd


def test_cancel_kills_the_group_and_says_so(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    res = run_cmd(
        f"echo $$ > {pid_file}; sleep 60 & sleep 60; wait",
        cwd=tmp_path,
        log_path=tmp_path / "log",
        timeout_s=120,
        cancel=cancel,
    )
    assert res.error == "cancelled" and res.returncode is None and not res.ok
    assert res.duration_s < 60  # it did not wait for the command to finish
    assert not group_alive(int(pid_file.read_text()))


def test_without_cancel_the_command_runs_to_its_exit_code(tmp_path: Path) -> None:
    res = run_cmd(
        "echo hi; exit 3", cwd=tmp_path, log_path=tmp_path / "log", timeout_s=30, cancel=threading.Event()
    )
    assert res.returncode == 3 and res.error == "" and "hi" in res.tail()
    res = run_cmd("sleep 30", cwd=tmp_path, log_path=tmp_path / "log", timeout_s=0.3)
    assert res.timed_out and res.returncode is None
