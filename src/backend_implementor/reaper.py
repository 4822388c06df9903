"""A watchdog that stops bimpl's process groups when bimpl itself dies, even by SIGKILL.

bimpl starts it once (processes.watch), in its own session, and tells it over a pipe which groups are
alive: "+ PGID STARTTIME" and "- PGID" lines. When the pipe reaches end of file (bimpl exited, however
it exited), every group still listed is sent SIGTERM, then SIGKILL after a grace period: a dev server
started by the agent or a backend booted by verify never outlives the bimpl that started it.

    python -m backend_implementor.reaper    (reads its instructions from stdin)
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from backend_implementor.processes import KILL_GRACE, group_alive, start_time


def still_ours(pgid: int, started: str) -> bool:
    # The kernel never hands out a pid that is still some group's id, so a live process with this pid
    # and another start time means our group is gone and the number was reused.
    now = start_time(pgid)
    return now is None or now == started


def reap(groups: dict[int, str]) -> None:
    """SIGTERM to every group still ours, then SIGKILL to those alive after one shared grace period."""
    targets = [g for g, started in groups.items() if still_ours(g, started) and _signal(g, signal.SIGTERM)]
    deadline = time.monotonic() + KILL_GRACE
    while (targets := [g for g in targets if group_alive(g)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in targets:
        _signal(pgid, signal.SIGKILL)


def _signal(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for bimpl must not end the watch early
    groups: dict[int, str] = {}
    for line in sys.stdin:
        parts = line.split()
        with contextlib.suppress(ValueError, IndexError):
            if parts[0] == "+":
                groups[int(parts[1])] = parts[2]
            elif parts[0] == "-":
                groups.pop(int(parts[1]), None)
    reap(groups)


if __name__ == "__main__":
    main()
