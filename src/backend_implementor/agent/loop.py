"""The agent loop: ask the model, run its tool calls, append the observations, repeat.

Linear on purpose. Every way a run ends is an `AgentExit` raised from inside a step; `run` catches
it once, writes the end record and returns the result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend_implementor.agent.approval import Approver
from backend_implementor.agent.errors import (
    AgentExit,
    Finished,
    FormatErrorLimit,
    Interrupted,
    LimitsExceeded,
    ModelFailed,
    ScriptEnded,
    StuckDetected,
    Unverified,
)
from backend_implementor.agent.trajectory import Trajectory
from backend_implementor.models.base import (
    FormatError,
    Model,
    ModelError,
    ModelResponse,
    ScriptExhausted,
    ToolCall,
    ToolSpec,
    Usage,
)
from backend_implementor.tools.base import Tool, ToolError

FINISH_SPEC = ToolSpec(
    name="finish",
    description=(
        "End the run. Call it only when the work is complete and you have run the build and the tests. "
        "`summary`: what you built and how you checked it (commands and results). `deliverables`: for "
        "each expected deliverable key, what you produced (files, endpoints, tables, tests)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "deliverables": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["summary"],
    },
)

NO_TOOL_CALL = (
    "Your reply had no tool call. Continue with a tool call, or call `finish` with a summary if the work "
    "is complete."
)
STUCK_REPEATS = 3


@dataclass
class Limits:
    max_steps: int = 100
    max_cost: float = 5.0  # USD
    max_time: float = 3600.0  # seconds of wall time, summed over resumes
    max_format_errors: int = 3  # consecutive
    max_verify_failures: int = 2  # refused finishes before the run ends as `unverified`


@dataclass
class RunState:
    """Everything needed to continue a run; rebuilt from the trajectory on resume."""

    messages: list[dict[str, Any]]
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    elapsed: float = 0.0
    format_errors: int = 0
    verify_failures: int = 0
    recent: list[str] = field(default_factory=list)  # fingerprints of the last steps, for stuck detection

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> RunState:
        start = records[0]
        state = cls(messages=list(start["messages"]))
        for record in records[1:]:
            if record.get("type") != "step":
                continue
            state.messages.extend(record["messages"])
            state.steps = record["step"]
            state.usage = Usage(**record["usage_total"])
            state.elapsed = record["elapsed"]
            state.format_errors = record.get("format_errors", 0)
            state.verify_failures = record.get("verify_failures", 0)
            state.recent = (state.recent + [record["fingerprint"]])[-STUCK_REPEATS:]
        return state


@dataclass
class StepEvent:
    """What the display shows after a step."""

    step: int
    response: ModelResponse | None
    results: list[tuple[ToolCall, str, bool]]  # call, observation, ok
    note: str = ""


class Agent:
    def __init__(
        self,
        model: Model,
        tools: dict[str, Tool],
        trajectory: Trajectory,
        limits: Limits,
        approver: Approver,
        on_step: Callable[[StepEvent], None] | None = None,
        gate: Callable[[], str | None] | None = None,
        on_call: Callable[[ToolCall], None] | None = None,
    ):
        self.model = model
        self.tools = tools
        self.trajectory = trajectory
        self.limits = limits
        self.approver = approver
        self.on_step = on_step or (lambda event: None)
        self.on_call = on_call or (lambda call: None)  # before a call runs: long calls can show progress
        # Runs before a finish is accepted: None when the work passes, else what the model must fix.
        self.gate = gate
        self.specs = [tool.spec() for tool in tools.values()] + [FINISH_SPEC]

    def run(self, state: RunState) -> tuple[AgentExit, RunState]:
        started = time.monotonic()
        base_elapsed = state.elapsed
        try:
            while True:
                state.elapsed = base_elapsed + time.monotonic() - started
                self._check_limits(state)
                self._step(state, lambda: base_elapsed + time.monotonic() - started)
        except AgentExit as exit_:
            outcome = exit_
        except KeyboardInterrupt:
            outcome = Interrupted("interrupted by the user (resume with --resume)")
        state.elapsed = base_elapsed + time.monotonic() - started
        return outcome, state

    def _check_limits(self, state: RunState) -> None:
        if state.steps >= self.limits.max_steps:
            raise LimitsExceeded(f"step limit reached ({self.limits.max_steps} steps)")
        if state.usage.cost >= self.limits.max_cost:
            raise LimitsExceeded(
                f"cost limit reached (${state.usage.cost:.4f} of ${self.limits.max_cost:.2f})"
            )
        if state.elapsed >= self.limits.max_time:
            raise LimitsExceeded(
                f"time limit reached ({state.elapsed:.0f} s of {self.limits.max_time:.0f} s)"
            )

    def _step(self, state: RunState, clock: Callable[[], float]) -> None:
        step = state.steps + 1
        try:
            response = self.model.query(state.messages, self.specs)
        except FormatError as exc:
            state.format_errors += 1
            new = [
                {"role": "assistant", "content": exc.raw or "(unparseable reply)"},
                {"role": "user", "content": f"Format error: {exc}"},
            ]
            self._record(state, step, new, Usage(), f"format:{exc}", clock)
            self.on_step(StepEvent(step, None, [], note=f"format error: {exc}"))
            if state.format_errors >= self.limits.max_format_errors:
                raise FormatErrorLimit(
                    f"{state.format_errors} malformed replies in a row; last problem: {exc}"
                ) from None
            return
        except ScriptExhausted as exc:
            raise ScriptEnded(str(exc) or "the scripted model has no entries left") from None
        except ModelError as exc:
            raise ModelFailed(str(exc)) from None
        state.format_errors = 0

        new: list[dict[str, Any]] = [response.assistant_message()]
        results: list[tuple[ToolCall, str, bool]] = []
        finish: Finished | None = None
        for call in response.tool_calls:
            self.on_call(call)
            if call.name == "finish":
                finish, observation, ok = self._finish(call, state)
            else:
                observation, ok = self._execute(call)
            results.append((call, observation, ok))
            new.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": observation})
        if not response.tool_calls:
            new.append({"role": "user", "content": NO_TOOL_CALL})

        fingerprint = json.dumps(
            [
                response.text if not response.tool_calls else "",
                [(c.name, c.arguments, o) for c, o, _ in results],
            ],
            sort_keys=True,
            default=str,
        )
        self._record(state, step, new, response.usage, fingerprint, clock)
        self.on_step(StepEvent(step, response, results))
        if finish is not None:
            raise finish
        if len(state.recent) == STUCK_REPEATS and len(set(state.recent)) == 1:
            raise StuckDetected(f"the same action and observation {STUCK_REPEATS} times in a row")

    def _record(
        self, state: RunState, step: int, new: list[dict[str, Any]], usage: Usage, fingerprint: str, clock
    ) -> None:
        state.messages.extend(new)
        state.steps = step
        state.usage.add(usage)
        state.elapsed = clock()
        state.recent = (state.recent + [fingerprint])[-STUCK_REPEATS:]
        self.trajectory.append(
            {
                "type": "step",
                "step": step,
                "messages": new,
                "usage": vars(usage),
                "usage_total": vars(state.usage),
                "elapsed": round(state.elapsed, 3),
                "format_errors": state.format_errors,
                "verify_failures": state.verify_failures,
                "fingerprint": fingerprint,
            }
        )

    def _finish(self, call: ToolCall, state: RunState) -> tuple[Finished | None, str, bool]:
        """The exit to raise once the step is recorded (None: refused), and the observation."""
        summary = call.arguments.get("summary")
        deliverables = call.arguments.get("deliverables") or {}
        if not isinstance(summary, str):
            summary = json.dumps(summary) if summary is not None else "(no summary)"
        claims = {str(k): str(v) for k, v in deliverables.items()} if isinstance(deliverables, dict) else {}
        problem = self.gate() if self.gate else None
        if problem is None:
            return Finished(summary, claims), "Run finished.", True
        state.verify_failures += 1
        if state.verify_failures > self.limits.max_verify_failures:
            note = f"verify still fails after {state.verify_failures} attempts to finish"
            return (
                Unverified(f"{summary}\n({note})", claims),
                f"Run ended unverified: {note}.\n{problem}",
                False,
            )
        left = self.limits.max_verify_failures - state.verify_failures + 1
        return (
            None,
            f"finish refused ({left} more attempt(s) before the run ends unverified):\n{problem}",
            False,
        )

    def _execute(self, call: ToolCall) -> tuple[str, bool]:
        tool = self.tools.get(call.name)
        if tool is None:
            names = ", ".join([*self.tools, "finish"])
            return f"Error: there is no tool named {call.name!r}; available tools: {names}", False
        refusal = self.approver.refusal(call)
        if refusal:
            return refusal, False
        try:
            return tool(call.arguments), True
        except ToolError as exc:
            return f"Error: {exc}", False
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bug in a tool must not kill the run; the model sees it and moves on
            return f"Error: the {call.name} tool failed unexpectedly: {type(exc).__name__}: {exc}", False
