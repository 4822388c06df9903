from __future__ import annotations

import json

import pytest

from backend_implementor.models.base import FormatError, ToolSpec
from backend_implementor.models.text_protocol import instructions, parse, render_call, to_text_messages

TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("write_file", "Write a file.", {"type": "object", "properties": {"path": {}, "content": {}}}),
    ToolSpec("finish", "End the run.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
]


def block(obj: object) -> str:
    body = obj if isinstance(obj, str) else json.dumps(obj)
    return f"```tool_call\n{body}\n```"


# ---- good replies -------------------------------------------------------------------------------------

GOOD = [
    ("just talking, no calls at all", []),
    ("", []),
    (block({"name": "read_file", "arguments": {"path": "a.ts"}}), [("read_file", {"path": "a.ts"})]),
    (
        "Let me look first.\n\n"
        + block({"name": "read_file", "arguments": {"path": "a.ts"}})
        + "\nThen edit.",
        [("read_file", {"path": "a.ts"})],
    ),
    (
        block({"name": "read_file", "arguments": {"path": "a"}})
        + "\n"
        + block({"name": "write_file", "arguments": {"path": "b", "content": "x\ny"}}),
        [("read_file", {"path": "a"}), ("write_file", {"path": "b", "content": "x\ny"})],
    ),
    (block({"name": "finish", "arguments": {}}), [("finish", {})]),
    # Pretty-printed JSON across several lines is still one object.
    (
        block(
            json.dumps(
                {"name": "write_file", "arguments": {"path": "p", "content": "```\nnested fence\n```"}},
                indent=2,
            )
        ),
        [("write_file", {"path": "p", "content": "```\nnested fence\n```"})],
    ),
    # Indented fences (e.g. inside a list) and a space after the backticks.
    (
        "  ``` tool_call\n  " + json.dumps({"name": "finish", "arguments": {"summary": "s"}}) + "\n  ```",
        [("finish", {"summary": "s"})],
    ),
    # Other code blocks without calls are ignored, even ones with JSON in them.
    ('```ts\nconst x = 1;\n```\n```json\n{"a": 1}\n```', []),
    ("```\nplain block\n```\n" + block({"name": "finish", "arguments": {}}), [("finish", {})]),
    # CRLF line endings.
    (block({"name": "finish", "arguments": {}}).replace("\n", "\r\n"), [("finish", {})]),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_parse_good(text: str, expected: list[tuple[str, dict]]) -> None:
    calls = parse(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == expected
    assert len({c.id for c in calls}) == len(calls)


# ---- bad replies: each raises FormatError saying what was wrong and showing the format -----------------

BAD = [
    (block('{"name": "read_file", "arguments": {"path": "a"}'), "not valid JSON"),
    (block("{'name': 'read_file', 'arguments': {}}"), "not valid JSON"),
    (
        block('{"name": "read_file", "arguments": {}}\n{"name": "finish", "arguments": {}}'),
        "each call in its own block",
    ),
    (block({"name": "delete_everything", "arguments": {}}), "unknown tool 'delete_everything'"),
    (block({"arguments": {"path": "a"}}), "no 'name' key"),
    (block({"name": "read_file"}), "no 'arguments' key"),
    (block({}), "no 'name' and no 'arguments' key"),
    (block({"name": "read_file", "arguments": ["a.ts"]}), '"arguments" must be a JSON object, not list'),
    (block({"name": "read_file", "arguments": "a.ts"}), '"arguments" must be a JSON object, not str'),
    (block({"name": 7, "arguments": {}}), '"name" must be a non-empty string'),
    (block({"name": "finish", "arguments": {}, "id": "x"}), "unexpected key(s) 'id'"),
    (block("[1, 2]"), "must be a JSON object, not list"),
    (block(""), "the block is empty"),
    ('```tool_call\n{"name": "finish", "arguments": {}}\n', "never closed"),
    ('```tool_call\n{"name": "finish", "arguments": {}}```', "never closed"),
    ('```json\n{"name": "finish", "arguments": {}}\n```', "```json block on line 1 contains a tool call"),
    (
        block({"name": "finish", "arguments": {}}) + "\n" + block('{"name": "finish", "arguments": {'),
        "Tool call block 2",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_parse_bad(text: str, problem: str) -> None:
    with pytest.raises(FormatError) as info:
        parse(text, TOOLS)
    message = str(info.value)
    assert problem in message
    # Every message teaches the correct format and the tool names, and keeps what the model said.
    assert "```tool_call" in message and "read_file, write_file, finish" in message
    assert info.value.raw == text


def test_instructions_describe_format_and_every_tool() -> None:
    text = instructions(TOOLS)
    assert "```tool_call" in text and '"arguments"' in text
    for tool in TOOLS:
        assert f"## {tool.name}" in text and tool.description in text
        assert json.dumps(tool.parameters) in text
    # The example in the instructions is itself exactly the format parse accepts.
    example = render_call("finish", {"summary": "done"})
    assert [(c.name, c.arguments) for c in parse(example, TOOLS)] == [("finish", {"summary": "done"})]


def test_to_text_messages_rewrites_tool_machinery() -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {
            "role": "assistant",
            "content": "Reading both.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "write_file", "arguments": "{broken"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "1 | hello"},
        {"role": "tool", "tool_call_id": "c2", "name": "write_file", "content": "error: bad"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c3", "type": "function", "function": {"name": "finish", "arguments": "{}"}}
            ],
        },
    ]
    out = to_text_messages(messages)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user", "assistant"]
    assert all(set(m) == {"role", "content"} for m in out)
    assistant = out[2]["content"]
    assert assistant.startswith("Reading both.")
    assert [(c.name, c.arguments) for c in parse(assistant.split("\n\n", 1)[1].split("\n\n")[0], TOOLS)] == [
        ("read_file", {"path": "a"})
    ]
    assert '"arguments": "{broken"' in assistant  # history kept verbatim, not dropped
    # Consecutive observations merge into one user turn; the name comes from the call or the message.
    assert (
        out[3]["content"]
        == "Observation from read_file:\n1 | hello\n\nObservation from write_file:\nerror: bad"
    )
    assert parse(out[4]["content"], TOOLS)[0].name == "finish"
    assert messages[3]["role"] == "tool"  # input untouched


def test_to_text_messages_does_not_double_blocks_already_in_the_text() -> None:
    reply = "Done.\n" + render_call("finish", {"summary": "s"})
    message = {
        "role": "assistant",
        "content": reply,
        "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "finish", "arguments": '{"summary": "s"}'}}
        ],
    }
    assert to_text_messages([message]) == [{"role": "assistant", "content": reply}]
