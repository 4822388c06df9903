"""Child processes for verify: every command and server runs in its own process group, so a timeout or
an error kills the whole tree (npm -> sh -> node), never just the wrapper."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend_implementor.processes import kill_group, tail_lines, watch


@dataclass
class CmdResult:
    cmd: str
    returncode: int | None  # None when it timed out or could not start
    duration_s: float
    log_path: Path
    timed_out: bool = False
    error: str = ""  # e.g. "command not found: pnpm"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.error

    def tail(self, lines: int = 30) -> str:
        return tail_lines(self.log_path, lines)


def child_env(
    extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`base` (default: this process's environment) plus settings that keep tools non-interactive."""
    env = dict(os.environ if base is None else base)
    # Non-interactive everywhere: test runners leave watch mode, npm stays quiet about updates.
    env.setdefault("CI", "true")
    env["NO_COLOR"] = "1"
    env["FORCE_COLOR"] = "0"
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    if extra:
        env.update(extra)
    return env


def confined(cmd: Sequence[str] | str, confine: Sequence[str]) -> list[str]:
    """The argv to start: a string is a shell command line (run by /bin/sh, as shell=True would)."""
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    return [*confine, *argv]


def run_cmd(
    cmd: Sequence[str] | str,
    *,
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    display: str | None = None,
    cancel: threading.Event | None = None,
    confine: Sequence[str] = (),
) -> CmdResult:
    """Run to completion with output to `log_path`; the group is killed on timeout or interruption.

    `display` replaces the command line in logs and results (to keep secrets out of them). `cancel` lets
    another thread stop a command run in a worker thread (Ctrl-C only reaches the main thread).
    `confine` is an argv prefix the command runs under (the agent's PID namespace: tools.isolation)."""
    shell = isinstance(cmd, str)
    shown = display or (cmd if shell else " ".join(cmd))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        log.write(f"$ {shown}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                confined(cmd, confine),
                cwd=cwd,
                env=child_env(env, base_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return CmdResult(
                shown, None, time.monotonic() - start, log_path, error=f"cannot run {shown}: {exc}"
            )
        watch(proc)
        timed_out = cancelled = False
        deadline = start + timeout_s
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(remaining, 0.2 if cancel is not None else remaining))
        finally:
            kill_group(proc.pid, proc)
    rc = None if timed_out or cancelled else proc.returncode
    return CmdResult(
        shown,
        rc,
        time.monotonic() - start,
        log_path,
        timed_out=timed_out,
        error="cancelled" if cancelled else "",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class BootError(Exception):
    """The server did not come up; `log_tail` says why."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class Server:
    """A backend started by verify. Use as a context manager: the group dies on exit, whatever happens."""

    def __init__(
        self,
        cmd: str,
        *,
        cwd: Path,
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        confine: Sequence[str] = (),
    ) -> None:
        self.cmd = cmd
        self.cwd = cwd
        self.port = port
        self.host = host
        self.log_path = log_path
        self.env = dict(env or {})
        self.base_env = base_env
        self.confine = tuple(confine)
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log.write(f"$ {self.cmd}\n".encode())
        self._log.flush()
        env = {"PORT": str(self.port), "HOST": self.host, "NODE_ENV": "test", **self.env}
        try:
            self.proc = subprocess.Popen(
                confined(self.cmd, self.confine),
                cwd=self.cwd,
                env=child_env(env, self.base_env),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BootError(f"cannot start `{self.cmd}`: {exc}") from exc
        watch(self.proc)

    def wait_ready(self, *, timeout_s: float, health: str | None) -> str:
        """Wait for the port, then for `health` (any answer below 500; without one, any HTTP answer on /).

        Returns what answered, e.g. "GET /health -> 200"."""
        deadline = time.monotonic() + timeout_s
        path = health or "/"
        last = "no answer"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise BootError(
                        f"the server exited with code {self.proc.returncode} before it listened on port {self.port}",
                        self.log_tail(),
                    )
                if port_open(self.host, self.port):
                    try:
                        resp = client.get(self.base_url + path)
                        last = f"GET {path} -> {resp.status_code}"
                        if health is None or resp.status_code < 500:
                            return last
                    except httpx.HTTPError as exc:
                        last = f"GET {path} failed: {type(exc).__name__}"
                if time.monotonic() > deadline:
                    where = f"port {self.port} never opened" if last == "no answer" else last
                    raise BootError(
                        f"the server was not ready after {timeout_s:.0f}s ({where})", self.log_tail()
                    )
                time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        if self._log is not None:
            with contextlib.suppress(ValueError, OSError):
                self._log.flush()
        return tail_lines(self.log_path, lines)

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc.pid, self.proc)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
