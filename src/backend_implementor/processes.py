"""Process groups and log tails, shared by the agent's tools (bash, service, sandbox) and by verify.

Every command bimpl starts runs in its own process group (start_new_session=True), so one kill reaches
npm, node and whatever they spawned.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


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
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and (fields[0] != b"Z" or _threads_alive(entry)):
            return True
    return False


def _threads_alive(pid: str) -> bool:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :].split()[0] != b"Z":
            return True
    return False


def kill_group(pgid: int, proc: subprocess.Popen | None = None, grace: float = KILL_GRACE) -> bool:
    """SIGTERM the group, then SIGKILL whatever is left after `grace` seconds. True if anything was there.

    `proc` (the group leader we started) is reaped along the way so it does not linger as a zombie.
    """
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
