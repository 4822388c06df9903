"""Tool calls for models without native tool calling: fenced blocks in plain text, parsed strictly.

The model writes each call as its own fenced block

    ```tool_call
    {"name": "read_file", "arguments": {"path": "src/app.ts"}}
    ```

one or more per reply, or none when it is only talking. Anything that looks like an attempt but is not
exactly this (bad JSON, unknown tool, missing keys, no closing fence, a ```json block holding a call)
raises FormatError whose message says what was wrong and repeats the format, so the loop can feed it
back and the model can correct itself.

The conversation stays in OpenAI format; `to_text_messages` rewrites assistant `tool_calls` and `tool`
results into plain turns on the way to such a model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from backend_implementor.models.base import FormatError, ToolCall, ToolSpec

FENCE_LANG = "tool_call"
# An opening fence: ``` then optional spaces then tool_call, alone on its line (indentation allowed).
_OPEN = re.compile(r"^[ \t]*```[ \t]*tool_call[ \t]*$")
# Any opening fence with a language tag, to catch calls written as ```json.
_OPEN_OTHER = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]+)[ \t]*$")
_CLOSE = re.compile(r"^[ \t]*```[ \t]*$")

_EXAMPLE = '```tool_call\n{"name": "TOOL_NAME", "arguments": {"ARG": "VALUE"}}\n```'


def _format_reminder(tools: list[ToolSpec]) -> str:
    names = ", ".join(t.name for t in tools) or "(none)"
    return (
        f"Write each tool call as its own fenced block, exactly like this:\n{_EXAMPLE}\n"
        'The block holds one JSON object with exactly two keys, "name" (a string) and "arguments" '
        "(an object); the closing ``` goes on its own line. "
        f"Available tools: {names}."
    )


def instructions(tools: list[ToolSpec]) -> str:
    """The text appended to the system prompt that teaches the model the protocol and the tools."""
    lines = [
        "# How to call tools",
        "",
        "You call tools by writing fenced blocks in your reply. Each call is its own block:",
        "",
        _EXAMPLE,
        "",
        "Rules:",
        "- The block starts with a line that is exactly ```tool_call and ends with a line that is exactly ```.",
        '- Inside is one JSON object with exactly two keys: "name" (the tool name) and "arguments" (a JSON '
        "object with the tool's parameters). Strings use JSON escapes: a newline inside a value is \\n, a "
        'double quote is \\".',
        "- You may write several blocks in one reply; they run in order. Explanations may surround them.",
        "- Write no block at all when you only want to talk.",
        "- After your reply you receive each tool's result as a message starting with "
        '"Observation from TOOL_NAME:". Never write observations yourself.',
        "",
        "# Available tools",
    ]
    for tool in tools:
        lines += ["", f"## {tool.name}", tool.description.strip(), "Parameters (JSON Schema):"]
        lines.append(json.dumps(tool.parameters, indent=None, sort_keys=False))
    return "\n".join(lines)


def parse(text: str, tools: list[ToolSpec]) -> list[ToolCall]:
    """The tool calls in `text`, in order; [] when it has none. Raises FormatError on any malformed block.

    Ids are `text_call_<k>`; the caller makes them unique across the run if it needs to.
    """
    known = {t.name for t in tools}
    lines = text.splitlines()
    calls: list[ToolCall] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _OPEN.match(line):
            start = i + 1
            j = start
            while j < len(lines) and not _CLOSE.match(lines[j]):
                j += 1
            block_no = len(calls) + 1
            if j == len(lines):
                raise FormatError(
                    f"Tool call block {block_no} (opened on line {i + 1}) is never closed: the closing ``` "
                    f"must be on a line of its own.\n{_format_reminder(tools)}",
                    raw=text,
                )
            calls.append(_parse_block("\n".join(lines[start:j]), block_no, known, tools, text))
            i = j + 1
            continue
        other = _OPEN_OTHER.match(line)
        if other and other.group(1) != FENCE_LANG:
            # A fenced block of another language: skip it whole, but refuse one that holds a call, since
            # the model clearly meant to call a tool and would otherwise wait forever for a result.
            j = i + 1
            while j < len(lines) and not _CLOSE.match(lines[j]):
                j += 1
            body = "\n".join(lines[i + 1 : j])
            if _looks_like_call(body):
                raise FormatError(
                    f"A ```{other.group(1)} block on line {i + 1} contains a tool call, but tool calls must use "
                    f"```tool_call blocks; nothing was run.\n{_format_reminder(tools)}",
                    raw=text,
                )
            i = j + 1
            continue
        i += 1
    return calls


def _looks_like_call(body: str) -> bool:
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and "name" in value and "arguments" in value


def _parse_block(body: str, block_no: int, known: set[str], tools: list[ToolSpec], raw: str) -> ToolCall:
    def fail(problem: str) -> FormatError:
        return FormatError(f"Tool call block {block_no}: {problem}\n{_format_reminder(tools)}", raw=raw)

    if not body.strip():
        raise fail("the block is empty.")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        # Extra data usually means two objects in one block.
        hint = " Put each call in its own block." if e.msg == "Extra data" else ""
        raise fail(
            f"the content is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}).{hint}"
        ) from None
    if not isinstance(value, dict):
        raise fail(f"the content must be a JSON object, not {type(value).__name__}.")
    missing = [key for key in ("name", "arguments") if key not in value]
    if missing:
        raise fail(f"the object has no {' and no '.join(repr(k) for k in missing)} key.")
    extra = sorted(set(value) - {"name", "arguments"})
    if extra:
        raise fail(
            f"unexpected key(s) {', '.join(map(repr, extra))}; only 'name' and 'arguments' are allowed."
        )
    name, arguments = value["name"], value["arguments"]
    if not isinstance(name, str) or not name:
        raise fail('"name" must be a non-empty string.')
    if name not in known:
        raise fail(f"unknown tool {name!r}.")
    if not isinstance(arguments, dict):
        raise fail(f'"arguments" must be a JSON object, not {type(arguments).__name__}.')
    return ToolCall(id=f"text_call_{block_no}", name=name, arguments=arguments)


def render_call(name: str, arguments: dict[str, Any]) -> str:
    """One call in the protocol's exact format (used to show the model its own past calls)."""
    return f"```{FENCE_LANG}\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n```"


