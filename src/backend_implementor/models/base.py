"""What every model adapter returns, and the errors the loop turns into exits.

The conversation is kept in OpenAI chat format (a list of dicts with `role` and `content`, assistant
`tool_calls`, and `tool` messages carrying `tool_call_id`), because litellm speaks it to every
provider. Adapters for models without native tool calls translate it on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: a name, a description and a JSON Schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # USD; 0.0 for unpriced or local models

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost


@dataclass
class ModelResponse:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def assistant_message(self) -> dict[str, Any]:
        """The message to append to the conversation, in OpenAI format."""
        import json

        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in self.tool_calls
            ]
        return message


class ModelError(Exception):
    """The model could not be queried (after retries): bad credentials, unknown model, server down."""


class FormatError(Exception):
    """The model answered, but not in a form we can act on (bad JSON arguments, a broken text block).

    `raw` is what the model said, so the loop can show it back together with `str(self)`, which
    explains what was wrong and how to answer instead.
    """

    def __init__(self, message: str, raw: str = ""):
        super().__init__(message)
        self.raw = raw


class ScriptExhausted(Exception):
    """A scripted model has no entries left."""


class Model(Protocol):
    name: str
    context_window: int | None  # tokens, when known

    def query(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> ModelResponse:
        """One model turn. Raises ModelError, FormatError or ScriptExhausted."""
        ...
