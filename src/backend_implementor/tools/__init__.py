"""The agent's tools, confined to the workspace.

`build_tools(ctx, names)` gives the loop its tools by name; `KNOWN_TOOLS` lets agent definitions validate
tool names; `scrubbed_env(os.environ)` is the environment commands should get. `ctx.close()` stops every
background service and the sandbox at the end of a run.
"""

from __future__ import annotations

from backend_implementor.tools.base import Tool, ToolContext, ToolError
from backend_implementor.tools.env import is_secret, scrubbed_env
from backend_implementor.tools.files import EditFile, ReadFile, WriteFile
from backend_implementor.tools.sandbox import SandboxUnavailable, open_sandbox
from backend_implementor.tools.scaffold import Scaffold
from backend_implementor.tools.services import ServiceManager, ServiceTool
from backend_implementor.tools.shell import Bash
from backend_implementor.tools.verify import Verify
from backend_implementor.tools.workspace import resolve_in_workspace

KNOWN_TOOLS: dict[str, type[Tool]] = {
    cls.name: cls for cls in (ReadFile, WriteFile, EditFile, Bash, ServiceTool, Scaffold, Verify)
}
SANDBOXES = ("none", "bwrap")


def build_tools(ctx: ToolContext, names: list[str] | None = None) -> dict[str, Tool]:
    """Instantiate the named tools on `ctx`, in the given order; None or [] means every known tool.

    Background services belong to `bash` (DESIGN §4), so asking for `bash` also provides `service`.
    Raises ValueError for an unknown tool or sandbox name, and SandboxUnavailable when
    `ctx.sandbox == "bwrap"` cannot work on this machine.
    """
    names = list(names or KNOWN_TOOLS)
    unknown = [n for n in names if n not in KNOWN_TOOLS]
    if unknown:
        raise ValueError(f"unknown tool(s): {', '.join(unknown)}; known tools: {', '.join(KNOWN_TOOLS)}")
    if ctx.sandbox not in SANDBOXES:
        raise ValueError(f"unknown sandbox {ctx.sandbox!r}; choose one of: {', '.join(SANDBOXES)}")
    ctx.workspace = ctx.workspace.resolve()
    if not ctx.workspace.is_dir():
        raise ValueError(f"workspace {ctx.workspace} is not a directory")
    wanted = list(dict.fromkeys(names))
    if "bash" in wanted and "service" not in wanted:
        wanted.append("service")
    if ctx.sandbox == "bwrap" and ctx.sandbox_runner is None and {"bash", "service"} & set(wanted):
        ctx.sandbox_runner = open_sandbox(ctx.workspace)
        ctx.cleanups.append(ctx.sandbox_runner.close)
    if ctx.services is None:
        ctx.services = ServiceManager(ctx)
    return {name: KNOWN_TOOLS[name](ctx) for name in wanted}


__all__ = [
    "KNOWN_TOOLS",
    "SANDBOXES",
    "Bash",
    "EditFile",
    "ReadFile",
    "SandboxUnavailable",
    "ServiceManager",
    "ServiceTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "WriteFile",
    "build_tools",
    "is_secret",
    "resolve_in_workspace",
    "scrubbed_env",
]
