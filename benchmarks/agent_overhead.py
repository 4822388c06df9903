"""Per-step harness overhead of the agent loop with a scripted model (no LLM, no network).

Runs N steps through the real loop, real tools and real trajectory (fsync per step), timing the
model call and the tool calls separately; what is left is the harness: conversation bookkeeping,
argument checks, approval, stuck detection, redaction and the JSONL append. Target: <= 20 ms/step.

    python benchmarks/agent_overhead.py [--steps 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from backend_implementor.agent.approval import Approver
from backend_implementor.agent.loop import Agent, Limits, RunState
from backend_implementor.agent.trajectory import Trajectory
from backend_implementor.models.scripted import ScriptedModel
from backend_implementor.tools import build_tools
from backend_implementor.tools.base import ToolContext


class Timed:
    """Wraps a callable object and adds up the time spent inside it."""

    total = 0.0

    def __init__(self, inner, method: str):
        self.inner, self.method = inner, method

    def __getattr__(self, name):
        if name != self.method:
            return getattr(self.inner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return getattr(self.inner, name)(*args, **kwargs)
            finally:
                Timed.total += time.perf_counter() - start

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "src").mkdir()
        (ws / "src" / "app.ts").write_text("".join(f"export const v{i} = {i};\n" for i in range(200)))
        # A realistic mix: reads, writes, edits (alternating so each edit matches), finish at the end.
        entries = []
        for i in range(args.steps - 1):
            kind = i % 3
            if kind == 0:
                call = {
                    "name": "read_file",
                    "arguments": {"path": "src/app.ts", "start_line": 1, "end_line": 50},
                }
            elif kind == 1:
                call = {
                    "name": "write_file",
                    "arguments": {"path": f"src/gen{i % 10}.ts", "content": f"export const g = {i};\n"},
                }
            else:
                old, new = ("v1 = 1;", "v1 = 2;") if (i // 3) % 2 == 0 else ("v1 = 2;", "v1 = 1;")
                call = {
                    "name": "edit_file",
                    "arguments": {"path": "src/app.ts", "old_text": old, "new_text": new},
                }
            entries.append({"tool_calls": [call]})
        entries.append({"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]})
        script = ws / "script.yaml"
        script.write_text(yaml.safe_dump(entries))

        model_timer = Timed(ScriptedModel(script), "query")
        ctx = ToolContext(workspace=ws.resolve())
        tools = build_tools(ctx, ["read_file", "write_file", "edit_file"])
        tool_time = 0.0

        def wrap(tool):
            def call(arguments):
                nonlocal tool_time
                start = time.perf_counter()
                try:
                    return tool(arguments)
                finally:
                    tool_time += time.perf_counter() - start

            call.spec = tool.spec
            return call

        timed_tools = {name: wrap(tool) for name, tool in tools.items()}
        trajectory = Trajectory.create(ws, {})
        agent = Agent(model_timer, timed_tools, trajectory, Limits(max_steps=args.steps + 1), Approver())
        state = RunState(
            messages=[{"role": "system", "content": "bench"}, {"role": "user", "content": "bench"}]
        )
        start = time.perf_counter()
        outcome, state = agent.run(state)
        total = time.perf_counter() - start
        assert outcome.exit_status == "finished", outcome

    steps = state.steps
    harness = total - Timed.total - tool_time
    print(f"steps                 {steps}")
    print(f"total                 {total * 1000 / steps:8.2f} ms/step")
    print(f"  scripted model      {Timed.total * 1000 / steps:8.2f} ms/step")
    print(f"  tools               {tool_time * 1000 / steps:8.2f} ms/step")
    print(f"  harness overhead    {harness * 1000 / steps:8.2f} ms/step   (target <= 20 ms)")


if __name__ == "__main__":
    main()
