"""Per-test results from the JSON reporters of vitest (`--reporter=json`) and jest (`--json`).

Both write the same jest-shaped document: testResults[] (one per file) with assertionResults[] (one per
test). A file that failed to load has no assertions and a message: it counts as one failure."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ReporterError(Exception):
    """The reporter's file is missing or not the expected shape."""


@dataclass
class TestFailure:
    __test__ = False  # not a pytest class
    name: str  # "books › rejects bad isbn"
    file: str  # relative to the project when possible
    message: str  # first lines of the failure message


@dataclass
class TestSummary:
    __test__ = False
    runner: str | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0  # skipped, pending and todo
    total: int = 0
    failures: list[TestFailure] = field(default_factory=list)
    source: str = "none"  # "reporter-json" | "exit-code" | "none"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _short(message: str, lines: int = 6, chars: int = 600) -> str:
    text = _ANSI.sub("", message).strip()
    return "\n".join(text.splitlines()[:lines])[:chars]


def _rel(name: str, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(name).resolve().relative_to(root.resolve()))
        except (ValueError, OSError):
            pass
    return name


def parse_jest_json(data: Any, *, runner: str, root: Path | None = None) -> TestSummary:
    if not isinstance(data, dict) or not isinstance(data.get("testResults"), list):
        raise ReporterError("not a jest/vitest JSON report (no testResults list)")
    summary = TestSummary(runner=runner, source="reporter-json")
    for file_result in data["testResults"]:
        if not isinstance(file_result, dict):
            continue
        fname = _rel(str(file_result.get("name", "?")), root)
        assertions = file_result.get("assertionResults") or []
        for a in assertions:
            if not isinstance(a, dict):
                continue
            status = a.get("status")
            if status == "passed":
                summary.passed += 1
            elif status == "failed":
                summary.failed += 1
                titles = [*(a.get("ancestorTitles") or []), a.get("title") or a.get("fullName") or "?"]
                msgs = a.get("failureMessages") or []
                summary.failures.append(
                    TestFailure(
                        " › ".join(str(t) for t in titles if t), fname, _short(str(msgs[0]) if msgs else "")
                    )
                )
            else:  # skipped, pending, todo, disabled
                summary.skipped += 1
        if not assertions and file_result.get("status") == "failed":
            # The file did not load (syntax error, missing import): no test in it ran.
            summary.failed += 1
            summary.failures.append(
                TestFailure("(test file failed to run)", fname, _short(str(file_result.get("message") or "")))
            )
    summary.total = summary.passed + summary.failed + summary.skipped
    return summary


def parse_report_file(path: Path, *, runner: str, root: Path | None = None) -> TestSummary:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReporterError(f"{runner} wrote no JSON report ({path.name}): {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReporterError(f"{path.name}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    return parse_jest_json(data, runner=runner, root=root)


def reporter_args(runner: str, out_file: Path) -> list[str]:
    if runner == "vitest":
        return ["--reporter=json", f"--outputFile={out_file}"]
    if runner == "jest":
        return ["--json", f"--outputFile={out_file}"]
    raise ValueError(runner)
