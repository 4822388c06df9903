"""`bimpl spec schema | check | from-openapi`. Only typer at import time; the rest loads per command."""

from __future__ import annotations

from pathlib import Path

import typer

spec_app = typer.Typer(
    name="spec",
    help="Backend specs: print the JSON Schema, check a spec, import an OpenAPI document.",
    no_args_is_help=True,
)


@spec_app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema that `spec check` enforces (semantic rules come on top)."""
    import json

    from backend_implementor.spec.schema import shipped_schema

    typer.echo(json.dumps(shipped_schema(), indent=2, ensure_ascii=False))


@spec_app.command("check")
def check_command(
    files: list[Path] = typer.Argument(..., help="Spec files (YAML or JSON).", show_default=False),
) -> None:
    """Validate specs: prints 'ok: N resources, M fields' or every error as file:line: path: message."""
    from backend_implementor.spec.loader import check_file

    failed = False
    for file in files:
        spec, issues = check_file(file)
        if spec is None:
            failed = True
            for issue in issues:
                typer.echo(str(issue), err=True)
            continue
        prefix = f"{file}: " if len(files) > 1 else ""
        typer.echo(f"{prefix}ok: {len(spec.resources)} resources, {spec.field_count()} fields")
    if failed:
        raise typer.Exit(1)


@spec_app.command("from-openapi")
def from_openapi_command(
    file: Path = typer.Argument(..., help="An OpenAPI 3.x document (YAML or JSON).", show_default=False),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the spec here (default: stdout)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Import the resource-shaped paths of an OpenAPI document; every path not mapped is listed with why."""
    from backend_implementor.spec.openapi import OpenAPIImportError, import_openapi, render_yaml
    from backend_implementor.spec.source import parse_yaml

    if output is not None and output.exists() and not force:
        typer.echo(f"{output}: already exists (use --force to overwrite)", err=True)
        raise typer.Exit(1)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    except UnicodeDecodeError:
        typer.echo(f"{file}: not valid UTF-8 text", err=True)
        raise typer.Exit(1) from None
    doc, _, issues = parse_yaml(text, str(file))
    if issues:
        for issue in issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1)
    try:
        result = import_openapi(doc)
    except OpenAPIImportError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(1) from None
    rendered = render_yaml(result, file.name)
    for entry in result.entries:
        typer.echo(f"{'mapped ' if entry.mapped else 'skipped'} {entry}", err=True)
    n = len(result.spec["resources"])
    summary = (
        f"{n} resource{'s' if n != 1 else ''} mapped, {len({e.path for e in result.skipped})} path(s) skipped"
    )
    if output is None:
        typer.echo(rendered, nl=False)
        typer.echo(summary, err=True)
        return
    from backend_implementor.atomic import write_text_atomic

    try:
        write_text_atomic(output, rendered)
    except OSError as exc:
        typer.echo(f"{output}: cannot write: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{summary}; wrote {output}", err=True)