def to_text_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of an OpenAI-format conversation with no tool machinery left in it.

    Assistant tool calls become ```tool_call blocks in the assistant text; each `tool` message becomes a
    user message "Observation from <tool>: ...". Consecutive user messages are merged, because several
    observations in a row would otherwise break the user/assistant alternation some providers require.
    """
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []

    def append(role: str, content: str) -> None:
        if out and out[-1]["role"] == role == "user":
            out[-1]["content"] += "\n\n" + content
        else:
            out.append({"role": role, "content": content})

    for message in messages:
        role = message.get("role")
        content = _content_text(message.get("content"))
        if role == "assistant":
            parts = [content] if content else []
            # A text-protocol reply already holds its calls as blocks; render them only for calls that
            # came some other way (native history, a scripted turn), never twice.
            in_text = any(_OPEN.match(line) for line in content.splitlines())
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                name = function.get("name", "")
                names[call.get("id", "")] = name
                if in_text:
                    continue
                arguments = function.get("arguments") or "{}"
                try:
                    parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
                except ValueError:
                    parsed = arguments  # keep whatever the model sent; it is history
                parts.append(render_call(name, parsed))
            append("assistant", "\n\n".join(parts))
        elif role == "tool":
            name = message.get("name") or names.get(message.get("tool_call_id", ""), "tool")
            append("user", f"Observation from {name}:\n{content}")
        else:
            append(str(role), content)
    return out


def _content_text(content: Any) -> str:
    """Flatten OpenAI content (a string, None, or a list of parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)
