"""The `bimpl` command line. Heavy imports (litellm, the generator, verify) happen inside commands."""

from __future__ import annotations

import typer

from backend_implementor import __version__

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
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """bimpl — an AI backend implementor."""


def main() -> None:
    app()
