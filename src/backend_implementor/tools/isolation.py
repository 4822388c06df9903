"""Process isolation for the agent's commands without a sandbox: a PID and user namespace per command.

`unshare --user --pid --fork --kill-child --mount-proc` gives each bash call and service its own process
tree: it sees only its own processes in /proc (not bimpl, whose environment holds the API keys), cannot
signal anything outside, and when its first process ends — or is killed, or bimpl dies — the kernel kills
everything left in the namespace, however it detached (setsid, double fork, SIGTERM and SIGHUP ignored).
The user namespace is what makes this work unprivileged, and what keeps even root from unmounting the
namespace's /proc to look at the host's. Files and network stay shared: that is `--sandbox bwrap`'s job.

Where the kernel refuses user namespaces, commands run as plain process groups; bimpl then also adopts
orphans (`PR_SET_CHILD_SUBREAPER`) and kills what is left at the end of the run (processes.py).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

_NAMESPACES = ["--pid", "--fork", "--kill-child", "--mount-proc"]
# The namespace's pid 1: signals from inside its namespace do not reach a pid 1 without handlers (a
# `kill -9 $$` would do nothing), so the command runs as its child. It reaps orphans, reports a death by
# signal N as exit code 128 + N (the shell's convention: pid 1 cannot die of its own signal), and says
# on stderr when the command left processes behind (the kernel kills them as pid 1 exits): any live
# process in the namespace has an ancestor among pid 1's children, so a child still alive means one.
LEFT_BEHIND = "[bimpl-init: background processes stopped]"
_INIT = f"""
import os,sys
pid=os.fork()
if pid==0:
    try:
        os.execvp(sys.argv[1],sys.argv[1:])
    except OSError as e:
        sys.stderr.write(sys.argv[1]+': '+e.strerror+'\\n');os._exit(127)
while True:
    p,st=os.wait()
    if p==pid:
        break
try:
    while os.waitpid(-1,os.WNOHANG)[0]>0:
        pass
    sys.stderr.write('\\n{LEFT_BEHIND}\\n')
except ChildProcessError:
    pass
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128+os.WTERMSIG(st))
"""


@dataclass(frozen=True)
class Isolation:
    prefix: tuple[str, ...]  # prepended to each command's argv; empty when unavailable
    # (exit codes 129-159 then mean a death by signal: see _INIT)
    reason: str = ""  # why not, when unavailable

    @property
    def available(self) -> bool:
        return bool(self.prefix)

    def describe(self) -> str:
        if self.available:
            return "each command in its own PID and user namespace"
        return f"process groups only ({self.reason})"


@functools.cache
def isolation() -> Isolation:
    """What this machine allows, probed once per process."""
    unshare = shutil.which("unshare")
    if not unshare:
        return Isolation((), "util-linux's unshare is not installed")
    # --map-current-user keeps the uid commands see (npm behaves differently as root); util-linux older
    # than 2.38 lacks it, and root can then map itself as root.
    mappings = [["--map-current-user"]] + ([["--map-root-user"]] if os.getuid() == 0 else [])
    reason = ""
    for mapping in mappings:
        prefix = (unshare, "--user", *mapping, *_NAMESPACES, "--", sys.executable, "-I", "-S", "-c", _INIT)
        try:
            probe = subprocess.run(
                [*prefix, "true"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
            continue
        if probe.returncode == 0:
            return Isolation(prefix)
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
    return Isolation((), f"user namespaces are not available: {reason}")
