from __future__ import annotations

import copy

from backend_implementor.models.context import estimate_tokens, fit_context, shorten


def conversation(observation_sizes: list[int], task: str = "build the API") -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": "S" * 4000}, {"role": "user", "content": task}]
    for k, size in enumerate(observation_sizes):
        call = {"id": f"c{k}", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        body = f"HEAD{k}" + "x" * size + f"TAIL{k}"
        messages.append({"role": "tool", "tool_call_id": f"c{k}", "content": body})
    return messages


def total(messages: list[dict]) -> int:
    return sum(estimate_tokens(m) for m in messages)


def test_under_budget_is_returned_as_is() -> None:
    messages = conversation([100, 100])
    assert fit_context(messages, total(messages)) is messages


def test_oldest_observation_is_shortened_first_keeping_head_and_tail() -> None:
    messages = conversation([20_000, 20_000, 20_000, 100, 100])
    before = copy.deepcopy(messages)
    budget = total(messages) - 3000  # a little over: one old observation must give way
    out = fit_context(messages, budget)
    assert total(out) <= budget
    first = out[3]["content"]
    assert first.startswith("HEAD0") and first.endswith("TAIL0")
    assert "characters of this old observation were removed" in first and len(first) < 3000
    cut = len(messages[3]["content"]) - 2000
    assert f"[... {cut} characters" in first
    assert out[5] == messages[5] and out[7] == messages[7]  # newer ones untouched: not needed
    assert messages == before  # the caller's conversation is never modified


def test_system_task_and_recent_messages_are_never_cut() -> None:
    task = "T" * 50_000  # even a huge task stays whole
    messages = conversation([30_000, 30_000, 30_000], task=task)
    out = fit_context(messages, budget=10, keep_last=4)  # unreachable budget: best effort
    assert out[0] == messages[0] and out[1]["content"] == task
    assert out[-4:] == messages[-4:]  # includes the last two (large) observations
    # Everything else that could go went, down to the note alone.
    assert out[3]["content"].startswith("\n[... ") and "HEAD0" not in out[3]["content"]
    assert [m["role"] for m in out] == [m["role"] for m in messages]  # nothing dropped, pairs intact


def test_passes_keep_as_much_as_fits() -> None:
    messages = conversation([20_000, 20_000, 0, 0])
    # Room for both observations at ~2000 chars but not more: the first pass suffices for both.
    budget = total(messages) - 2 * (20_000 - 2_200) // 4
    out = fit_context(messages, budget)
    assert total(out) <= budget
    assert "HEAD0" in out[3]["content"] and "HEAD1" in out[5]["content"]
    assert all(len(out[i]["content"]) < 2300 for i in (3, 5))


def test_custom_counter_is_used() -> None:
    messages = conversation([1000, 1000, 0, 0])
    calls: list[str] = []

    def count(message: dict) -> int:
        calls.append(message["role"])
        return len(str(message.get("content") or ""))  # one token per character

    budget = sum(count(m) for m in messages) - 500
    calls.clear()
    out = fit_context(messages, budget, count)
    assert sum(len(str(m.get("content") or "")) for m in out) <= budget
    assert calls  # the given counter, not the estimate, decided


def test_shorten() -> None:
    assert shorten("short", 10) == "short"
    text = "a" * 500 + "Z" * 5000 + "c" * 500
    out = shorten(text, 1000)
    assert out.startswith("a" * 500) and out.endswith("c" * 500) and "Z" not in out
    assert "[... 5000 characters" in out
    assert shorten(text, 0).strip().startswith("[... 6000 characters")
