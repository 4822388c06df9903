"""How a run looks in the terminal: one block per step, then the summary and the checklist."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from backend_implementor.agent.definition import AgentDefinition
from backend_implementor.agent.loop import StepEvent
from backend_implementor.agent.run import Observer, RunResult
from backend_implementor.models.base import ToolCall
from backend_implementor.verify.cli import StageProgress


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call_label(name: str, arguments: dict) -> str:
    if name == "finish":
        return "finish"
    if name == "bash":
        return f"$ {arguments.get('command', '')}"
    if "path" in arguments:
        return f"{name} {arguments['path']}"
    return f"{name} {json.dumps(arguments, ensure_ascii=False)}"


class RunDisplay(Observer):
    def __init__(self, console: Console, verbose: bool = False):
        self.console = console
        self.verbose = verbose
        self._spinner: Status | None = None  # while a tool call runs
        self._label = ""
        self._stages = StageProgress(console)  # while verify runs (tool or finish gate)

    def call(self, call: ToolCall) -> None:
        self._quiet()
        label = (
            "finish: bimpl verify must pass first"
            if call.name == "finish"
            else _call_label(call.name, call.arguments)
        )
        self._label = _clip(label, 100)
        self._spinner = self.console.status(escape(self._label))
        self._spinner.start()

    def verify(self, event: str, stage: str, data) -> None:
        if self._spinner is not None:  # one live display at a time: verify's own spinner takes over
            self._spinner.stop()
            self._spinner = None
            self.console.print(f"[bold blue]→[/bold blue] {escape(self._label)}")  # what the stages belong to
        self._stages(event, stage, data)

    def _quiet(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        self._stages.stop()

    def ready(self, run_id: str, definition: AgentDefinition, options, state) -> None:
        resumed = f", resuming at step {state.steps + 1}" if options.resume else ""
        self.console.print(
            f"[bold]bimpl run[/bold] {run_id} · agent [cyan]{definition.name}[/cyan] · model "
            f"[cyan]{escape(options.model)}[/cyan]{resumed}"
        )

    def step(self, event: StepEvent) -> None:
        self._quiet()
        c = self.console
        c.print(f"[dim]── step {event.step}[/dim]")
        if event.note:
            c.print(f"[yellow]{escape(event.note)}[/yellow]")
        if event.response and event.response.text.strip():
            c.print(escape(_clip(event.response.text, 2000 if self.verbose else 400)))
        for call, observation, ok in event.results:
            c.print(f"[bold blue]→[/bold blue] {escape(_clip(_call_label(call.name, call.arguments), 200))}")
            style = "dim" if ok else "red"
            c.print(f"[{style}]{escape(_clip(observation, 4000 if self.verbose else 300))}[/{style}]")

    def summary(self, result: RunResult) -> None:
        self._quiet()
        c = self.console
        colour = "green" if result.exit_status == "finished" else "red"
        c.print()
        c.print(f"[bold {colour}]{result.exit_status}[/bold {colour}]: {escape(_clip(result.message, 2000))}")
        c.print(
            f"steps {result.steps} · tokens {result.prompt_tokens:,} in / {result.completion_tokens:,} out · "
            f"cost ${result.cost:.4f} · {result.elapsed:.1f} s"
        )
        if result.files:
            table = Table("file", "change", "+", "-", title="Files changed", title_justify="left")
            for f in result.files:
                table.add_row(escape(f.path), f.status, f"+{f.added}", f"-{f.removed}")
            c.print(table)
        else:
            c.print("No files changed.")
        if result.deliverables:
            table = Table(
                "deliverable",
                "status",
                "evidence",
                "agent's note",
                title="Deliverables",
                title_justify="left",
            )
            for d in result.deliverables:
                status = "[green]produced[/green]" if d.produced else "[red]missing[/red]"
                evidence = ", ".join(d.files[:4]) + (f" (+{len(d.files) - 4})" if len(d.files) > 4 else "")
                table.add_row(
                    d.key,
                    status,
                    escape(evidence or "no matching files changed"),
                    escape(_clip(d.claim, 120)),
                )
            c.print(table)
        if result.verification:
            c.print(f"[bold]Last verify[/bold]\n{escape(result.verification)}")
        c.print(f"[dim]trajectory: {result.run_dir / 'trajectory.jsonl'}[/dim]")
        if result.exit_status != "finished":
            c.print(f"[dim]continue with: bimpl run --resume {result.run_id}[/dim]")
