"""Optional bubblewrap sandbox for bash and services: read-only root, writable workspace, loopback only.

Each command runs in its own bwrap (fresh /tmp tmpfs, its own mounts), but all of them share one network
namespace that has only `lo`: bwrap's `--unshare-net` gives each call a private loopback, which would make
a dev server started with `service` unreachable from a later `bash` call's `curl`. So a small holder
process (`bwrap --unshare-net ... sleep`) owns the namespace for the whole run, and each command enters it
with setns(2) before starting its own bwrap without `--unshare-net`. The holder ends with the run.
(`nsenter --target` cannot do this unprivileged: bwrap's child sits in a nested user namespace, and
the network namespace belongs to its parent, so a few lines of Python find the owner and call setns.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from backend_implementor.processes import kill_group, watch

# argv: NETNS_PATH COMMAND... — join the user namespace that owns the network namespace (found with the
# NS_GET_USERNS ioctl; unprivileged bwrap makes one, and moves its child on into a nested one), then the
# network namespace itself, then exec the command.
_ENTER = (
    "import ctypes,fcntl,os,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "net=os.open(sys.argv[1],os.O_RDONLY)\n"
    "owner=fcntl.ioctl(net,0xb701)\n"
    "steps=[('network namespace',net)]\n"
    "if os.fstat(owner).st_ino!=os.stat('/proc/self/ns/user').st_ino:\n"
    "    steps.insert(0,('user namespace',owner))\n"
    "for what,fd in steps:\n"
    "    if libc.setns(fd,0)!=0:\n"
    "        sys.exit('sandbox: cannot enter the '+what+': '+os.strerror(ctypes.get_errno()))\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


class SandboxUnavailable(RuntimeError):
    """`--sandbox bwrap` was asked for but bubblewrap cannot run here."""


_BASE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
_HOLDER = ["bwrap", *_BASE, "--unshare-net", "--die-with-parent"]


def check_bwrap() -> None:
    """Raise SandboxUnavailable with a clear reason unless bwrap can create a sandbox on this machine."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SandboxUnavailable(
            "--sandbox bwrap needs bubblewrap, which is not installed (e.g. `apt-get install bubblewrap`); "
            "run without --sandbox to use no sandbox"
        )
    _probe([bwrap, *_BASE, "--unshare-net", "--die-with-parent", "--", "true"], "bubblewrap is installed but")


def _probe(argv: list[str], what: str) -> None:
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"{what} cannot create a sandbox here: {exc}") from None
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip() or f"exit code {probe.returncode}"
        raise SandboxUnavailable(
            f"{what} cannot create a sandbox here ({reason}); unprivileged user namespaces may be "
            f"disabled. Run without --sandbox."
        )


def open_sandbox(workspace: Path) -> Sandbox:
    """A working sandbox for `workspace`, or SandboxUnavailable saying why not."""
    check_bwrap()
    sandbox = Sandbox(workspace)
    try:
        _probe(sandbox.wrap(["true"]), "bubblewrap works, but the shared loopback network")
    except BaseException:
        sandbox.close()
        raise
    return sandbox


class Sandbox:
    def __init__(self, workspace: Path):
        self.workspace = workspace
        self._holder: subprocess.Popen | None = None
        self._enter: list[str] = []

    def _ensure_holder(self) -> None:
        if self._holder is not None and self._holder.poll() is None:
            return
        read_fd, write_fd = os.pipe()
        try:
            self._holder = subprocess.Popen(
                [*_HOLDER, "--info-fd", str(write_fd), "--", "sleep", "infinity"],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        watch(self._holder)
        with os.fdopen(read_fd, "rb") as info:
            raw = info.read()  # bwrap closes the fd once the sandbox is set up
        try:
            child = int(json.loads(raw)["child-pid"])
        except (ValueError, KeyError, TypeError):
            self.close()
            raise SandboxUnavailable(f"could not start the sandbox network holder ({raw[:200]!r})") from None
        self._enter = [sys.executable, "-I", "-S", "-c", _ENTER, f"/proc/{child}/ns/net"]

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` as run inside the sandbox, in the workspace."""
        self._ensure_holder()
        ws = str(self.workspace)
        return [
            *self._enter,
            "bwrap",
            *_BASE,
            "--tmpfs",
            "/tmp",
            "--bind",
            ws,
            ws,
            "--chdir",
            ws,
            # The root is read-only: give caches somewhere to write.
            "--setenv",
            "XDG_CACHE_HOME",
            "/tmp/.cache",
            "--setenv",
            "npm_config_cache",
            "/tmp/.npm",
            *self._identity(),
            # Its own processes only: bimpl's environment is out of sight, and when the command ends
            # (or bimpl dies) everything it started ends with it, however it detached.
            "--unshare-pid",
            "--die-with-parent",
            "--",
            *argv,
        ]

    @staticmethod
    def _identity() -> list[str]:
        # Unprivileged, the entered namespace maps us to uid 0; without this, commands would think they
        # run as root (npm, for one, behaves differently). Real root stays uid 0 but without
        # capabilities: with them it could remount the read-only root or unmount /proc and read the host's.
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            return ["--cap-drop", "ALL"]
        return ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]

    def port_open(self, port: int) -> bool:
        """Whether something listens on 127.0.0.1:port inside the sandbox's network namespace."""
        self._ensure_holder()
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{int(port)}"
        try:
            done = subprocess.run(
                [*self._enter, "bash", "-c", probe],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=5,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def close(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(OSError):
                kill_group(self._holder.pid, self._holder, grace=1.0)
            self._holder = None
