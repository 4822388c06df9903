"""One `bimpl run`: set up the workspace, tools, model and trajectory, run the loop, summarise.

A new run writes a `start` record holding everything needed to continue it (task, definition, model,
limits, the first messages); `--resume` reads it back and carries on from the last complete step.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend_implementor.agent import changes, deliverables
from backend_implementor.agent.approval import Approver
from backend_implementor.agent.definition import AgentDefinition, resolve_definition
from backend_implementor.agent.errors import AgentExit, UsageError
from backend_implementor.agent.loop import Agent, Limits, RunState, StepEvent, interrupted_step
from backend_implementor.agent.trajectory import Trajectory
from backend_implementor.models.base import Model, ToolCall


@dataclass
class RunOptions:
    task: str | None = None
    workspace: Path = field(default_factory=Path.cwd)
    agent: str | None = None
    model: str | None = None
    api_base: str | None = None
    tool_protocol: str = "auto"
    limits: Limits = field(default_factory=Limits)
    approve: str = "yolo"
    deny: list[str] = field(default_factory=list)
    sandbox: str = "none"
    command_timeout: float = 120.0
    resume: str | None = None
    verify: bool = True  # gate `finish` on `bimpl verify` when the workspace is a Node project
    verify_stages: str | None = None  # comma list; None = every stage
    verify_fuzz_time: float = 10.0


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    exit_status: str
    exit_code: int
    message: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    elapsed: float
    files: list[changes.FileChange]
    deliverables: list[deliverables.DeliverableStatus]
    verification: str | None = None  # the last verify digest the finish gate saw; None if it never ran

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data


def build_system_prompt(definition: AgentDefinition, workspace: Path) -> str:
    checklist = "".join(f"- {key}: {text}\n" for key, text in definition.deliverables.items())
    extra = f"\n## Deliverables checklist\nReport on each in `finish`:\n{checklist}" if checklist else ""
    return (
        f"{definition.system_prompt.rstrip()}\n{extra}\n"
        f"## Environment\nThe workspace is {workspace}; every path you give a tool is relative to it. "
        f"Call tools to act; call `finish` when the work is complete.\n"
    )


def _workspace(path: Path) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise UsageError(f"--workspace {path}: no such directory")
    if not path.is_dir():
        raise UsageError(f"--workspace {path}: not a directory")
    return path.resolve()


def _load_model(options: RunOptions) -> Model:
    from backend_implementor.models import ModelError, get_model

    try:
        return get_model(options.model, api_base=options.api_base, tool_protocol=options.tool_protocol)
    except ModelError as exc:
        raise UsageError(f"--model {options.model}: {exc}") from None


def _start(
    options: RunOptions, workspace: Path
) -> tuple[Trajectory, AgentDefinition, RunOptions, RunState, Model]:
    if not options.task or not options.task.strip():
        raise UsageError('no task given: bimpl run "add a /health endpoint"')
    definition = resolve_definition(options.agent, workspace)
    model = options.model or definition.model or os.environ.get("BIMPL_MODEL")
    if not model:
        raise UsageError(
            "no model: pass --model (e.g. anthropic/claude-sonnet-4-5, openai/gpt-5, scripted:FILE) or set BIMPL_MODEL"
        )
    options.model = model
    model_ = _load_model(options)  # fail on a bad model before a run folder is made
    if definition.max_turns and options.limits.max_steps == Limits().max_steps:
        options.limits.max_steps = definition.max_turns
    trajectory = Trajectory.create(workspace, os.environ)
    changes.save_baseline(changes.snapshot(workspace), trajectory.run_dir)
    messages = [
        {"role": "system", "content": build_system_prompt(definition, workspace)},
        {"role": "user", "content": options.task},
    ]
    trajectory.append(
        {
            "type": "start",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "task": options.task,
            "workspace": str(workspace),
            "definition": asdict(definition),
            "options": {
                "model": model,
                "api_base": options.api_base,
                "tool_protocol": options.tool_protocol,
                "limits": asdict(options.limits),
                "approve": options.approve,
                "deny": options.deny,
                "sandbox": options.sandbox,
                "command_timeout": options.command_timeout,
                "verify": options.verify,
                "verify_stages": options.verify_stages,
                "verify_fuzz_time": options.verify_fuzz_time,
            },
            "messages": messages,
        }
    )
    return trajectory, definition, options, RunState(messages=messages), model_


def _resume(
    options: RunOptions, workspace: Path
) -> tuple[Trajectory, AgentDefinition, RunOptions, RunState, Model]:
    assert options.resume
    trajectory = Trajectory.open(workspace, options.resume, os.environ)
    records = trajectory.records()
    if not records or records[0].get("type") != "start":
        raise UsageError(
            f"--resume {options.resume}: the trajectory has no start record; it cannot be resumed"
        )
    ends = [r for r in records if r.get("type") == "end"]
    if ends and ends[-1].get("exit_status") == "finished":
        raise UsageError(f"--resume {options.resume}: that run already finished; start a new run instead")
    start = records[0]
    saved = start["options"]
    definition = AgentDefinition(**start["definition"])
    # Flags given now override what the run started with (e.g. raise a limit, point at another server).
    options.task = start["task"]
    options.model = options.model or saved["model"]
    options.api_base = options.api_base or saved["api_base"]
    if options.tool_protocol == "auto":
        options.tool_protocol = saved["tool_protocol"]
    default_limits = asdict(Limits())
    options.limits = Limits(
        **{
            k: v if v != default_limits[k] else saved["limits"].get(k, v)  # runs saved before a limit existed
            for k, v in asdict(options.limits).items()
        }
    )
    options.sandbox = options.sandbox if options.sandbox != "none" else saved["sandbox"]
    options.deny = options.deny or saved["deny"]
    options.verify = options.verify and saved.get("verify", True)
    options.verify_stages = options.verify_stages or saved.get("verify_stages")
    model_ = _load_model(options)
    trajectory.append({"type": "resume", "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    interrupted = interrupted_step(records)
    if interrupted is not None:
        trajectory.append(interrupted)
        records.append(interrupted)
    return trajectory, definition, options, RunState.from_records(records), model_


class Observer:
    """What a front end hears about a run as it happens; this base hears nothing."""

    def ready(
        self, run_id: str, definition: AgentDefinition, options: RunOptions, state: RunState
    ) -> None: ...

    def call(self, call: ToolCall) -> None:
        """A tool call is about to run (some take minutes: npm, verify)."""

    def step(self, event: StepEvent) -> None: ...

    def verify(self, event: str, stage: str, data: Any) -> None:
        """A `bimpl verify` stage event, from the verify tool or the finish gate."""


def execute(options: RunOptions, observer: Observer | None = None) -> RunResult:
    """Run (or resume) an agent; raises UsageError for bad input before anything is started."""
    from backend_implementor.tools import SandboxUnavailable, build_tools, scrubbed_env
    from backend_implementor.tools.base import ToolContext
    from backend_implementor.tools.sandbox import check_bwrap

    workspace = _workspace(options.workspace)
    approver = Approver(options.approve, list(options.deny))
    if options.sandbox == "bwrap":  # before a run folder is made
        try:
            check_bwrap()
        except SandboxUnavailable as exc:
            raise UsageError(f"--sandbox bwrap: {exc}") from None
    setup = _resume if options.resume else _start
    trajectory, definition, options, state, model = setup(options, workspace)
    ctx = ToolContext(
        workspace=workspace,
        env=scrubbed_env(os.environ),
        sandbox=options.sandbox,
        command_timeout=options.command_timeout,
        run_dir=trajectory.run_dir,
    )
    tool_names = [name for name in (definition.tools or []) if name != "finish"] or None
    try:
        tools = build_tools(ctx, tool_names)
    except (SandboxUnavailable, ValueError) as exc:
        ctx.close()
        raise UsageError(str(exc)) from None
    observer = observer or Observer()
    ctx.progress = observer.verify
    observer.ready(trajectory.run_dir.name, definition, options, state)
    gate = VerifyGate(ctx, options) if options.verify else None
    agent = Agent(model, tools, trajectory, options.limits, approver, observer.step, gate, observer.call)
    try:
        outcome, state = agent.run(state)
    finally:
        ctx.close()
    result = _conclude(outcome, state, trajectory, definition, workspace)
    result.verification = gate.last if gate else None
    trajectory.write_json("summary.json", result.to_dict())
    return result


class VerifyGate:
    """`finish` is accepted only once `bimpl verify` passes on the workspace (when it is a Node project)."""

    def __init__(self, ctx, options: RunOptions):
        self.ctx, self.options = ctx, options
        self.last: str | None = None

    def __call__(self) -> str | None:
        from backend_implementor.tools.base import ToolError
        from backend_implementor.tools.verify import digest, run_verify
        from backend_implementor.verify.engine import VerifyUsageError, parse_stages

        if not (self.ctx.workspace / "package.json").is_file():
            return None  # nothing verify could boot or test
        try:
            stages = parse_stages(self.options.verify_stages, url_mode=False)
            report = run_verify(self.ctx, self.ctx.workspace, stages, self.options.verify_fuzz_time)
        except (ToolError, VerifyUsageError) as exc:
            self.last = f"verify could not run: {exc}"
            return self.last
        self.last = digest(report)
        if report.exit_code == 0:
            return None
        return f"`bimpl verify` failed on the workspace; fix what it reports, then call finish again.\n{self.last}"


def _conclude(
    outcome: AgentExit, state: RunState, trajectory: Trajectory, definition: AgentDefinition, workspace: Path
) -> RunResult:
    files = changes.diff(changes.load_baseline(trajectory.run_dir), workspace)
    claims = getattr(outcome, "deliverables", {}) or {}
    checklist = deliverables.check(definition.deliverables, files, workspace, claims)
    result = RunResult(
        run_id=trajectory.run_dir.name,
        run_dir=trajectory.run_dir,
        exit_status=outcome.exit_status,
        exit_code=outcome.exit_code,
        message=str(outcome),
        steps=state.steps,
        prompt_tokens=state.usage.prompt_tokens,
        completion_tokens=state.usage.completion_tokens,
        cost=state.usage.cost,
        elapsed=round(state.elapsed, 3),
        files=files,
        deliverables=checklist,
    )
    trajectory.append(
        {"type": "end", "exit_status": result.exit_status, "message": result.message, "steps": result.steps}
    )
    return result
