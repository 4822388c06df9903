"""What a run changed in the workspace: a baseline snapshot at the start, a diff at the end.

Tools are not the only writers (bash runs generators, npm, git), so the workspace itself is compared,
not a log of tool calls. The baseline is kept in the run folder so a resumed run reports against the
original state.
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from backend_implementor.atomic import write_bytes_atomic

SKIP_DIRS = {
    ".git",
    "node_modules",
    ".bimpl",
    "dist",
    "build",
    "coverage",
    ".venv",
    "__pycache__",
    ".next",
    ".turbo",
}
MAX_TEXT_BYTES = 1_000_000
MAX_FILES = 20_000


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added" | "modified" | "deleted"
    added: int  # lines; 0 for binary files
    removed: int


def _walk(workspace: Path):
    count = 0
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            full = Path(root, name)
            if full.is_symlink() or not full.is_file():
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield full.relative_to(workspace).as_posix(), full


def _entry(path: Path) -> dict:
    data = path.read_bytes()
    entry = {"sha256": hashlib.sha256(data).hexdigest()}
    if len(data) <= MAX_TEXT_BYTES and b"\0" not in data:
        with contextlib.suppress(UnicodeDecodeError):
            entry["text"] = data.decode("utf-8")
    return entry


def snapshot(workspace: Path) -> dict[str, dict]:
    result = {}
    for rel, full in _walk(workspace):
        try:
            result[rel] = _entry(full)
        except OSError:
            continue
    return result


def save_baseline(snap: dict[str, dict], run_dir: Path) -> None:
    write_bytes_atomic(run_dir / "baseline.json.gz", gzip.compress(json.dumps(snap).encode("utf-8")))


def load_baseline(run_dir: Path) -> dict[str, dict]:
    try:
        with gzip.open(run_dir / "baseline.json.gz", "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _line_counts(before: str | None, after: str | None) -> tuple[int, int]:
    if before is None or after is None:
        lines = (after if after is not None else before) or ""
        n = len(lines.splitlines())
        return (n, 0) if after is not None else (0, n)
    added = removed = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def diff(baseline: dict[str, dict], workspace: Path) -> list[FileChange]:
    current = snapshot(workspace)
    changes = []
    for rel in sorted(baseline.keys() | current.keys()):
        old, new = baseline.get(rel), current.get(rel)
        if old and new and old["sha256"] == new["sha256"]:
            continue
        status = "added" if old is None else "deleted" if new is None else "modified"
        before = old.get("text") if old else None
        after = new.get("text") if new else None
        if (old and before is None) or (new and after is None):  # binary or huge: no line counts
            added, removed = 0, 0
        else:
            added, removed = _line_counts(before, after)
        changes.append(FileChange(rel, status, added, removed))
    return changes
