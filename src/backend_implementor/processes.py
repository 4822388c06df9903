"""Process groups and log tails, shared by the agent's tools (bash, service, sandbox) and by verify.

Every command bimpl starts runs in its own process group (start_new_session=True), so one kill reaches
npm, node and whatever they spawned. Each group is also `watch`ed: a watchdog process (reaper.py) stops
the groups still running if bimpl dies without stopping them itself (SIGKILL, a crash).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


class _Watchdog:
    """The client end of reaper.py: started on first use, one per bimpl process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def send(self, line: str) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                if line.startswith("-"):
                    return  # nothing to forget in a watchdog that is not running
                try:
                    self.proc = subprocess.Popen(
                        [sys.executable, "-m", "backend_implementor.reaper"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,  # outlives a kill of bimpl's own process group
                        text=True,
                    )
                except OSError:
                    return  # no watchdog: groups are still stopped on every normal exit
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()


_watchdog = _Watchdog()


def watch(proc: subprocess.Popen) -> None:
    """Have the watchdog stop `proc`'s process group (it must lead one) should bimpl die first."""
    start = start_time(proc.pid)
    if start is not None:
        _watchdog.send(f"+ {proc.pid} {start}")


def unwatch(pgid: int) -> None:
    _watchdog.send(f"- {pgid}")


def group_alive(pgid: int) -> bool:
    """Whether any live process is still in process group `pgid`.

    Zombies do not count: orphans are reparented to init, and an init that reaps slowly (or never, in
    some containers) would otherwise make every kill wait for the full grace period. A zombie *leader*
    whose other threads still run does count: those threads keep its files, listening sockets included,
    open (a multi-threaded server's main thread is often the first to finish exiting).
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no procfs: trust killpg
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(f"/proc/{entry}/stat")
        if fields and int(fields[2]) == pgid and (fields[0] != b"Z" or _threads_alive(entry)):
            return True
    return False


def _threads_alive(pid: str) -> bool:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any((f := _stat_fields(f"/proc/{pid}/task/{tid}/stat")) and f[0] != b"Z" for tid in tids)


def _stat_fields(path: str) -> list[bytes] | None:
    """The fields of a /proc/.../stat file after the command name: state, ppid, pgrp, ... (None: gone)."""
    try:
        with open(path, "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """A process's start time in clock ticks (stat field 22): tells it from a later one that reused its pid."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    return fields[19].decode() if fields else None


def kill_group(pgid: int, proc: subprocess.Popen | None = None, grace: float = KILL_GRACE) -> bool:
    """SIGTERM the group, then SIGKILL whatever is left after `grace` seconds. True if anything was there.

    `proc` (the group leader we started) is reaped along the way so it does not linger as a zombie.
    """
    try:
        return _kill_group(pgid, proc, grace)
    finally:
        unwatch(pgid)


def _kill_group(pgid: int, proc: subprocess.Popen | None, grace: float) -> bool:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_alive(pgid):
            return True
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # SIGKILL cannot be ignored; wait briefly for the kernel to tear the processes down.
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def guard_this_process() -> None:
    """For `bimpl run`: make bimpl's own memory and environment (the API keys) unreadable to processes
    of the same user (PR_SET_DUMPABLE 0 keeps /proc/PID/environ and ptrace to root), and adopt orphans
    (PR_SET_CHILD_SUBREAPER) so that a command's setsid'd or double-forked children become bimpl's
    children, which `stop_adopted` ends with the run. Best effort: no-ops where prctl is missing."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        fields = _stat_fields(f"/proc/{entry}/stat") if entry.isdigit() else None
        if fields and fields[0] != b"Z" and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def stop_adopted(rounds: int = 20) -> int:
    """SIGKILL every child of this process but the watchdog, round after round (a killed child's own
    children are adopted next), and reap them. The end of a run, after services are stopped: what is
    left escaped its process group. Returns how many were stopped."""
    keep = {_watchdog.proc.pid} if _watchdog.proc is not None else set()
    stopped = 0
    for _ in range(rounds):
        kids = [pid for pid in _children(os.getpid()) if pid not in keep]
        if not kids:
            break
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        stopped += len(kids)
    with contextlib.suppress(ChildProcessError):  # adopted zombies, exited on their own
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    return stopped


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def clean_output(text: str) -> str:
    """What a terminal would finally show: no colour codes, and progress lines redrawn with `\r` reduced
    to their last state. Both only cost the model tokens."""
    text = _ANSI.sub("", text)
    if "\r" in text:
        text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))
    return text


def tail_lines(path: os.PathLike | str, lines: int, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a file, reading at most `max_bytes` from its end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = clean_output(data.decode("utf-8", errors="replace"))
    parts = text.splitlines()
    if size > max_bytes and parts:
        parts = parts[1:]  # the first line read is probably partial
    return "\n".join(parts[-lines:]) if lines > 0 else ""
