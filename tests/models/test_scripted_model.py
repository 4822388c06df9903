from __future__ import annotations

from pathlib import Path

import pytest

from backend_implementor.models import get_model
from backend_implementor.models.base import FormatError, ModelError, ScriptExhausted, ToolSpec
from backend_implementor.models.scripted import ScriptedModel, ScriptError

TOOLS = [
    ToolSpec("write_file", "Write.", {"type": "object"}),
    ToolSpec("finish", "End.", {"type": "object"}),
]

SCRIPT = """\
- tool_calls:
    - {name: write_file, arguments: {path: src/hello.ts, content: "export const x = 1;\\n"}}
  usage: {prompt_tokens: 100, completion_tokens: 20, cost: 0.5}
- text: "thinking out loud, no tool call"
- raw: |
    Done.
    ```tool_call
    {"name": "finish", "arguments": {"summary": "done"}}
    ```
- tool_calls:
    - {name: finish, arguments: {summary: done}, id: my-id}
    - {name: finish}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(text)
    return path


def play(model: ScriptedModel, turns: int) -> list:
    """Drive the model like the loop does: append each turn's assistant message (and results)."""
    messages: list[dict] = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    responses = []
    for _ in range(turns):
        response = model.query(messages, TOOLS)
        responses.append(response)
        messages.append(response.assistant_message())
        messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in response.tool_calls]
    return responses


def test_replays_entries_in_order(tmp_path: Path) -> None:
    model = get_model(f"scripted:{write(tmp_path, SCRIPT)}")
    assert isinstance(model, ScriptedModel) and model.context_window is None
    first, second, third, fourth = play(model, 4)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("write_file", {"path": "src/hello.ts", "content": "export const x = 1;\n"})
    ]
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.cost) == (100, 20, 0.5)
    assert second.text == "thinking out loud, no tool call" and second.tool_calls == []
    assert second.usage.cost == 0
    assert third.text.startswith("Done.") and [(c.name, c.arguments) for c in third.tool_calls] == [
        ("finish", {"summary": "done"})
    ]
    assert [c.id for c in fourth.tool_calls] == ["my-id", "call_3_1"]
    assert fourth.tool_calls[1].arguments == {}


def test_position_is_the_number_of_assistant_messages(tmp_path: Path) -> None:
    """A resumed run hands over its history; the script continues where that history stopped."""
    model = ScriptedModel(write(tmp_path, SCRIPT))
    history = [{"role": "user", "content": "task"}, {"role": "assistant", "content": "x"}]
    assert model.query(history, TOOLS).text == "thinking out loud, no tool call"
    history += [{"role": "user", "content": "go on"}, {"role": "assistant", "content": "y"}] * 2
    # Same entry, same ids: replays are reproducible.
    assert [c.id for c in model.query(history, TOOLS).tool_calls] == ["my-id", "call_3_1"]
    assert model.query(history, TOOLS).tool_calls[0].id == "my-id"


def test_exhausted(tmp_path: Path) -> None:
    model = ScriptedModel(write(tmp_path, "- text: only one\n"))
    play(model, 1)
    with pytest.raises(ScriptExhausted, match="has 1 entries and all were played"):
        play(model, 2)


def test_raw_entry_with_a_broken_block_raises_format_error(tmp_path: Path) -> None:
    model = ScriptedModel(write(tmp_path, '- raw: "```tool_call\\n{broken\\n```"\n- text: fixed\n'))
    messages = [{"role": "user", "content": "task"}]
    with pytest.raises(FormatError, match="not valid JSON") as info:
        model.query(messages, TOOLS)
    # The loop appends the raw reply as the assistant turn, which moves the script on.
    messages += [{"role": "assistant", "content": info.value.raw}, {"role": "user", "content": "fix it"}]
    assert model.query(messages, TOOLS).text == "fixed"


INVALID = [
    ("", "must be a non-empty YAML list", "an empty file"),
    ("text: hi\n", "must be a non-empty YAML list", "got dict"),
    ("[]\n", "must be a non-empty YAML list", "got list"),
    ("- text: [unclosed\n", "not valid YAML", "line 1"),
    ("- just a string\n", "entry 1 (line 1): must be a mapping", "not str"),
    ("- text: a\n- txt: b\n", "entry 2 (line 2): unknown key 'txt'", "allowed: raw, text, tool_calls, usage"),
    ("- usage: {cost: 1}\n", "entry 1 (line 1): needs 'text', 'tool_calls' or 'raw'", ""),
    ("- text: 5\n", "'text' must be a string, not int", ""),
    ("- tool_calls: []\n", "'tool_calls' must be a non-empty list", ""),
    ("- tool_calls: {name: x}\n", "'tool_calls' must be a non-empty list", ""),
    ("- tool_calls: [finish]\n", "tool_calls[0] must be a mapping", ""),
    ("- tool_calls:\n    - {arguments: {}}\n", "tool_calls[0]: 'name' is missing", ""),
    (
        "- tool_calls:\n    - {name: a}\n    - {name: b, arguments: [1]}\n",
        "tool_calls[1]: 'arguments' must be a mapping, not list",
        "",
    ),
    ("- tool_calls:\n    - {name: a, args: {}}\n", "tool_calls[0]: unknown key 'args'", ""),
    ("- tool_calls:\n    - {name: a, id: 3}\n", "tool_calls[0]: 'id' must be a string", ""),
    ("- {raw: x, text: y}\n", "'raw' cannot be combined", ""),
    ("- raw: [1]\n", "'raw' must be a string", ""),
    ("- text: a\n  usage: 3\n", "'usage' must be a mapping", ""),
    ("- text: a\n  usage: {tokens: 3}\n", "usage: unknown key 'tokens'", ""),
    ("- text: a\n  usage: {prompt_tokens: -1}\n", "usage.prompt_tokens must be a non-negative integer", ""),
    ("- text: a\n  usage: {prompt_tokens: 1.5}\n", "usage.prompt_tokens must be a non-negative integer", ""),
    ("- text: a\n  usage: {cost: cheap}\n", "usage.cost must be a non-negative number", ""),
    ("- text: a\n\n\n- text: b\n- text: 3\n", "entry 3 (line 5)", ""),
]


@pytest.mark.parametrize(("source", "problem", "detail"), INVALID)
def test_invalid_scripts_are_rejected_on_load(tmp_path: Path, source: str, problem: str, detail: str) -> None:
    path = write(tmp_path, source)
    with pytest.raises(ScriptError) as info:
        ScriptedModel(path)
    message = str(info.value)
    assert message.startswith(f"script {path}: ") and problem in message and detail in message
    assert "\n" not in message  # one line, fit for a CLI error
    assert isinstance(info.value, ModelError)


def test_missing_file_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="file not found"):
        get_model(f"scripted:{tmp_path / 'nope.yaml'}")
    with pytest.raises(ModelError, match="needs a file"):
        get_model("scripted:")
    with pytest.raises(ModelError, match="no model given"):
        get_model("  ")
    with pytest.raises(ModelError, match="unknown tool protocol 'json'"):
        get_model(f"scripted:{write(tmp_path, SCRIPT)}", tool_protocol="json")
