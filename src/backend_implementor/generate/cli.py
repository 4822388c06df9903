"""`bimpl new SPEC -o DIR`: spec -> a complete Express project. Imports stay inside the command."""

from __future__ import annotations

from pathlib import Path

import typer


def new_command(
    spec: Path = typer.Argument(..., help="Backend spec (YAML).", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to create the project in."),
    force: bool = typer.Option(False, "--force", help="Replace DIR even if it is not empty."),
) -> None:
    """Generate an Express 5 + TypeScript backend from a spec (no LLM involved)."""
    from backend_implementor.generate import GenerateError, OutputDirError, generate_project
    from backend_implementor.spec.errors import SpecError
    from backend_implementor.spec.loader import load_spec

    try:
        model = load_spec(spec)
    except SpecError as exc:
        typer.echo(f"error: invalid spec:\n{exc}", err=True)
        raise typer.Exit(1) from None
    try:
        written = generate_project(model, out, force=force)
    except OutputDirError as exc:
        typer.echo(f"error: {exc}", err=True)  # names the folder; the spec is fine
        raise typer.Exit(1) from None
    except GenerateError as exc:
        typer.echo(f"error: {spec}: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None

    routes = ", ".join([*(["/auth"] if model.auth else []), *(f"/{name}" for name in model.resources)])
    typer.echo(f"Created {model.name} in {out} ({len(written)} files): {routes}, OpenAPI at /openapi.json")
    tests = sum(1 for p in written if p.parts[0] == "test" and p.name.endswith(".test.ts"))
    parts = "routers, schemas, auth" if model.auth else "routers, schemas"
    typer.echo(f"  src/ ({parts}), drizzle/ (migrations), test/ ({tests} test files), Dockerfile")
    typer.echo("Next:")
    typer.echo(f"  cd {out} && npm ci --ignore-scripts && npm test && npm start")
