"""Spec -> project generation. `generate_project` (`bimpl new`) and `update_project` (`bimpl update`) are
the API the CLI and the agent use; project.py keeps a project's history (manifest, merge base)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from backend_implementor.generate.errors import GenerateError, OutputDirError

if TYPE_CHECKING:
    from backend_implementor.generate.project import Plan
    from backend_implementor.spec.model import Spec

__all__ = ["GenerateError", "OutputDirError", "generate_project", "new_project_files", "render_project"]

# What a folder may already hold for `bimpl new` to write into it: a fresh repository, the spec itself.
_ALLOWED_IN_NEW = {".git", "LICENSE"}


def render_project(spec: Spec) -> dict[str, bytes]:
    """Every file of the Express project for `spec`, by relative POSIX path (deterministic)."""
    from backend_implementor.generate.express.render import render_files

    return render_files(spec)


def spec_yaml(spec: Spec) -> bytes:
    """The spec as YAML, for a project made from a Spec object rather than a file (keys as the author set them)."""
    import yaml

    data = spec.model_dump(mode="json", exclude_unset=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


def new_project_files(spec: Spec, spec_text: bytes | None = None) -> dict[str, bytes]:
    """A new project: the render, its spec as bimpl.yaml, and the manifest and merge base of what was generated."""
    from backend_implementor.generate.project import BASE, MANIFEST, SPEC_FILE, state_for

    spec_text = spec_text if spec_text is not None else spec_yaml(spec)

    files = render_project(spec)
    state = state_for(files, spec_text)
    return {**files, SPEC_FILE: spec_text, MANIFEST: state.manifest_bytes(), BASE: state.base_bytes()}


def generate_project(
    spec: Spec,
    out_dir: str | os.PathLike[str],
    spec_text: bytes | None = None,
    spec_path: Path | None = None,
) -> list[Path]:
    """Writes a new project into out_dir and returns the written paths (relative, sorted).

    out_dir must be missing, empty, or hold only a fresh repository and the spec: bimpl never writes over
    what it did not make (an existing bimpl project is for `update_project`). Writes atomically: a failure
    never leaves a half-written project.
    """
    from backend_implementor.generate.project import apply, is_project

    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{out}: exists and is not a directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and is_project(out):
        raise OutputDirError(
            f"{out}: already a bimpl project; bring it up to date with `bimpl update {out_dir} --spec SPEC` "
            "(or `bimpl new --force`, which does the same)"
        )
    files = new_project_files(spec, spec_text)  # render fully before touching the disk
    own_spec = spec_path.absolute() if spec_path else None
    foreign = [e for e in entries if e not in _ALLOWED_IN_NEW and not (own_spec and own_spec == out / e)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputDirError(
            f"{out}: not empty ({shown}) and not a bimpl project; bimpl writes a new project only into an "
            "empty folder and never over files it did not make. Nothing was changed; choose a new folder."
        )
    if entries:
        clashes = [p for p in files if (out / p).exists() and (out / p).read_bytes() != files[p]]
        if clashes:
            raise OutputDirError(
                f"{out}: {', '.join(clashes)} already exist(s); bimpl will not overwrite them. Nothing was "
                "changed; move them away or choose a new folder."
            )
        apply(out, {p: d for p, d in files.items() if not (out / p).exists()})
        return [Path(p) for p in files]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            out.rmdir()  # empty (checked above); the rename below puts the project in its place
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [Path(p) for p in files]


def update_project(
    root: str | os.PathLike[str],
    spec: Spec,
    spec_text: bytes,
    *,
    spec_written: bool = False,
    allow_destructive: bool = False,
    migration_name: str | None = None,
    dry_run: bool = False,
) -> Plan:
    """Brings a bimpl project up to date with `spec` (see project.py); with dry_run, only plans."""
    from backend_implementor.generate.project import apply, plan_update

    plan = plan_update(
        Path(root).absolute(),
        spec,
        spec_text,
        spec_written=spec_written,
        allow_destructive=allow_destructive,
        migration_name=migration_name,
    )
    if not dry_run:
        apply(plan.root, plan.writes())
    return plan
