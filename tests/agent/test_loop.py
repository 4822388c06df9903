"""The loop with a fake model and fake tools: every exit, stuck detection, format retries, resume state."""

import pytest

from backend_implementor.agent.approval import Approver
from backend_implementor.agent.errors import (
    Finished,
    FormatErrorLimit,
    LimitsExceeded,
    ModelFailed,
    ScriptEnded,
    StuckDetected,
    Unverified,
)
from backend_implementor.agent.loop import Agent, Limits, RunState
from backend_implementor.agent.trajectory import Trajectory
from backend_implementor.models.base import (
    FormatError,
    ModelError,
    ModelResponse,
    ScriptExhausted,
    ToolCall,
    Usage,
)
from backend_implementor.tools.base import Tool, ToolContext, ToolError


class Echo(Tool):
    name = "echo"
    description = "echo text"
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    def run(self, text):
        if text == "fail":
            raise ToolError("it failed")
        if text == "crash":
            raise RuntimeError("tool bug")
        return f"echo: {text}"


class FakeModel:
    name = "fake"
    context_window = None

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen = []

    def query(self, messages, tools):
        self.seen.append(list(messages))
        if not self.replies:
            raise ScriptExhausted("no more replies")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def call(name, i=0, **arguments):
    return ToolCall(id=f"c{i}", name=name, arguments=arguments)


def reply(*calls, text="", cost=0.0):
    return ModelResponse(text=text, tool_calls=list(calls), usage=Usage(10, 5, cost))


def make_agent(tmp_path, replies, limits=None, deny=()):
    ctx = ToolContext(workspace=tmp_path)
    trajectory = Trajectory.create(tmp_path, {})
    model = FakeModel(replies)
    agent = Agent(model, {"echo": Echo(ctx)}, trajectory, limits or Limits(), Approver("yolo", list(deny)))
    return agent, model, trajectory


def start_state():
    return RunState(messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "task"}])


def test_finish_ends_run_with_summary_and_observations_are_recorded(tmp_path):
    agent, model, trajectory = make_agent(
        tmp_path,
        [
            reply(call("echo", 1, text="hi")),
            reply(call("echo", 2, text="fail"), call("nope", 3)),
            reply(call("finish", 4, summary="all done", deliverables={"tests": "t.test.ts"})),
        ],
    )
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, Finished) and str(outcome) == "all done"
    assert outcome.deliverables == {"tests": "t.test.ts"}
    assert state.steps == 3 and state.usage.prompt_tokens == 30
    tool_messages = [m["content"] for m in state.messages if m["role"] == "tool"]
    assert tool_messages[0] == "echo: hi"
    assert tool_messages[1] == "Error: it failed"
    assert tool_messages[2].startswith("Error: there is no tool named 'nope'; available tools: echo, finish")
    # the model saw the first observation on its second turn
    assert model.seen[1][-1] == {"role": "tool", "tool_call_id": "c1", "name": "echo", "content": "echo: hi"}
    records = trajectory.records()
    assert [(r["type"], r["step"]) for r in records] == [
        (kind, n) for n in (1, 2, 3) for kind in ("pending", "step")
    ]


def test_tool_bug_becomes_observation_not_crash(tmp_path):
    agent, _, _ = make_agent(
        tmp_path, [reply(call("echo", text="crash")), reply(call("finish", summary="ok"))]
    )
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, Finished)
    assert "the echo tool failed unexpectedly: RuntimeError: tool bug" in state.messages[3]["content"]


def test_bad_arguments_become_observation(tmp_path):
    agent, _, _ = make_agent(tmp_path, [reply(call("echo", x=1)), reply(call("finish", summary="ok"))])
    _, state = agent.run(start_state())
    assert state.messages[3]["content"].startswith("Error: echo: missing required argument(s): text")


def test_step_limit(tmp_path):
    agent, _, _ = make_agent(
        tmp_path, [reply(call("echo", text=str(i))) for i in range(10)], Limits(max_steps=3)
    )
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, LimitsExceeded) and "step limit reached (3 steps)" in str(outcome)
    assert state.steps == 3


def test_cost_limit(tmp_path):
    replies = [reply(call("echo", text=str(i)), cost=0.4) for i in range(10)]
    agent, _, _ = make_agent(tmp_path, replies, Limits(max_cost=1.0))
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, LimitsExceeded) and "cost limit" in str(outcome)
    assert state.steps == 3


def test_time_limit_counts_time_from_earlier_sessions(tmp_path):
    agent, _, _ = make_agent(tmp_path, [reply(call("echo", text="x"))], Limits(max_time=10))
    state = start_state()
    state.elapsed = 11
    outcome, _ = agent.run(state)
    assert isinstance(outcome, LimitsExceeded) and "time limit" in str(outcome)


def test_stuck_detection_same_action_and_observation_three_times(tmp_path):
    agent, _, _ = make_agent(tmp_path, [reply(call("echo", i, text="same")) for i in range(5)])
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, StuckDetected) and state.steps == 3


