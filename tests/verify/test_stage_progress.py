"""The verify progress display when a stage (the tests) runs beside others."""

from __future__ import annotations

from rich.console import Console

from backend_implementor.verify.cli import StageProgress
from backend_implementor.verify.report import StageResult


def test_overlapping_stages_keep_a_spinner_until_the_last_ends() -> None:
    console = Console(record=True, width=120, force_terminal=False)
    progress = StageProgress(console)
    progress("start", "test", None)
    progress("start", "build", None)
    progress("note", "test", "vitest running")
    assert list(progress.running) == ["test", "build"] and progress.status is not None

    progress("end", "build", StageResult("build", "passed", 4.2, "npm run build"))
    assert progress.running == {"test": "vitest running"} and progress.status is not None
    progress("end", "test", StageResult("test", "passed", 9.5, "92 passed"))
    assert progress.running == {} and progress.status is None

    lines = [line for line in console.export_text().splitlines() if line.strip()]
    assert [line.split()[1] for line in lines] == ["build", "test"]
    assert "4.2s" in lines[0] and "92 passed" in lines[1]


def test_stop_clears_whatever_still_runs() -> None:
    progress = StageProgress(Console(record=True, force_terminal=False))
    progress("start", "boot", None)
    progress.stop()
    assert progress.running == {} and progress.status is None
