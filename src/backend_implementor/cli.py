"""The `bimpl` command line. Heavy imports (litellm, the generator, verify) happen inside commands."""

from __future__ import annotations

import typer

from backend_implementor import __version__
from backend_implementor.agent.commands import agents_app, run_command
from backend_implementor.generate.cli import new_command, update_command
from backend_implementor.spec.cli import spec_app
from backend_implementor.verify.cli import verify_command

app = typer.Typer(
    name="bimpl",
    help="bimpl — an AI backend implementor for TypeScript/Node/Express: it designs, generates, verifies "
    "and proves backends.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bimpl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """bimpl — an AI backend implementor."""


app.command("run")(run_command)
app.add_typer(agents_app, name="agents")
app.command("new")(new_command)
app.command("update")(update_command)
app.add_typer(spec_app, name="spec")
app.command("verify")(verify_command)


def main() -> None:
    """Entry point: a bug still ends with one clear line, not a traceback (BIMPL_DEBUG=1 shows it)."""
    import os
    import sys

    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("BIMPL_DEBUG"):
            raise
        sys.stderr.write(
            f"bimpl: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in bimpl; run again with BIMPL_DEBUG=1 to see the traceback.\n"
        )
        sys.exit(3)
