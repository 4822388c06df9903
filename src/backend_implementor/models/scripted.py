"""A model that replays a YAML script: one list entry per model turn. For tests and reproducible demos.

    - tool_calls:
        - {name: write_file, arguments: {path: src/hello.ts, content: "export const x = 1;\\n"}}
    - text: "thinking out loud, no tool call"
    - raw: "a reply parsed with the text protocol, e.g. a broken ```tool_call block"
    - tool_calls:
        - {name: finish, arguments: {summary: done}}
      usage: {prompt_tokens: 120, completion_tokens: 30, cost: 0.001}

Keys of an entry: `text` (str), `tool_calls` (list of {name, arguments?, id?}), `raw` (str, parsed by
the text protocol against the offered tools: yields its calls, or raises FormatError so tests can drive
the loop's format-error path), and `usage` (optional). An entry has `text` and/or `tool_calls`, or `raw`.

Position: the entry played is the number of assistant messages already in the conversation. So the
script needs no state of its own, and a run resumed from its trajectory continues with the right entry.
It follows that the loop must append an assistant message for every turn, including a turn that raised
FormatError (append `{"role": "assistant", "content": err.raw}` before the error feedback), or a `raw`
entry would be replayed until the format-retry budget runs out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend_implementor.models.base import (
    ModelError,
    ModelResponse,
    ScriptExhausted,
    ToolCall,
    ToolSpec,
    Usage,
)

_ENTRY_KEYS = {"text", "tool_calls", "raw", "usage"}
_CALL_KEYS = {"name", "arguments", "id"}
_USAGE_KEYS = {"prompt_tokens", "completion_tokens", "cost"}


class ScriptError(ModelError):
    """The script file is missing or malformed; the message names the file, the entry and the key."""


class ScriptedModel:
    def __init__(self, path: str | Path, *, context_window: int | None = None):
        self.path = Path(path)
        self.name = f"scripted:{path}"
        self.context_window = context_window
        self.entries = load_script(self.path)

    def query(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> ModelResponse:
        index = sum(1 for m in messages if m.get("role") == "assistant")
        if index >= len(self.entries):
            raise ScriptExhausted(
                f"script {self.path} has {len(self.entries)} entries and all were played "
                f"(turn {index + 1} asked for another)"
            )
        entry = self.entries[index]
        usage = Usage(**entry.get("usage", {}))
        if "raw" in entry:
            from backend_implementor.models import text_protocol

            calls = text_protocol.parse(entry["raw"], tools)  # may raise FormatError, as a real model would
            calls = [ToolCall(f"call_{index}_{k}", c.name, c.arguments) for k, c in enumerate(calls)]
            return ModelResponse(text=entry["raw"], tool_calls=calls, usage=usage)
        calls = [
            # Ids derive from the entry index so a replay (or a resumed run) produces the same ids.
            ToolCall(call.get("id") or f"call_{index}_{k}", call["name"], dict(call.get("arguments") or {}))
            for k, call in enumerate(entry.get("tool_calls") or [])
        ]
        return ModelResponse(text=entry.get("text") or "", tool_calls=calls, usage=usage)


def load_script(path: Path) -> list[dict[str, Any]]:
    """The validated entries of a script file. Raises ScriptError naming the problem, never a traceback."""
    import yaml

    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"script {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScriptError(f"script {path}: cannot read it ({e})") from None
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as e:
        raise ScriptError(f"script {path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, list) or not data:
        raise ScriptError(
            f"script {path}: must be a non-empty YAML list, one entry per model turn "
            f"(got {'an empty file' if data is None else type(data).__name__})"
        )
    # Line numbers for the messages: the composed node tree has them, the loaded data does not.
    nodes = getattr(yaml.compose(source), "value", [])
    for index, entry in enumerate(data):
        line = nodes[index].start_mark.line + 1 if index < len(nodes) else 0
        _check_entry(f"script {path}: entry {index + 1} (line {line})", entry)
    return data


def _check_entry(where: str, entry: Any) -> None:

    def fail(problem: str) -> ScriptError:
        return ScriptError(f"{where}: {problem}")

    if not isinstance(entry, dict):
        raise fail(f"must be a mapping with text, tool_calls, raw or usage, not {type(entry).__name__}")
    unknown = sorted(set(map(str, entry)) - _ENTRY_KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    if "raw" in entry:
        if "text" in entry or "tool_calls" in entry:
            raise fail("'raw' cannot be combined with 'text' or 'tool_calls'")
        if not isinstance(entry["raw"], str):
            raise fail("'raw' must be a string")
    elif "text" not in entry and "tool_calls" not in entry:
        raise fail("needs 'text', 'tool_calls' or 'raw'")
    if "text" in entry and not isinstance(entry["text"], str):
        raise fail(f"'text' must be a string, not {type(entry['text']).__name__}")
    if "tool_calls" in entry:
        calls = entry["tool_calls"]
        if not isinstance(calls, list) or not calls:
            raise fail("'tool_calls' must be a non-empty list of {name, arguments}")
        for k, call in enumerate(calls):
            at = f"tool_calls[{k}]"
            if not isinstance(call, dict):
                raise fail(f"{at} must be a mapping with 'name' and 'arguments'")
            unknown = sorted(set(map(str, call)) - _CALL_KEYS)
            if unknown:
                raise fail(f"{at}: unknown key {unknown[0]!r} (allowed: arguments, id, name)")
            if not isinstance(call.get("name"), str) or not call["name"]:
                raise fail(f"{at}: 'name' is missing or not a string")
            if (
                "arguments" in call
                and call["arguments"] is not None
                and not isinstance(call["arguments"], dict)
            ):
                raise fail(f"{at}: 'arguments' must be a mapping, not {type(call['arguments']).__name__}")
            if "id" in call and not isinstance(call["id"], str):
                raise fail(f"{at}: 'id' must be a string")
    if "usage" in entry:
        usage = entry["usage"]
        if not isinstance(usage, dict):
            raise fail("'usage' must be a mapping with prompt_tokens, completion_tokens, cost")
        unknown = sorted(set(map(str, usage)) - _USAGE_KEYS)
        if unknown:
            raise fail(f"usage: unknown key {unknown[0]!r} (allowed: completion_tokens, cost, prompt_tokens)")
        for key, value in usage.items():
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            if not ok or (key != "cost" and not isinstance(value, int)):
                kind = "a non-negative number" if key == "cost" else "a non-negative integer"
                raise fail(f"usage.{key} must be {kind}, got {value!r}")