def test_same_action_with_different_observation_is_not_stuck(tmp_path):
    class Counter(Echo):
        n = 0

        def run(self, text):
            Counter.n += 1
            return f"{text} {Counter.n}"

    ctx = ToolContext(workspace=tmp_path)
    model = FakeModel(
        [reply(call("echo", text="same")) for _ in range(4)] + [reply(call("finish", summary="ok"))]
    )
    agent = Agent(model, {"echo": Counter(ctx)}, Trajectory.create(tmp_path, {}), Limits(), Approver())
    outcome, _ = agent.run(start_state())
    assert isinstance(outcome, Finished)


def test_format_errors_are_fed_back_then_bounded(tmp_path):
    replies = [FormatError("bad JSON in arguments", raw="{oops")] * 2 + [reply(call("finish", summary="ok"))]
    agent, model, _ = make_agent(tmp_path, replies)
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, Finished)
    assert model.seen[1][-2:] == [
        {"role": "assistant", "content": "{oops"},
        {"role": "user", "content": "Format error: bad JSON in arguments"},
    ]
    agent, _, _ = make_agent(tmp_path, [FormatError("broken")] * 5, Limits(max_format_errors=3))
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, FormatErrorLimit) and state.steps == 3


def test_text_without_tool_call_gets_a_nudge(tmp_path):
    agent, model, _ = make_agent(tmp_path, [reply(text="let me think"), reply(call("finish", summary="ok"))])
    agent.run(start_state())
    assert model.seen[1][-1]["role"] == "user" and "no tool call" in model.seen[1][-1]["content"]


def test_model_errors_and_exhausted_script_end_the_run(tmp_path):
    agent, _, _ = make_agent(tmp_path, [ModelError("401 unauthorized: check OPENAI_API_KEY")])
    outcome, _ = agent.run(start_state())
    assert isinstance(outcome, ModelFailed) and "401" in str(outcome)
    agent, _, _ = make_agent(tmp_path, [reply(call("echo", text="a"))])
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, ScriptEnded) and state.steps == 1


def test_deny_list_refuses_without_running(tmp_path):
    class Bash(Echo):
        name = "bash"
        parameters = {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        }
        ran = []

        def run(self, command):
            Bash.ran.append(command)
            return "ran"

    ctx = ToolContext(workspace=tmp_path)
    model = FakeModel([reply(call("bash", command="sudo rm -rf /")), reply(call("finish", summary="ok"))])
    agent = Agent(model, {"bash": Bash(ctx)}, Trajectory.create(tmp_path, {}), Limits(), Approver())
    _, state = agent.run(start_state())
    assert Bash.ran == []
    assert state.messages[3]["content"].startswith("Refused: this command matches the deny pattern")


def test_state_rebuilt_from_trajectory_matches_live_state(tmp_path):
    agent, _, trajectory = make_agent(
        tmp_path, [reply(call("echo", 1, text="a"), cost=0.1), reply(call("echo", 2, text="b"), cost=0.2)]
    )
    state = start_state()
    trajectory.append({"type": "start", "messages": list(state.messages)})
    _, live = agent.run(state)
    rebuilt = RunState.from_records(trajectory.records())
    assert rebuilt.messages == live.messages
    assert rebuilt.steps == live.steps == 2
    assert rebuilt.usage.cost == pytest.approx(0.3)


def test_finish_gate_refuses_until_it_passes(tmp_path):
    verdicts = ["tests failed: 2", None]
    agent, _model, trajectory = make_agent(
        tmp_path, [reply(call("finish", 1, summary="done")), reply(call("finish", 2, summary="really done"))]
    )
    agent.gate = lambda: verdicts.pop(0)
    outcome, state = agent.run(start_state())
    assert (
        isinstance(outcome, Finished) and outcome.exit_status == "finished" and str(outcome) == "really done"
    )
    refused = state.messages[3]["content"]
    assert refused.startswith("finish refused (2 more attempt(s)") and "tests failed: 2" in refused
    assert RunState.from_records([{"messages": []}, *trajectory.records()]).verify_failures == 1


def test_finish_gate_budget_ends_unverified(tmp_path):
    agent, _, _ = make_agent(
        tmp_path, [reply(call("finish", i, summary="done")) for i in range(5)], Limits(max_verify_failures=1)
    )
    agent.gate = lambda: "still broken"
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, Unverified) and outcome.exit_status == "unverified" and outcome.exit_code == 1
    assert state.steps == 2 and "verify still fails after 2 attempts" in str(outcome)


class Sleep(Tool):
    name = "sleep"
    description = "sleep"
    parameters = {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]}
    cleaned = False

    def time_limit(self, arguments):
        return 0.5

    def run(self, seconds):
        import time

        try:
            time.sleep(seconds)
        except BaseException:
            Sleep.cleaned = True  # tools clean up on the way out, as bash kills its group
            raise
        return "slept"


