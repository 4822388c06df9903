"""Keeping a conversation inside the model's context window by shortening old tool observations.

Only `tool` messages are shortened, oldest first, each to its head and tail with a note of what was cut.
Never touched: the system prompt, the first user message (the task) and the last `keep_last` messages
(what the model is working on right now). The input list is never modified; a shortened copy is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Successive passes keep less of each old observation: first a generous head+tail, then a glimpse, then
# only the note. Stopping as soon as the conversation fits keeps as much detail as the window allows.
_KEEP_CHARS = (2000, 400, 0)


def estimate_tokens(message: dict[str, Any]) -> int:
    """A tokenizer-free estimate (~4 characters per token), plus a little per-message overhead."""
    content = message.get("content")
    size = len(content) if isinstance(content, str) else len(str(content or ""))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        size += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return size // 4 + 4


def shorten(text: str, keep: int) -> str:
    """`text` cut to its first and last `keep // 2` characters around a note saying how much went."""
    if len(text) <= keep + 200:  # not worth a note
        return text
    head, tail = keep // 2, keep - keep // 2
    cut = len(text) - head - tail
    note = (
        f"\n[... {cut} characters of this old observation were removed to fit the context window; "
        "run the tool again if you need them ...]\n"
    )
    return text[:head] + note + (text[-tail:] if tail else "")


def fit_context(
    messages: list[dict[str, Any]],
    budget: int,
    count: Callable[[dict[str, Any]], int] = estimate_tokens,
    keep_last: int = 4,
) -> list[dict[str, Any]]:
    """A copy of `messages` whose total `count` is at most `budget` tokens when shortening can get there.

    When even the fully shortened conversation is over budget it is returned as short as it got: the
    protected messages are never cut, and the provider's own error is clearer than a silent truncation.
    """
    sizes = [count(m) for m in messages]
    total = sum(sizes)
    if total <= budget:
        return messages
    protected = set(range(max(0, len(messages) - keep_last), len(messages)))
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    if first_user is not None:
        protected.add(first_user)
    candidates = [
        i
        for i, m in enumerate(messages)
        if i not in protected and m.get("role") == "tool" and isinstance(m.get("content"), str)
    ]
    out = list(messages)
    for keep in _KEEP_CHARS:
        for i in candidates:
            if total <= budget:
                return out
            # Cut from the original each pass so the note counts what really went.
            shortened = shorten(messages[i]["content"], keep)
            if shortened == out[i]["content"]:
                continue
            out[i] = {**out[i], "content": shortened}
            new_size = count(out[i])
            total += new_size - sizes[i]
            sizes[i] = new_size
    return out
