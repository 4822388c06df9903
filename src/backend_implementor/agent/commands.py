"""`bimpl run` and `bimpl agents`: the command-line face of the agent."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from backend_implementor.agent.errors import UsageError

agents_app = typer.Typer(help="List and inspect agent definitions.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def run_command(
    task: str = typer.Argument(None, help="What to build, in words. Not needed with --resume."),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="litellm model (anthropic/…, openai/…, ollama/…) or scripted:FILE.yaml. "
        "Default: the agent definition's model, else $BIMPL_MODEL.",
    ),
    api_base: str = typer.Option(
        None, "--api-base", help="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."
    ),
    agent: str = typer.Option(
        None, "--agent", "-a", help="Agent name or definition file (.md). Default: backend-implementor."
    ),
    workspace: Path = typer.Option(
        Path("."), "--workspace", "-w", help="The project directory the tools work in."
    ),
    max_steps: int = typer.Option(100, "--max-steps", min=1, help="Stop after this many model turns."),
    max_cost: float = typer.Option(
        5.0, "--max-cost", min=0, help="Stop once the model cost reaches this many USD."
    ),
    max_time: float = typer.Option(
        3600, "--max-time", min=1, help="Stop after this many seconds of wall time."
    ),
    approve: str = typer.Option(
        "yolo",
        "--approve",
        help="yolo: run every tool call not on the deny list; confirm: ask before each change (needs a terminal).",
    ),
    deny: list[str] = typer.Option(
        [],
        "--deny",
        help="Extra regular expression of bash commands to refuse (repeatable); a built-in list (sudo, git push, rm -rf /, curl|sh …) always applies.",
    ),
    sandbox: str = typer.Option(
        "none",
        "--sandbox",
        help="none (default: commands run as you with your files and network, each in its own PID and user namespace, so they cannot see bimpl or outlive the run) or bwrap (also bubblewrap: read-only root, writable workspace, loopback only; verify's install stage fetches packages).",
    ),
    command_timeout: float = typer.Option(
        120, "--command-timeout", min=1, help="Default timeout in seconds for one bash call."
    ),
    tool_protocol: str = typer.Option(
        "auto",
        "--tool-protocol",
        help="auto, native (the provider's tool calls) or text (a strict text format in the prompt).",
    ),
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Before accepting `finish` in a Node project, run bimpl verify on the workspace and refuse "
        "while it fails (up to --verify-retries times; then the run ends 'unverified').",
    ),
    verify_retries: int = typer.Option(
        2, "--verify-retries", min=0, help="Refused finishes allowed before the run ends unverified."
    ),
    verify_stages: str = typer.Option(
        None,
        "--verify-stages",
        help="Stages the finish check runs (comma list; default all): "
        "install,build,test,boot,security,contract,static.",
    ),
    resume: str = typer.Option(
        None, "--resume", help="Continue the run with this id (a folder in .bimpl/runs/)."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show longer model replies and observations."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the final summary as JSON instead of tables."),
) -> None:
    """Run the agent on a TASK in a workspace: it reads, writes and edits files and runs commands there.

    The run is recorded under .bimpl/runs/<id>/ (secrets redacted) and can be continued with --resume.
    Exit status: 0 finished, 1 stopped early (limits, stuck, model or format errors), 2 bad usage.
    """
    from backend_implementor.agent.display import RunDisplay
    from backend_implementor.agent.loop import Limits
    from backend_implementor.agent.run import RunOptions, execute
    from backend_implementor.processes import guard_this_process, stop_adopted

    if sandbox not in ("none", "bwrap"):
        raise _fail(f"--sandbox must be 'none' or 'bwrap', not {sandbox!r}")
    if tool_protocol not in ("auto", "native", "text"):
        raise _fail(f"--tool-protocol must be auto, native or text, not {tool_protocol!r}")
    if resume and task:
        raise _fail("give either a TASK or --resume RUN_ID, not both (a resumed run keeps its task)")
    options = RunOptions(
        task=task,
        workspace=workspace,
        agent=agent,
        model=model,
        api_base=api_base,
        tool_protocol=tool_protocol,
        limits=Limits(
            max_steps=max_steps, max_cost=max_cost, max_time=max_time, max_verify_failures=verify_retries
        ),
        approve=approve,
        deny=deny,
        sandbox=sandbox,
        command_timeout=command_timeout,
        resume=resume,
        verify=verify,
        verify_stages=verify_stages,
    )
    display = RunDisplay(err if json_out else console, verbose)
    guard_this_process()  # this process holds the API keys: nothing the model runs may read them
    try:
        result = execute(options, display)
    except UsageError as exc:
        raise _fail(str(exc)) from None
    finally:
        stop_adopted()  # whatever escaped its process group and namespace, e.g. from verify's commands
    if json_out:
        console.print_json(json.dumps(result.to_dict(), default=str))
    else:
        display.summary(result)
    raise typer.Exit(result.exit_code)


@agents_app.command("list")
def agents_list() -> None:
    """List the agent definitions found: ./.bimpl/agents/, ~/.config/bimpl/agents/, then built-ins."""
    from backend_implementor.agent.definition import list_definitions

    try:
        definitions = list_definitions()
    except UsageError as exc:
        raise _fail(str(exc)) from None
    table = Table("name", "source", "tools", "description")
    for d in definitions:
        table.add_row(d.name, escape(d.source), ", ".join(d.tools) or "all", escape(d.description[:100]))
    console.print(table)


@agents_app.command("show")
def agents_show(name: str = typer.Argument(..., help="An agent name or a definition file (.md).")) -> None:
    """Show a definition: its tools, deliverables, tags and system prompt."""
    from backend_implementor.agent.definition import known_tools, resolve_definition

    try:
        d = resolve_definition(name)
    except UsageError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[bold]{escape(d.name)}[/bold]  [dim]{escape(d.source)}[/dim]")
    if d.description:
        console.print(escape(d.description))
    tools = d.tools or known_tools()
    console.print(
        f"\n[bold]Tools ({len(tools)})[/bold]{'' if d.tools else ' — none listed, so all'}: {', '.join(tools)}"
    )
    console.print(f"[bold]Model[/bold]: {escape(d.model or '(not set: --model or $BIMPL_MODEL)')}")
    if d.max_turns:
        console.print(f"[bold]Max turns[/bold]: {d.max_turns}")
    console.print(f"[bold]Deliverables ({len(d.deliverables)})[/bold]")
    for key, text in d.deliverables.items():
        console.print(f"  • [cyan]{escape(key)}[/cyan]: {escape(text)}")
    console.print(f"[bold]Tags[/bold]: {' '.join('#' + t for t in d.tags) or '(none)'}")
    console.print("\n[bold]System prompt[/bold]")
    console.print(escape(d.system_prompt), markup=False, highlight=False)