def test_a_tool_past_its_time_limit_is_stopped_and_the_run_goes_on(tmp_path):
    import time

    agent, _, _ = make_agent(
        tmp_path, [reply(call("sleep", seconds=30)), reply(call("finish", summary="ok"))]
    )
    agent.tools["sleep"] = Sleep(agent.tools["echo"].ctx)
    started = time.monotonic()
    outcome, state = agent.run(start_state())
    assert time.monotonic() - started < 10
    assert isinstance(outcome, Finished) and Sleep.cleaned
    assert state.messages[3]["content"] == "Error: the sleep call was stopped after 0.5 s, its time limit."


def test_max_time_holds_while_a_tool_runs(tmp_path):
    import time

    agent, _, _ = make_agent(
        tmp_path, [reply(call("echo", text="x")), reply(call("finish", summary="ok"))], Limits(max_time=1.0)
    )

    class Hang(Echo):
        def run(self, text):
            while True:  # pure Python, no timeout of its own
                pass

    agent.tools["echo"] = Hang(agent.tools["echo"].ctx)
    started = time.monotonic()
    outcome, state = agent.run(start_state())
    assert time.monotonic() - started < 10
    assert isinstance(outcome, LimitsExceeded) and "time limit reached" in str(outcome)
    assert "the run's time limit (1 s) was reached while it ran" in state.messages[3]["content"]


def test_calls_after_finish_in_the_same_reply_do_not_run(tmp_path):
    agent, _, _ = make_agent(
        tmp_path, [reply(call("finish", 1, summary="done"), call("echo", 2, text="late"))]
    )
    ran = []
    agent.on_call = ran.append
    outcome, state = agent.run(start_state())
    assert isinstance(outcome, Finished)
    assert [c.name for c in ran] == ["finish"]
    assert state.messages[-1]["content"] == "Not run: it came after `finish` in the same reply."


def test_a_turn_runs_at_most_the_call_cap(tmp_path):
    calls = [call("echo", i, text=str(i)) for i in range(1000)]
    agent, _, _ = make_agent(
        tmp_path, [reply(*calls), reply(call("finish", summary="ok"))], Limits(max_calls_per_turn=5)
    )
    ran = []
    agent.on_call = ran.append
    _, state = agent.run(start_state())
    tool_messages = [m for m in state.messages if m["role"] == "tool"]
    assert len(ran) == 6  # five echoes, then finish in the next reply
    assert len(tool_messages) == 1001  # every call id is answered, as the APIs require
    assert tool_messages[5]["content"].startswith("Not run: at most 5 tool calls are run per reply")


@pytest.mark.parametrize("summary", [None, 42, {"a": 1}, ["x"], "  "])
def test_finish_needs_a_string_summary(tmp_path, summary):
    agent, _, _ = make_agent(
        tmp_path, [reply(call("finish", 1, summary=summary)), reply(call("finish", 2, summary="done"))]
    )
    outcome, state = agent.run(start_state())
    assert str(outcome) == "done" and state.verify_failures == 0
    assert state.messages[3]["content"].startswith("Error: finish needs `summary`, a non-empty string")


def test_huge_arguments_and_observations_are_cut_in_history_and_trajectory(tmp_path):
    content = "x" * 20_000_000
    agent, _, trajectory = make_agent(
        tmp_path, [reply(call("echo", 1, text=content)), reply(call("finish", 2, summary="ok"))]
    )
    _, state = agent.run(start_state())
    assert (tmp_path / ".bimpl").exists()
    size = trajectory.path.stat().st_size
    assert size < 500_000, size
    line = trajectory.path.read_text().splitlines()[0]
    assert "chars elided" in line
    observation = state.messages[3]["content"]
    assert len(observation) < 200_000 and "chars elided" in observation
    # what the tool received was the whole argument
    assert observation.startswith("echo: xxx") and observation.endswith("xxx")


def test_a_step_interrupted_while_its_calls_ran_is_answered_as_interrupted(tmp_path):
    from backend_implementor.agent.loop import INTERRUPTED, interrupted_step

    agent, _, trajectory = make_agent(tmp_path, [reply(call("echo", 1, text="a"), cost=0.1)])
    state = start_state()
    trajectory.append({"type": "start", "messages": list(state.messages)})
    agent.run(state)  # step 1 completes, then the script ends
    assert interrupted_step(trajectory.records()) is None
    # A second step whose calls were running when the process died: only its marker is on disk.
    message = reply(call("echo", 2, text="b"), call("echo", 3, text="c")).assistant_message()
    trajectory.append({"type": "pending", "step": 2, "message": message, "usage": vars(Usage(7, 3, 0.05))})
    record = interrupted_step(trajectory.records())
    assert record["step"] == 2 and record["messages"][0] == message
    assert [m["content"] for m in record["messages"][1:]] == [INTERRUPTED, INTERRUPTED]
    assert [m["tool_call_id"] for m in record["messages"][1:]] == ["c2", "c3"]
    trajectory.append(record)
    rebuilt = RunState.from_records(trajectory.records())
    assert rebuilt.steps == 2 and rebuilt.usage.cost == pytest.approx(0.15)
    assert rebuilt.messages[-1]["content"] == INTERRUPTED
    assert interrupted_step(trajectory.records()) is None
