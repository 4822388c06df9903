"""The run's last line of defence: bimpl unreadable to its commands, orphans adopted and stopped."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import os, subprocess, sys, time
from backend_implementor.processes import guard_this_process, stop_adopted
guard_this_process()
mark = sys.argv[1]
# Each shape escapes its process group; without namespaces only adoption catches them.
for shape in ["setsid sleep {m} &", "(setsid bash -c 'trap \"\" TERM HUP; sleep {m}' &)",
              "(bash -c 'setsid sleep {m} & ' &)"]:
    subprocess.run(["bash", "-c", shape.format(m=mark)], start_new_session=True, check=True)
time.sleep(0.5)
print("environ readable by a child:",
      subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True).returncode == 0)
print("stopped", stop_adopted())
"""


def _running(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if token.encode() in fh.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_orphans_that_left_their_group_are_adopted_and_stopped() -> None:
    mark = f"300.{secrets.randbelow(10**6)}"
    done = subprocess.run([sys.executable, "-c", SCRIPT, mark], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "stopped 3" in done.stdout
    assert _running(f"sleep {mark}") == []


def _unprivileged_command() -> list[str]:
    """How to run the script as a user other than root (root reads every environment anyway)."""
    if os.geteuid() != 0:
        return [sys.executable]
    if shutil.which("runuser") is None:
        pytest.skip("needs runuser to switch to an unprivileged user")
    for python in ("/usr/bin/python3", "/usr/local/bin/python3"):  # the test's own may live under /root
        check = [python, "-c", "import sys; assert sys.version_info >= (3, 11)"]
        if os.path.exists(python) and subprocess.run(check).returncode == 0:
            return ["runuser", "-u", "nobody", "--", python]
    pytest.skip("no system Python >= 3.11 that the nobody user can run")


def test_a_guarded_process_environment_is_not_readable_by_its_own_user(tmp_path) -> None:
    import backend_implementor

    src = Path(backend_implementor.__file__).resolve().parents[1]
    mark = f"300.{secrets.randbelow(10**6)}"
    done = subprocess.run(
        [*_unprivileged_command(), "-c", SCRIPT, mark],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(src), "HOME": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    assert "environ readable by a child: False" in done.stdout
    assert _running(f"sleep {mark}") == []
