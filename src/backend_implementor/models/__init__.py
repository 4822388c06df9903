"""Model adapters. `get_model(name)` is the one entry point:

- `scripted:FILE` replays a YAML script (see `models/scripted.py`);
- anything else goes through litellm (`anthropic/...`, `openai/...`, `ollama/...`, or any name with
  `api_base` pointing at an OpenAI-compatible server).

Nothing heavy is imported here, so `bimpl --help` stays fast; litellm loads on first use.
"""

from __future__ import annotations

from typing import Any

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

SCRIPTED_PREFIX = "scripted:"
TOOL_PROTOCOLS = ("auto", "native", "text")


def get_model(name: str, *, api_base: str | None = None, tool_protocol: str = "auto", **kwargs: Any) -> Model:
    """The model called `name`. Raises ModelError for names that cannot work (with what to write instead).

    kwargs go to LitellmModel (api_key, timeout, max_retries, backoff_base, context_window, temperature,
    max_tokens...). A scripted model takes only `context_window` and ignores the rest, so callers can pass
    the same settings whichever model the user chose.
    """
    name = (name or "").strip()
    if not name:
        raise ModelError(
            "no model given: use PROVIDER/MODEL (e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, "
            "ollama/qwen2.5-coder) or scripted:FILE"
        )
    if tool_protocol not in TOOL_PROTOCOLS:
        raise ModelError(f"unknown tool protocol {tool_protocol!r}: use one of {', '.join(TOOL_PROTOCOLS)}")
    if name.startswith(SCRIPTED_PREFIX):
        path = name[len(SCRIPTED_PREFIX) :].strip()
        if not path:
            raise ModelError("scripted: needs a file, e.g. --model scripted:demo.yaml")
        from backend_implementor.models.scripted import ScriptedModel

        return ScriptedModel(path, context_window=kwargs.get("context_window"))
    if any(c.isspace() for c in name):
        raise ModelError(f"model name {name!r} contains whitespace")
    from backend_implementor.models.litellm_model import LitellmModel

    return LitellmModel(name, api_base=api_base, tool_protocol=tool_protocol, **kwargs)


__all__ = [
    "FormatError",
    "Model",
    "ModelError",
    "ModelResponse",
    "ScriptExhausted",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "get_model",
]
