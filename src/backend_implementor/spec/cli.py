"""`bimpl spec schema | check | from-openapi`. Only typer at import time; the rest loads per command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from backend_implementor.spec.model import Spec

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
    project: Path | None = typer.Option(
        None,
        "--project",
        help="Also say what `bimpl update` would do to this project's database (default: the project a "
        "bimpl.yaml sits in).",
    ),
) -> None:
    """Validate specs: prints 'ok: N resources, M fields' or every error as file:line: path: message.

    Against a generated project it also lists the schema changes the next `bimpl update` would make, with a
    warning for each one that can lose data (those need --allow-destructive)."""
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
        target = project if project is not None else _project_of(file)
        if target is not None:
            failed |= not _schema_changes(spec, target, file)
    if failed:
        raise typer.Exit(1)


def _project_of(file: Path) -> Path | None:
    from backend_implementor.generate.project import SPEC_FILE, is_project

    return file.parent if file.name == SPEC_FILE and is_project(file.parent) else None


def _schema_changes(spec: Spec, project: Path, file: Path) -> bool:
    """Prints the next migration's changes against `project`; False when they cannot be worked out."""
    from backend_implementor.generate.errors import GenerateError
    from backend_implementor.generate.express.render import render_app, spec_renames
    from backend_implementor.generate.express.schema_diff import next_migration

    try:
        migration = next_migration(project, render_app(spec)[1], spec_renames(spec))
    except GenerateError as exc:
        typer.echo(f"{file}: cannot compare with {project}: {exc}", err=True)
        return False
    if migration is None:
        typer.echo(f"{file}: no schema change against {project}")
        return True
    typer.echo(f"{file}: `bimpl update` would add migration {migration.tag} to {project}:")
    for change in migration.changes:
        if change.slug:
            typer.echo(f"  {change.summary}")
    for change in migration.destructive:
        typer.echo(
            f"{file}: warning: {change.summary}: {change.destructive} (needs --allow-destructive)", err=True
        )
    return True


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
