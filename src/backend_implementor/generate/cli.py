"""`bimpl new SPEC -o DIR` and `bimpl update [DIR]`: spec -> a complete Express project, and the project
kept in step with its edited spec. Imports stay inside the commands (keeps `bimpl --help` fast)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from backend_implementor.generate.project import Plan
    from backend_implementor.spec.model import Spec


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _load(spec: Path) -> tuple[Spec, bytes]:
    from backend_implementor.spec.errors import SpecError
    from backend_implementor.spec.loader import load_spec

    try:
        model = load_spec(spec)
    except SpecError as exc:
        _fail(f"invalid spec:\n{exc}")
    return model, spec.read_bytes()


def new_command(
    spec: Path = typer.Argument(..., help="Backend spec (YAML).", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to create the project in."),
    force: bool = typer.Option(
        False, "--force", help="DIR is a bimpl project already: update it from SPEC (as `bimpl update`)."
    ),
) -> None:
    """Generate an Express 5 + TypeScript backend from a spec (no LLM involved).

    DIR must be new or empty (a fresh .git is fine). The spec is kept in the project as bimpl.yaml, with a
    manifest of what was generated, so `bimpl update` can follow later changes to the spec."""
    from backend_implementor.generate import GenerateError, OutputDirError, generate_project
    from backend_implementor.generate.project import is_project

    model, text = _load(spec)
    if force and out.is_dir() and is_project(out):
        _update(out, model, text, spec_written=True, spec_label=str(spec))
        return
    try:
        written = generate_project(model, out, text, spec_path=spec)
    except OutputDirError as exc:
        _fail(str(exc))  # names the folder; the spec is fine
    except GenerateError as exc:
        _fail(f"{spec}: {exc}")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")

    routes = ", ".join([*(["/auth"] if model.auth else []), *(f"/{name}" for name in model.resources)])
    typer.echo(f"Created {model.name} in {out} ({len(written)} files): {routes}, OpenAPI at /openapi.json")
    tests = sum(1 for p in written if p.parts[0] == "test" and p.name.endswith(".test.ts"))
    parts = "routers, schemas, auth" if model.auth else "routers, schemas"
    typer.echo(f"  src/ ({parts}), drizzle/ (migrations), test/ ({tests} test files), Dockerfile")
    typer.echo("  bimpl.yaml (the spec: edit it, then `bimpl update`), .bimpl/ (what bimpl generated)")
    typer.echo("Next:")
    typer.echo(f"  cd {out} && npm ci --ignore-scripts && npm test && npm start")


def update_command(
    project: Path = typer.Argument(Path("."), help="The bimpl project (default: the current folder)."),
    spec: Path | None = typer.Option(
        None, "--spec", help="Update from this spec and keep it as the project's bimpl.yaml."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the diff; write nothing."),
    allow_destructive: bool = typer.Option(
        False, "--allow-destructive", help="Allow schema changes that can lose data (drops, narrowing types)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Name of the new migration (default: from the changes, e.g. add_books_pages)."
    ),
) -> None:
    """Bring a generated project up to date with its edited spec (bimpl.yaml, or --spec FILE).

    Files you never touched are replaced; files you edited are merged three ways (conflicts are marked
    <<<<<<< in the file); .git, .env, the database, node_modules and your own files are never touched. A
    schema change becomes the next migration in drizzle/ (with its down migration); earlier migrations are
    never rewritten. Exit 0 updated, 1 refused or conflicts to resolve."""
    import re

    from backend_implementor.generate.project import SPEC_FILE, is_project

    if not project.is_dir():
        _fail(f"{project}: no such folder")
    if not is_project(project):
        _fail(
            f"{project}: not a bimpl project (no .bimpl/manifest.json); `bimpl new SPEC -o DIR` creates one"
        )
    if name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,59}", name):
        _fail(f"--name {name!r}: use lowercase letters, digits and underscores (at most 60)")
    source = spec if spec is not None else project / SPEC_FILE
    if not source.is_file():
        _fail(f"{source}: no spec to update from (pass --spec FILE)")
    model, text = _load(source)
    written = spec is not None and source.absolute() != (project / SPEC_FILE).absolute()
    _update(project, model, text, spec_written=written, spec_label=str(source), dry_run=dry_run,
            allow_destructive=allow_destructive, name=name)  # fmt: skip


def _update(
    project: Path,
    model: Spec,
    text: bytes,
    *,
    spec_written: bool,
    spec_label: str,
    dry_run: bool = False,
    allow_destructive: bool = False,
    name: str | None = None,
) -> None:
    from backend_implementor.generate import GenerateError, update_project
    from backend_implementor.generate.project import UpdateRefused, plan_diff

    try:
        plan = update_project(project, model, text, spec_written=spec_written,
                              allow_destructive=allow_destructive, migration_name=name, dry_run=dry_run)  # fmt: skip
    except UpdateRefused as exc:
        _fail(str(exc))
    except GenerateError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot update {project}: {exc.strerror or exc} (nothing was changed)")
    if dry_run:
        diff = plan_diff(plan)
        if diff:
            typer.echo(diff, nl=False)
    _summary(plan, project, spec_label, dry_run)
    if plan.conflicts and not dry_run:
        raise typer.Exit(1)


def _summary(plan: Plan, project: Path, spec_label: str, dry_run: bool) -> None:
    from backend_implementor.generate.project import KINDS

    verb = "Would update" if dry_run else "Updated"
    typer.echo(f"{verb} {plan.spec.name} in {project} from {spec_label}")
    if plan.spec_written:
        typer.echo(f"  bimpl.yaml {'would be' if dry_run else 'is now'} a copy of {spec_label}")
    m = plan.migration
    if m is None:
        typer.echo("  schema: no change, no migration")
    else:
        typer.echo(f"  migration drizzle/{m.tag}.sql (down: drizzle/down/{m.tag}.sql)")
        for c in m.changes:
            if c.slug:
                typer.echo(
                    f"    {c.summary}" + (f"  [destructive: {c.destructive}]" if c.destructive else "")
                )
    width = max(len(k) for k in KINDS)
    changed = False
    for kind in KINDS:
        actions = plan.by_kind(kind)
        if not actions:
            continue
        changed = True
        typer.echo(f"  {kind:<{width}} {len(actions):>3}")
        for a in actions:
            typer.echo(f"      {a.path}" + (f"  ({a.why})" if a.why else ""))
    if not changed and m is None:
        typer.echo("  files: already up to date")
    if plan.conflicts and not dry_run:
        typer.echo(
            f"{len(plan.conflicts)} file(s) have conflicts: resolve the <<<<<<< ||||||| ======= >>>>>>> "
            "blocks (yours, last generated, bimpl's), then run npm test.",
            err=True,
        )
    elif not dry_run:
        typer.echo(
            "Next: npm ci --ignore-scripts && npm test (migrations apply at start, or npm run db:migrate)"
        )
