"""Spec errors: every problem names the file, line, column and key path, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathT = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """('resources', 'books', 'filters', 2) -> 'resources.books.filters[2]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass(frozen=True, order=True)
class SpecIssue:
    file: str
    line: int | None  # 1-based; None when the problem is not in the document (missing file, bad encoding)
    column: int | None  # 1-based
    path: str  # dotted key path, '' for the whole document
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(Exception):
    """Raised by `load_spec`; `issues` holds every problem found, sorted by position."""

    def __init__(self, issues: Iterable[SpecIssue]):
        self.issues: list[SpecIssue] = sorted(set(issues), key=_sort_key)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


def _sort_key(i: SpecIssue) -> tuple[str, int, int, str, str]:
    return (i.file, i.line or 0, i.column or 0, i.path, i.message)
