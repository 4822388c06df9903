"""Spec -> project generation. `generate_project` is the API the CLI (`bimpl new`) and the agent use."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from backend_implementor.generate.errors import GenerateError, OutputDirError

if TYPE_CHECKING:
    from backend_implementor.spec.model import Spec

__all__ = ["GenerateError", "OutputDirError", "generate_project", "render_project"]


def render_project(spec: Spec) -> dict[str, bytes]:
    """Every file of the Express project for `spec`, by relative POSIX path (deterministic)."""
    from backend_implementor.generate.express.render import render_files

    return render_files(spec)


def generate_project(spec: Spec, out_dir: str | os.PathLike[str], force: bool = False) -> list[Path]:
    """Writes the project into out_dir and returns the written paths (relative, sorted).

    Refuses a non-empty out_dir unless force (which replaces it). Writes atomically: everything goes
    to a temporary directory beside out_dir that is renamed into place, so a failure never leaves a
    half-written project.
    """
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputDirError(f"{out}: directory is not empty (use --force to replace it)")
    files = render_project(spec)  # render fully before touching the disk
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "dir")
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [Path(p) for p in files]
