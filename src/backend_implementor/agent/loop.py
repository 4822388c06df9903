"""The agent loop: ask the model, run its tool calls, append the observations, repeat.

Linear on purpose. Every way a run ends is an `AgentExit` raised from inside a step; `run` catches
it once, writes the end record and returns the result.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
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
ARGUMENT_KEEP = 100_000  # chars of one tool-call argument kept in the history and the trajectory
OBSERVATION_KEEP = 100_000  # chars of one observation


class ToolTimeLimit(BaseException):
    """Raised inside a running tool when its wall time or the run's time is up. A BaseException, like
    KeyboardInterrupt: tools clean up (kill their process groups) and re-raise, nothing swallows it."""


@contextmanager
def _alarm(seconds: float):
    """Raise ToolTimeLimit in this thread after `seconds`. Only the main thread receives signals; a loop
    run elsewhere (a test's thread) relies on each tool's own timeouts."""
    if seconds == float("inf") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum, frame):
        raise ToolTimeLimit

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def elide(text: str, keep: int) -> str:
    """`text` cut to about `keep` chars, head and tail kept, saying how much was left out."""
    if len(text) <= keep:
        return text
    head, tail = text[: keep // 2], text[len(text) - keep // 4 :]
    return f"{head}\n[... {len(text) - len(head) - len(tail):,} chars elided ...]\n{tail}"


def _kept_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: elide(v, ARGUMENT_KEEP) if isinstance(v, str) else v for k, v in arguments.items()}


@dataclass
class Limits:
    max_steps: int = 100
    max_cost: float = 5.0  # USD
    max_time: float = 3600.0  # seconds of wall time, summed over resumes
    max_format_errors: int = 3  # consecutive
    max_verify_failures: int = 2  # refused finishes before the run ends as `unverified`
    max_calls_per_turn: int = 25  # tool calls past this in one reply are answered "not run"


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


INTERRUPTED = (
    "Interrupted: the run stopped while this call was running, so it may have partly run. Check its "
    "effects (files, processes, the database) before repeating it."
)


def interrupted_step(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step record to append on resume when the run died running a step's tool calls: its
    assistant message, and every call answered as interrupted. None when the last step completed."""
    pending, last = None, None
    for record in records:
        if record.get("type") == "pending":
            pending = record
        elif record.get("type") == "step":
            last = record
            if pending is not None and record["step"] >= pending["step"]:
                pending = None
    if pending is None:
        return None
    message = pending["message"]
    usage = Usage(**pending.get("usage", {}))
    total = Usage(**last["usage_total"]) if last else Usage()
    total.add(usage)
    answers = [
        {"role": "tool", "tool_call_id": c["id"], "name": c["function"]["name"], "content": INTERRUPTED}
        for c in message.get("tool_calls") or []
    ]
    return {
        "type": "step",
        "step": pending["step"],
        "messages": [message, *answers],
        "usage": vars(usage),
        "usage_total": vars(total),
        "elapsed": last["elapsed"] if last else 0.0,
        "format_errors": 0,
        "verify_failures": last.get("verify_failures", 0) if last else 0,
        "fingerprint": f"interrupted:{pending['step']}",
        "interrupted": True,
    }


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
        self._deadline = float("inf")  # monotonic time the run's max_time ends; set by run()

    def run(self, state: RunState) -> tuple[AgentExit, RunState]:
        started = time.monotonic()
        base_elapsed = state.elapsed
        self._deadline = started + self.limits.max_time - base_elapsed
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

        calls = [ToolCall(c.id, c.name, _kept_arguments(c.arguments)) for c in response.tool_calls]
        new: list[dict[str, Any]] = [ModelResponse(response.text, calls, response.usage).assistant_message()]
        if calls:  # a run killed while they run resumes knowing they may have partly run
            self.trajectory.append(
                {"type": "pending", "step": step, "message": new[0], "usage": vars(response.usage)}
            )
        results: list[tuple[ToolCall, str, bool]] = []
        finish: Finished | None = None
        finish_called = False
        for index, (call, kept) in enumerate(zip(response.tool_calls, calls, strict=True)):
            if finish_called:
                observation, ok = "Not run: it came after `finish` in the same reply.", False
            elif index >= self.limits.max_calls_per_turn:
                observation, ok = (
                    f"Not run: at most {self.limits.max_calls_per_turn} tool calls are run per reply; "
                    "make the rest in your next reply.",
                    False,
                )
            elif call.name == "finish":
                self.on_call(call)
                finish_called = True
                finish, observation, ok = self._finish(call, state)
            else:
                self.on_call(call)
                observation, ok = self._execute(call)
            observation = elide(observation, OBSERVATION_KEEP)
            results.append((kept, observation, ok))
            new.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": observation})
        if not response.tool_calls:
            new.append({"role": "user", "content": NO_TOOL_CALL})

        fingerprint = hashlib.sha256(
            json.dumps(
                [
                    response.text if not response.tool_calls else "",
                    [(c.name, c.arguments, o) for c, o, _ in results],
                ],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
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
        deliverables = call.arguments.get("deliverables", {})
        if not isinstance(summary, str) or not summary.strip():
            return None, "Error: finish needs `summary`, a non-empty string; the run goes on.", False
        if not isinstance(deliverables, dict) or not all(isinstance(v, str) for v in deliverables.values()):
            return None, "Error: finish `deliverables` must map each key to a string; the run goes on.", False
        try:
            with _alarm(self._deadline - time.monotonic()):
                problem = self.gate() if self.gate else None
        except ToolTimeLimit:
            raise LimitsExceeded(
                f"time limit reached ({self.limits.max_time:.0f} s) while verifying the finish"
            ) from None
        if problem is None:
            return Finished(summary, dict(deliverables)), "Run finished.", True
        state.verify_failures += 1
        if state.verify_failures > self.limits.max_verify_failures:
            note = f"verify still fails after {state.verify_failures} attempts to finish"
            return (
                Unverified(f"{summary}\n({note})", dict(deliverables)),
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
        left = self._deadline - time.monotonic()
        limit = tool.time_limit(call.arguments)
        try:
            with _alarm(min(limit, left)):
                return tool(call.arguments), True
        except ToolTimeLimit:
            if left <= limit:
                return (
                    f"Error: the {call.name} call was stopped: the run's time limit "
                    f"({self.limits.max_time:.0f} s) was reached while it ran.",
                    False,
                )
            return f"Error: the {call.name} call was stopped after {limit:g} s, its time limit.", False
        except ToolError as exc:
            return f"Error: {exc}", False
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bug in a tool must not kill the run; the model sees it and moves on
            return f"Error: the {call.name} tool failed unexpectedly: {type(exc).__name__}: {exc}", False
