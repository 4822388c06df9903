"""Long-lived background processes (a dev server) and the `service` tool that drives them."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from backend_implementor.processes import kill_group, tail_lines, watch
from backend_implementor.tools.base import Tool, ToolContext, ToolError
from backend_implementor.tools.shell import command_argv, command_env

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_START_TIMEOUT = 30.0
EARLY_EXIT_WATCH = 1.0  # without a port, watch this long for an immediate crash
DEFAULT_LOG_LINES = 40
MAX_LOG_LINES = 500


@dataclass
class Service:
    name: str
    command: str
    proc: subprocess.Popen
    log_path: Path
    log_file: BinaryIO
    port: int | None
    started: float

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        if self.running:
            state = f"running (pid {self.proc.pid}, up {time.monotonic() - self.started:.0f}s)"
        else:
            state = f"exited with code {self.proc.returncode}"
        port = f", port {self.port}" if self.port else ""
        return f"{self.name}: {state}{port}; command: {self.command}"


class ServiceManager:
    """The services of one run; `stop_all` (called by ToolContext.close) stops every one of them."""

    def __init__(self, ctx: ToolContext):
        self.ctx = ctx
        self.services: dict[str, Service] = {}
        self._tmp_dir: Path | None = None

    def _log_dir(self) -> Path:
        if self.ctx.run_dir is not None:
            path = Path(self.ctx.run_dir) / "services"
        else:
            if self._tmp_dir is None:
                self._tmp_dir = Path(tempfile.mkdtemp(prefix="bimpl-services-"))
            path = self._tmp_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _port_open(self, port: int) -> bool:
        if self.ctx.sandbox == "bwrap" and self.ctx.sandbox_runner is not None:
            return self.ctx.sandbox_runner.port_open(port)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def get(self, name: str) -> Service:
        if name not in self.services:
            known = ", ".join(self.services) or "none"
            raise ToolError(f"no service named {name!r} (started services: {known})")
        return self.services[name]

    def start(self, name: str, command: str, port: int | None, timeout: float) -> str:
        if not _NAME.match(name):
            raise ToolError("service name must be 1-64 letters, digits, '.', '_' or '-', e.g. 'api'")
        if not command.strip():
            raise ToolError("service start needs a command, e.g. `npm run dev`")
        if port is not None and not 1 <= port <= 65535:
            raise ToolError(f"port must be 1-65535 (got {port})")
        if not 0 < timeout <= 600:
            raise ToolError("timeout must be between 0 and 600 seconds")
        old = self.services.get(name)
        if old is not None and old.running:
            raise ToolError(f"service {name!r} is already running (pid {old.proc.pid}); stop it first")
        if port is not None and self._port_open(port):
            owner = [s.name for s in self.services.values() if s.running and s.port == port]
            by = f" by service {owner[0]!r}" if owner else " by another process"
            raise ToolError(f"port {port} is already in use{by}; stop that first or choose another port")
        if old is not None:
            self._forget(old)

        log_path = self._log_dir() / f"{name}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 - owned by the Service until it is stopped
        try:
            proc = subprocess.Popen(
                command_argv(self.ctx, command),
                cwd=self.ctx.workspace,
                env=command_env(self.ctx),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            log_file.close()
            raise ToolError(f"cannot start the service: {exc}") from None
        watch(proc)
        service = Service(name, command, proc, log_path, log_file, port, time.monotonic())
        self.services[name] = service

        deadline = time.monotonic() + (timeout if port is not None else min(timeout, EARLY_EXIT_WATCH))
        while time.monotonic() < deadline:
            if not service.running:
                self._forget(service)
                raise ToolError(
                    f"service {name!r} exited with code {proc.returncode} right after starting. "
                    f"Last log lines:\n{self._tail(service, DEFAULT_LOG_LINES)}"
                )
            if port is not None and self._port_open(port):
                waited = time.monotonic() - service.started
                return (
                    f"Started {name!r} (pid {proc.pid}); port {port} is accepting connections after {waited:.1f}s. "
                    f"Log: {log_path}\nLast log lines:\n{self._tail(service, 10)}"
                )
            time.sleep(0.1)
        if port is not None:
            raise ToolError(
                f"service {name!r} (pid {proc.pid}) is running but port {port} did not accept connections "
                f"within {timeout:g}s. It is still running: check its logs, then stop it or wait longer.\n"
                f"Last log lines:\n{self._tail(service, DEFAULT_LOG_LINES)}"
            )
        return (
            f"Started {name!r} (pid {proc.pid}); still running after {EARLY_EXIT_WATCH:g}s (no port given, so "
            f"readiness was not checked). Log: {log_path}\nLast log lines:\n{self._tail(service, 10)}"
        )

    def _tail(self, service: Service, lines: int) -> str:
        return tail_lines(service.log_path, lines) or "(log is empty)"

    def status(self, name: str | None) -> str:
        if name:
            service = self.get(name)
            extra = ""
            if service.running and service.port:
                extra = f"; port {service.port} {'open' if self._port_open(service.port) else 'NOT open'}"
            return service.describe() + extra
        if not self.services:
            return "No services started."
        return "\n".join(s.describe() for s in self.services.values())

    def logs(self, name: str, lines: int) -> str:
        if not 1 <= lines <= MAX_LOG_LINES:
            raise ToolError(f"lines must be 1-{MAX_LOG_LINES}")
        service = self.get(name)
        state = "running" if service.running else f"exited with code {service.proc.returncode}"
        return f"[{name}: {state}; last {lines} log lines]\n{self._tail(service, lines)}"

    def stop(self, name: str) -> str:
        service = self.get(name)
        was_running = service.running
        self._forget(service)
        if not was_running:
            return f"{name!r} had already exited with code {service.proc.returncode}."
        return f"Stopped {name!r} (exit code {service.proc.returncode})."

    def _forget(self, service: Service) -> None:
        # The group, not just the leader: `npm run dev` starts node as a child.
        kill_group(service.proc.pid, service.proc)
        with contextlib.suppress(OSError):
            service.log_file.close()
        self.services.pop(service.name, None)

    def stop_all(self) -> None:
        for service in list(self.services.values()):
            self._forget(service)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None


class ServiceTool(Tool):
    name = "service"
    description = (
        "Run long-lived background processes such as a dev server. action=start needs name and command; "
        "with port it waits (up to timeout seconds) until 127.0.0.1:port accepts connections and reports an "
        "early crash with the log tail. action=status (name optional), logs (name, lines) and stop (name). "
        "All services are stopped when the run ends."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["start", "status", "logs", "stop"]},
            "name": {"type": "string", "description": "Service name, e.g. 'api'."},
            "command": {"type": "string", "description": "For start: the command, e.g. 'npm run dev'."},
            "port": {"type": "integer", "description": "For start: TCP port on 127.0.0.1 to wait for."},
            "timeout": {"type": "number", "description": "For start: seconds to wait for the port (30)."},
            "lines": {"type": "integer", "description": f"For logs: how many lines ({DEFAULT_LOG_LINES})."},
        },
        "required": ["action"],
    }

    def __init__(self, ctx: ToolContext):
        super().__init__(ctx)
        if ctx.services is None:
            ctx.services = ServiceManager(ctx)
        self.manager: ServiceManager = ctx.services

    def time_limit(self, arguments: dict[str, Any]) -> float:
        timeout = arguments.get("timeout")
        return (float(timeout) if isinstance(timeout, (int, float)) and 0 < timeout <= 600 else 30.0) + 30

    def run(
        self,
        action: str,
        name: str | None = None,
        command: str | None = None,
        port: int | None = None,
        timeout: float | None = None,
        lines: int | None = None,
        **_: Any,
    ) -> str:
        if action == "status":
            return self.manager.status(name)
        if action not in ("start", "logs", "stop"):
            raise ToolError(f"unknown action {action!r}; use start, status, logs or stop")
        if not name:
            raise ToolError(f"action {action} needs a service name")
        if action == "start":
            if command is None:
                raise ToolError("action start needs a command")
            return self.manager.start(
                name, command, port, DEFAULT_START_TIMEOUT if timeout is None else timeout
            )
        if action == "logs":
            return self.manager.logs(name, DEFAULT_LOG_LINES if lines is None else lines)
        return self.manager.stop(name)
