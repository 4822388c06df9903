"""Helpers shared by the tool tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import os

from backend_implementor.tools import ToolError


def call(tools, name: str, /, **arguments) -> str:
    """Run a tool and return the observation; ToolError texts come back prefixed like the loop shows them."""
    try:
        return tools[name](arguments)
    except ToolError as exc:
        return f"Error: {exc}"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def running_with(token: str) -> list[int]:
    """Live processes whose command line contains `token`. Commands run in their own PID namespace,
    so the pids they print ($$, $!) mean nothing out here: tests mark their processes instead."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if token in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found
