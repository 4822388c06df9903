"""The contract between the agent loop and its tools.

A tool is called with the model's arguments and returns the observation text. Anything the model
should read and correct (a bad path, a missing match, a non-zero exit) is raised as `ToolError` and
shown to the model as an error observation; it never ends the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from backend_implementor.models.base import ToolSpec

DEFAULT_TIME_LIMIT = 300.0


class ToolError(Exception):
    """A problem the model caused and can fix; its message is the observation."""


@dataclass
class ToolContext:
    """State shared by the tools of one run."""

    workspace: Path  # resolved, absolute
    env: dict[str, str] = field(default_factory=dict)  # environment for commands, secrets already removed
    sandbox: str = "none"  # "none" | "bwrap"
    isolate: bool = True  # without bwrap: a PID and user namespace per command where the kernel allows
    command_timeout: float = 120.0  # seconds, default for bash
    # Per-file fingerprint (mtime_ns, size, sha256) at the agent's last read or write, so edit_file can
    # refuse to edit a file that changed on disk behind its back.
    seen: dict[Path, tuple[int, int, str]] = field(default_factory=dict)
    # Receives verify's stage events (event, stage, data) so a long verify shows progress.
    progress: Any = None
    # Long-lived processes started by the agent; stopped when the run ends.
    services: Any = None
    # Where service logs go (`<run_dir>/services/NAME.log`); a temporary directory when unset.
    run_dir: Path | None = None
    # The live bubblewrap sandbox when sandbox == "bwrap" (set up by build_tools).
    sandbox_runner: Any = None
    # Called by close() after the services stop, newest first (e.g. the sandbox's network holder).
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop everything the run started. Safe to call more than once."""
        if self.services is not None:
            self.services.stop_all()
        while self.cleanups:
            self.cleanups.pop()()


class Tool:
    """Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]

    def __init__(self, ctx: ToolContext):
        self.ctx = ctx

    @classmethod
    def spec(cls) -> ToolSpec:
        return ToolSpec(cls.name, cls.description, cls.parameters)

    def run(self, **arguments: Any) -> str:
        raise NotImplementedError

    def time_limit(self, arguments: dict[str, Any]) -> float:
        """Seconds of wall time this call may take before the loop stops it (tools with their own
        timeout argument allow a margin beyond it, so their own, clearer message comes first)."""
        return DEFAULT_TIME_LIMIT

    def __call__(self, arguments: dict[str, Any]) -> str:
        """Check the arguments against the schema's required keys and types, then run."""
        props = self.parameters.get("properties", {})
        missing = [k for k in self.parameters.get("required", []) if k not in arguments]
        if missing:
            raise ToolError(f"{self.name}: missing required argument(s): {', '.join(missing)}")
        unknown = [k for k in arguments if k not in props]
        if unknown:
            raise ToolError(
                f"{self.name}: unknown argument(s): {', '.join(unknown)}; expected: {', '.join(props)}"
            )
        for key, value in arguments.items():
            expected = props[key].get("type")
            if expected and not _is_type(value, expected):
                raise ToolError(f"{self.name}: argument {key!r} must be of type {expected}")
        return self.run(**arguments)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _is_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if name == "null" and value is None:
            return True
        types = _JSON_TYPES.get(name)
        if (
            types
            and isinstance(value, types)
            and not (name in ("integer", "number") and isinstance(value, bool))
        ):
            return True
    return False
