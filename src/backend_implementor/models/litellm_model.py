"""Every hosted or local model, through litellm: native tool calls or the text protocol, retries, cost,
and context trimming.

litellm is imported lazily (its import costs seconds) and only after the two environment variables that
stop it from fetching a cost map over the network and from reading a `.env` file.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from backend_implementor.models import text_protocol
from backend_implementor.models.base import FormatError, ModelError, ModelResponse, ToolCall, ToolSpec, Usage
from backend_implementor.models.context import estimate_tokens, fit_context

log = logging.getLogger("backend_implementor.models")

TOOL_PROTOCOLS = ("auto", "native", "text")

# Providers whose chat APIs take OpenAI-style tools; used only for models litellm does not know yet.
_NATIVE_PROVIDERS = {
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "vertex_ai",
    "bedrock",
    "mistral",
    "groq",
    "deepseek",
    "xai",
    "openrouter",
    "fireworks_ai",
    "together_ai",
}


def import_litellm() -> Any:
    """litellm, configured for offline-safe, quiet use. Cheap after the first call."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_MODE"] = "PRODUCTION"
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on every error
    litellm.telemetry = False
    return litellm


class LitellmModel:
    def __init__(
        self,
        name: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        tool_protocol: str = "auto",
        timeout: float = 300.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        context_window: int | None = None,
        trim_ratio: float = 0.8,
        keep_last: int = 4,
        temperature: float | None = None,
        max_tokens: int | None = None,
        completion_kwargs: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`context_window` overrides litellm's figure (useful for local servers it does not know).
        Trimming starts when the prompt would exceed `trim_ratio` of the window. `max_retries` counts
        retries after the first attempt; the wait before retry n is about backoff_base * 2**n seconds
        (with jitter, at most backoff_max, at least a server's Retry-After up to backoff_max)."""
        if tool_protocol not in TOOL_PROTOCOLS:
            raise ModelError(
                f"unknown tool protocol {tool_protocol!r}: use one of {', '.join(TOOL_PROTOCOLS)}"
            )
        litellm = import_litellm()
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.trim_ratio = trim_ratio
        self.keep_last = keep_last
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.completion_kwargs = dict(completion_kwargs or {})
        self._sleep = sleep
        self.name, self.provider = _resolve_name(litellm, name, api_base)
        if (
            api_key is None
            and api_base
            and self.provider == "openai"
            and not os.environ.get("OPENAI_API_KEY")
        ):
            # Local OpenAI-compatible servers (vLLM, llama.cpp, LM Studio) ignore the key but the client
            # refuses to send a request without one; a server that does check answers 401, reported as such.
            self.api_key = "sk-no-key"
        if self.api_key is None and not api_base:
            _check_key(litellm, self.name)
        info = _model_info(litellm, self.name)
        self.context_window = context_window or (
            (info.get("max_input_tokens") or info.get("max_tokens")) if info else None
        )
        self.tool_protocol = self._choose_protocol(litellm, tool_protocol, known=info is not None)

    def _choose_protocol(self, litellm: Any, requested: str, *, known: bool) -> str:
        if requested != "auto":
            return requested
        if known:
            try:
                return "native" if litellm.supports_function_calling(model=self.name) else "text"
            except Exception:
                pass
        # Unknown to litellm: an explicit api_base is almost always an OpenAI-compatible server (vLLM,
        # llama.cpp, LM Studio...) that takes tools; otherwise trust the provider's API.
        return "native" if self.api_base or self.provider in _NATIVE_PROVIDERS else "text"

    # ---- one turn --------------------------------------------------------------------------------

    def query(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> ModelResponse:
        litellm = import_litellm()
        budget = self._budget(tools)
        prompt = self._fit(litellm, messages, budget)
        shrunk_after_overflow = False
        attempt = 0
        while True:
            try:
                response = litellm.completion(**self._request(prompt, tools))
                break
            except litellm.ContextWindowExceededError as e:
                # Our token count was too optimistic (or the window unknown): cut harder, once.
                smaller = self._fit(litellm, messages, (budget or _total(prompt)) // 2, force=True)
                if shrunk_after_overflow or smaller == prompt:
                    raise ModelError(
                        f"{self.name}: the conversation no longer fits the context window: {_one_line(e)}"
                    ) from None
                shrunk_after_overflow, prompt = True, smaller
            except Exception as e:
                if _unreachable(e):  # nothing listens there: retrying for a minute would not help
                    where = self.api_base or f"the {self.provider} API"
                    raise ModelError(f"{self.name}: cannot connect to {where}: {_unreachable(e)}") from None
                if not _retryable(litellm, e):
                    raise ModelError(_describe(self.name, litellm, e)) from None
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempts: {_one_line(e)}"
                    ) from None
                delay = self._delay(attempt, e)
                attempt += 1
                log.warning(
                    "%s: %s; retry %d/%d in %.1fs", self.name, _one_line(e), attempt, self.max_retries, delay
                )
                self._sleep(delay)
        return self._parse(litellm, response, tools)

    def _request(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.name,
            "timeout": self.timeout,
            "max_retries": 0,  # the provider SDK's own retries would hide errors from our backoff
            "drop_params": True,  # tolerate providers that reject e.g. temperature
            **self.completion_kwargs,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.tool_protocol == "native":
            kwargs["messages"] = messages
            if tools:
                kwargs["tools"] = [t.openai() for t in tools]
        else:
            kwargs["messages"] = _with_instructions(text_protocol.to_text_messages(messages), tools)
        return kwargs

    def _delay(self, attempt: int, error: Exception) -> float:
        # Full exponential backoff with jitter, so parallel runs do not retry in lockstep.
        delay = min(self.backoff_max, self.backoff_base * 2**attempt) * (0.5 + random.random() / 2)
        headers = getattr(error, "litellm_response_headers", None) or {}
        try:
            retry_after = float(headers.get("retry-after", 0))
        except (TypeError, ValueError):
            retry_after = 0.0
        return max(delay, min(retry_after, self.backoff_max))

    # ---- context ---------------------------------------------------------------------------------

    def _budget(self, tools: list[ToolSpec]) -> int | None:
        """Tokens the conversation may use: a share of the window, less what rides along with it."""
        if not self.context_window:
            return None
        overhead = len(json.dumps([t.openai() for t in tools])) // 4
        if self.tool_protocol == "text":
            overhead = len(text_protocol.instructions(tools)) // 4
        return max(1, int(self.context_window * self.trim_ratio) - overhead - (self.max_tokens or 0))

    def _fit(
        self, litellm: Any, messages: list[dict[str, Any]], budget: int | None, force: bool = False
    ) -> list[dict[str, Any]]:
        if budget is None:
            return messages
        # Tokenizing every message each turn is wasted work while the conversation is clearly short.
        if not force and _total(messages) < budget // 2:
            return messages

        def count(message: dict[str, Any]) -> int:
            try:
                return int(litellm.token_counter(model=self.name, messages=[message]))
            except Exception:
                return estimate_tokens(message)

        return fit_context(messages, budget, count, self.keep_last)

    # ---- the answer ------------------------------------------------------------------------------

    def _parse(self, litellm: Any, response: Any, tools: list[ToolSpec]) -> ModelResponse:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise ModelError(f"{self.name}: the response has no choices")
        message = choices[0].message
        text = message.content or ""
        usage = self._usage(litellm, response)
        if self.tool_protocol == "text":
            calls = text_protocol.parse(text, tools)
            # Ids must be unique over the run: they key tool results to calls in the history.
            calls = [ToolCall(_new_id(), c.name, c.arguments) for c in calls]
            return ModelResponse(text=text, tool_calls=calls, usage=usage)
        calls = []
        for tool_call in getattr(message, "tool_calls", None) or []:
            name = tool_call.function.name or ""
            raw_args = tool_call.function.arguments
            calls.append(ToolCall(tool_call.id or _new_id(), name, _arguments(name, raw_args, text)))
        return ModelResponse(text=text, tool_calls=calls, usage=usage)

    def _usage(self, litellm: Any, response: Any) -> Usage:
        raw = getattr(response, "usage", None)
        usage = Usage(
            prompt_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
        )
        usage.cost = _cost(litellm, response, self.name)
        return usage


def _cost(litellm: Any, response: Any, name: str) -> float:
    """USD for one response; 0.0 for models litellm has no price for (local, new or custom ones)."""
    # litellm prices the response by the model we asked for, which is what a server answering under a
    # different name (a proxy, an alias) would bill as well.
    hidden = getattr(response, "_hidden_params", None) or {}
    if isinstance(hidden.get("response_cost"), int | float):
        return float(hidden["response_cost"])
    for kwargs in ({"model": name}, {}):
        try:
            return float(litellm.completion_cost(completion_response=response, **kwargs) or 0.0)
        except Exception:
            continue
    return 0.0


def _arguments(name: str, raw: Any, text: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    example = '{"path": "src/app.ts"}'
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as e:
        raise FormatError(
            f"The arguments of your call to {name!r} are not valid JSON ({e}). Nothing was run. Send the "
            f"arguments as one JSON object, e.g. {example}, escaping newlines and quotes inside strings.",
            raw=f"{text}\n{name}({raw})".strip(),
        ) from None
    if not isinstance(value, dict):
        raise FormatError(
            f"The arguments of your call to {name!r} must be a JSON object, not {type(value).__name__}. "
            f"Nothing was run. Example: {example}.",
            raw=f"{text}\n{name}({raw})".strip(),
        )
    return value


def _with_instructions(messages: list[dict[str, Any]], tools: list[ToolSpec]) -> list[dict[str, Any]]:
    if not tools:
        return messages
    guide = text_protocol.instructions(tools)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{guide}"}, *messages[1:]]
    return [{"role": "system", "content": guide}, *messages]


def _total(messages: list[dict[str, Any]]) -> int:
    return sum(estimate_tokens(m) for m in messages)


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def _resolve_name(litellm: Any, name: str, api_base: str | None) -> tuple[str, str]:
    """The name litellm will be called with and its provider; ModelError for names no provider takes."""
    try:
        _, provider, _, _ = litellm.get_llm_provider(name, api_base=api_base)
        return name, provider
    except Exception:
        pass
    if api_base:  # any name works against an OpenAI-compatible server
        return f"openai/{name}", "openai"
    provider = name.split("/", 1)[0] if "/" in name else ""
    if provider:
        known = sorted(str(getattr(p, "value", p)) for p in litellm.provider_list)
        raise ModelError(
            f"unknown provider {provider!r} in {name!r}; known providers: {', '.join(known)} "
            "(or give --api-base for an OpenAI-compatible server)"
        )
    raise ModelError(
        f"unknown model {name!r}: name it PROVIDER/MODEL, e.g. anthropic/claude-sonnet-4-5, openai/gpt-4o, "
        "ollama/qwen2.5-coder, or give --api-base for an OpenAI-compatible server (or use scripted:FILE)"
    )


def _check_key(litellm: Any, name: str) -> None:
    """ModelError naming the variable when the provider's API key is not set: before any run starts,
    not as a failed first turn. Only key variables count: ollama's optional OLLAMA_API_BASE or AWS
    credentials that may come from ~/.aws do not."""
    try:
        found = litellm.validate_environment(model=name)
    except Exception:
        return
    missing = [k for k in found.get("missing_keys") or [] if re.search(r"(API_KEY|_TOKEN)$", k)]
    if found.get("keys_in_environment") or not missing:
        return
    raise ModelError(
        f"{name} needs an API key: set {' or '.join(missing)} in the environment "
        f"(e.g. export {missing[0]}=...), or give --api-base for a local server"
    )


def _model_info(litellm: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(litellm.get_model_info(name))
    except Exception:
        return None


def _retryable(litellm: Any, error: Exception) -> bool:
    transient = (
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        litellm.APIConnectionError,  # includes litellm.Timeout
    )
    status = getattr(error, "status_code", None)
    if not isinstance(error, transient) and not (
        isinstance(status, int) and (status in (408, 429) or status >= 500)
    ):
        return False
    return not _client_side(error)


def _unreachable(error: BaseException) -> str:
    """'connection refused' or the name lookup failure when the cause chain holds one, else ''."""
    import socket

    link: BaseException | None = error
    while link is not None:
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, socket.gaierror):
            return f"cannot resolve the host name ({link.strerror or link})"
        link = link.__cause__ or link.__context__
    return ""


def _client_side(error: BaseException) -> bool:
    """litellm reports client-side mistakes (e.g. a missing API key) as HTTP 500 too; the cause chain
    then holds the provider SDK's bare error class, raised before any request was made."""
    import openai

    link: BaseException | None = error
    while link is not None:
        if type(link) is openai.OpenAIError:
            return True
        link = link.__cause__ or link.__context__
    return False


def _describe(name: str, litellm: Any, error: Exception) -> str:
    hints = [
        (
            litellm.AuthenticationError,
            "authentication failed; check the provider's API key",
        ),
        (litellm.PermissionDeniedError, "permission denied by the provider"),
        (litellm.NotFoundError, "not found; check the model name and --api-base"),
        (litellm.BadRequestError, "the provider rejected the request"),
    ]
    if _client_side(error):
        return f"{name}: cannot send the request: {_one_line(error)}"
    status = getattr(error, "status_code", None)
    http = f" (HTTP {status})" if isinstance(status, int) else ""
    by_status = {401: 0, 403: 1, 404: 2, 400: 3, 422: 3}  # litellm does not map every status to a class
    for k, (cls, hint) in enumerate(hints):
        if isinstance(error, cls) or by_status.get(status) == k:
            return f"{name}: {hint}: {_one_line(error)}{http}"
    return f"{name}: {type(error).__name__}: {_one_line(error)}"


_PREFIX = re.compile(r"^(?:litellm\.)?\w*(?:Error|Exception|Timeout):\s*")


def _one_line(error: Exception) -> str:
    """litellm messages repeat the class name ('litellm.RateLimitError: RateLimitError: OpenAIException -
    ...') and may run over many lines; keep the first line's substance."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    while (stripped := _PREFIX.sub("", text, count=1)) != text:
        text = stripped
    return re.sub(r"^\w+Exception - ", "", text) or type(error).__name__
