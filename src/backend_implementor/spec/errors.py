"""Spec errors: every problem names the file, line, column and key path, never a traceback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathT = tuple[str | int, ...]


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# Control characters and Unicode line breaks: printed escaped so one issue is always one line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def format_path(path: Sequence[str | int]) -> str:
    """('resources', 'books', 'filters', 2) -> 'resources.books.filters[2]'; odd keys are quoted:
    ('resources', 'my books') -> 'resources["my books"]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: json.dumps(m.group())[1:-1], text)


@dataclass(frozen=True, order=True)
class SpecIssue:
    file: str
    line: int | None  # 1-based; None when the problem is not in the document (missing file, bad encoding)
    column: int | None  # 1-based
    path: str  # dotted key path, '' for the whole document
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return _printable(text)


class SpecError(Exception):
    """Raised by `load_spec`; `issues` holds every problem found, sorted by position."""

    def __init__(self, issues: Iterable[SpecIssue]):
        self.issues: list[SpecIssue] = sorted(set(issues), key=_sort_key)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


def _sort_key(i: SpecIssue) -> tuple[str, int, int, str, str]:
    return (i.file, i.line or 0, i.column or 0, i.path, i.message)
