"""load_spec: file -> validated `Spec`, or a `SpecError` listing every problem with file:line: path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backend_implementor.spec.errors import SpecError, SpecIssue, format_path
from backend_implementor.spec.model import Spec
from backend_implementor.spec.source import Marks, parse_yaml

MAX_BYTES = 2_000_000


def check_text(text: str, file: str = "<string>") -> tuple[Spec | None, list[SpecIssue]]:
    """Validate spec text. Returns (spec, []) or (None, issues) — never raises for bad input."""
    data, marks, issues = parse_yaml(text, file)
    if issues:
        return None, issues
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        return None, [
            SpecIssue(file, 1, 1, "", f"a spec must be a mapping (name, auth, resources), got {kind}")
        ]
    from backend_implementor.spec.schema import schema_issues
    from backend_implementor.spec.semantic import semantic_issues

    issues = schema_issues(data, marks, file)
    if issues:
        return None, issues
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:  # the JSON Schema should have caught these; report, never traceback
        return None, _pydantic_issues(exc, marks, file)
    issues = semantic_issues(spec, data, marks, file)
    if issues:
        return None, issues
    return spec, []


def check_file(path: str | Path) -> tuple[Spec | None, list[SpecIssue]]:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [SpecIssue(file, None, None, "", f"cannot read: {exc.strerror or exc}")]
    if len(raw) > MAX_BYTES:
        return None, [
            SpecIssue(file, None, None, "", f"file too large ({len(raw)} bytes, limit {MAX_BYTES})")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [SpecIssue(file, line, None, "", "not valid UTF-8 text")]
    return check_text(text, file)


def load_spec(path: str | Path) -> Spec:
    """Load and fully validate a spec file; raises `SpecError` (never anything else) on bad input."""
    spec, issues = check_file(path)
    if spec is None:
        raise SpecError(issues)
    return spec


def load_spec_text(text: str, file: str = "<string>") -> Spec:
    spec, issues = check_text(text, file)
    if spec is None:
        raise SpecError(issues)
    return spec


def _pydantic_issues(exc: ValidationError, marks: Marks, file: str) -> list[SpecIssue]:
    out = []
    for err in exc.errors(include_url=False):
        loc: tuple[Any, ...] = tuple(p for p in err["loc"] if isinstance(p, str | int))
        line, col = marks.find(loc)
        out.append(SpecIssue(file, line, col, format_path(loc), err["msg"]))
    return out
