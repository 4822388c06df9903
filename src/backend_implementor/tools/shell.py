"""The bash tool: one `bash -c` per call, in its own process group, in the workspace."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, ClassVar

from backend_implementor.processes import clean_output, group_alive, kill_group, unwatch, watch
from backend_implementor.tools.base import Tool, ToolContext, ToolError
from backend_implementor.tools.env import scrubbed_env
from backend_implementor.tools.isolation import LEFT_BEHIND, isolation
from backend_implementor.tools.process import OutputCapture

MAX_TIMEOUT = 3600.0
OUTPUT_HEAD_BYTES = 10_000
OUTPUT_TAIL_BYTES = 10_000
OUTPUT_MAX_LINES = 400  # 200 head + 200 tail
LEFT_BEHIND_NOTE = (
    "[note: the command left background processes running; they were stopped when it ended. "
    "Use the service tool for servers and other long-lived processes.]"
)


def command_env(ctx: ToolContext) -> dict[str, str]:
    # Scrub again: cheap, and a context built by hand (tests, scripts) cannot leak keys by mistake.
    env = scrubbed_env(ctx.env or os.environ)
    env.setdefault("NO_COLOR", "1")  # colour codes are noise to the model (https://no-color.org)
    return env


def command_argv(ctx: ToolContext, command: str) -> list[str]:
    argv = ["bash", "-c", command]
    if ctx.sandbox == "bwrap":
        if ctx.sandbox_runner is None:
            raise ToolError("the bwrap sandbox is not set up (build the tools with build_tools)")
        return ctx.sandbox_runner.wrap(argv)
    if ctx.isolate:
        return [*isolation().prefix, *argv]
    return argv


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class Bash(Tool):
    name = "bash"
    description = (
        "Run a bash command in the workspace (`bash -c`, stdin is empty, stdout and stderr merged). Each call "
        "is a fresh shell: `cd` and variables do not carry over. Long output keeps its head and tail. On "
        "timeout the whole process group is killed; processes left in the background when the command ends "
        "are stopped too, so run servers with the `service` tool instead."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command line to run."},
            "timeout": {"type": "number", "description": "Seconds before the command is killed."},
        },
        "required": ["command"],
    }

    def time_limit(self, arguments: dict[str, Any]) -> float:
        timeout = arguments.get("timeout")
        ok = isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT
        return (float(timeout) if ok else self.ctx.command_timeout) + 30

    def run(self, command: str, timeout: float | None = None, **_: Any) -> str:
        if not command.strip():
            raise ToolError("command is empty")
        if "\x00" in command:
            raise ToolError("command contains a NUL byte")
        limit = self.ctx.command_timeout if timeout is None else float(timeout)
        if not 0 < limit <= MAX_TIMEOUT:
            raise ToolError(f"timeout must be between 0 and {MAX_TIMEOUT:g} seconds (got {timeout})")
        try:
            proc = subprocess.Popen(
                command_argv(self.ctx, command),
                cwd=self.ctx.workspace,
                env=command_env(self.ctx),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # pgid == pid: the whole group can be killed at once
            )
        except OSError as exc:
            raise ToolError(f"cannot start bash: {exc}") from None
        watch(proc)
        capture = OutputCapture(proc.stdout, OUTPUT_HEAD_BYTES, OUTPUT_TAIL_BYTES, OUTPUT_MAX_LINES)
        notes: list[str] = []
        try:
            code: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, proc)
            code = None
        except BaseException:  # KeyboardInterrupt: never leave the command running
            kill_group(proc.pid, proc)
            raise
        if code is not None and group_alive(proc.pid):
            kill_group(proc.pid, proc)
            notes.append(LEFT_BEHIND_NOTE)
        elif code is not None:
            unwatch(proc.pid)
        if not capture.join(timeout=5):
            notes.append(
                "[note: a process that left the process group still holds the output open; it may be cut]"
            )
        output = clean_output(capture.render())
        if LEFT_BEHIND in output:  # said by isolation's pid 1, which stopped them
            output = output.replace(f"\n{LEFT_BEHIND}\n", "").replace(LEFT_BEHIND, "")
            notes.insert(0, LEFT_BEHIND_NOTE)
        output = output.rstrip("\n") or "(no output)"
        tail = ("\n" + "\n".join(notes)) if notes else ""
        if code is None:
            raise ToolError(
                f"command timed out after {limit:g}s; its whole process group was killed (SIGTERM, then SIGKILL). "
                f"Pass a larger timeout for slow commands, or use the service tool for servers.\n"
                f"Output before the timeout:\n{output}{tail}"
            )
        if code < 0:
            raise ToolError(f"command was killed by {_signal_name(code)}. Output:\n{output}{tail}")
        if 128 < code < 160 and self.ctx.sandbox == "none" and self.ctx.isolate and isolation().available:
            # isolation's pid 1 reports a death by signal N as 128 + N, as the shell does
            raise ToolError(
                f"command was killed by {_signal_name(128 - code)} (exit code {code}). Output:\n{output}{tail}"
            )
        if code != 0:
            raise ToolError(f"command failed with exit code {code}. Output:\n{output}{tail}")
        return f"{output}{tail}\n[exit code 0]"
