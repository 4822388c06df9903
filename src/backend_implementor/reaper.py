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

GRACE = 2.0


def leader_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a process from a later one that
    reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def still_ours(pgid: int, start_time: str) -> bool:
    # The kernel never hands out a pid that is still some group's id, so a live process with this pid
    # and another start time means our group is gone and the number was reused.
    now = leader_start_time(pgid)
    return now is None or now == start_time


def reap(groups: dict[int, str]) -> None:
    targets = [g for g, start in groups.items() if still_ours(g, start)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pgid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
                alive.append(pgid)
        if not alive or sig == signal.SIGKILL:
            return
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline:
            remaining = []
            for pgid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, 0)
                    remaining.append(pgid)
            if not remaining:
                return
            time.sleep(0.05)
        targets = alive


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
