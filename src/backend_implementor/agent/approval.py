"""Which tool calls may run: `yolo` runs everything not denied; `confirm` asks the user first.

The deny list is applied in both modes to shell commands (bash, and service start commands). A denied
or declined call is not an error of the run: the model gets an observation saying so and goes on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from backend_implementor.agent.errors import UsageError
from backend_implementor.models.base import ToolCall

DEFAULT_DENY = [
    r"\brm\s+(-[a-zA-Z]*\s+)*-[a-zA-Z]*[rf][a-zA-Z]*\s+(-[a-zA-Z]*\s+)*(/|~|\$HOME)(\s|$|\*)",  # rm -rf / or ~
    r"\bsudo\b",
    r"\bgit\s+push\b",
    r"\b(curl|wget)\b[^|]*\|\s*(ba|z)?sh\b",  # piping downloads into a shell
    r"\bmkfs(\.\w+)?\b",
    r"\bdd\s+.*\bof=/dev/",
    r"\b(shutdown|reboot|halt|poweroff)\b",
    r":\(\)\s*\{\s*:\|:&\s*\};:",  # fork bomb
    r"\bchmod\s+(-R\s+)?777\s+/",
]

# Calls that change something; `confirm` asks before these, reading is always allowed.
MUTATING = {"bash", "write_file", "edit_file", "service"}


def command_of(call: ToolCall) -> str | None:
    if call.name == "bash":
        return str(call.arguments.get("command", ""))
    if call.name == "service" and call.arguments.get("action") == "start":
        return str(call.arguments.get("command", ""))
    return None


@dataclass
class Approver:
    mode: str = "yolo"
    deny: list[str] = field(default_factory=list)  # extra patterns; DEFAULT_DENY always applies
    ask: Callable[[str], bool] | None = None  # for confirm mode; defaults to a terminal prompt

    def __post_init__(self) -> None:
        if self.mode not in ("yolo", "confirm"):
            raise UsageError(f"--approve must be 'yolo' or 'confirm', not {self.mode!r}")
        self._patterns = []
        for pattern in DEFAULT_DENY + self.deny:
            try:
                self._patterns.append((pattern, re.compile(pattern)))
            except re.error as exc:
                raise UsageError(f"--deny {pattern!r}: not a valid regular expression ({exc})") from None
        if self.mode == "confirm" and self.ask is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    "--approve confirm needs an interactive terminal to ask you before each change, and "
                    "standard input is not one; use --approve yolo (with --deny patterns) for unattended runs"
                )
            self.ask = _ask_terminal

    def refusal(self, call: ToolCall) -> str | None:
        """None when the call may run; otherwise the observation explaining why it did not."""
        command = command_of(call)
        if command is not None:
            for pattern, compiled in self._patterns:
                if compiled.search(command):
                    return f"Refused: this command matches the deny pattern {pattern!r}. Do it another way."
        if self.mode == "confirm" and call.name in MUTATING:
            assert self.ask is not None
            if not self.ask(_describe(call)):
                return "The user declined this action. Ask yourself whether it is needed, or try another way."
        return None


def _describe(call: ToolCall) -> str:
    command = command_of(call)
    if command is not None:
        return f"{call.name}: {command}"
    return f"{call.name}: {call.arguments.get('path', '')}"


def _ask_terminal(description: str) -> bool:
    from rich.prompt import Confirm

    return Confirm.ask(f"[bold]Allow[/bold] {description}", default=False)
