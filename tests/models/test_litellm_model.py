"""The real litellm path, over HTTP, against the fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from fake_openai import FakeOpenAIServer

from backend_implementor.models import get_model
from backend_implementor.models.base import FormatError, ModelError, ToolSpec
from backend_implementor.models.litellm_model import LitellmModel

TOOLS = [
    ToolSpec(
        "write_file",
        "Write a file.",
        {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
    ),
    ToolSpec("finish", "End the run.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
]
TASK = [
    {"role": "system", "content": "You are a backend implementor."},
    {"role": "user", "content": "Build it."},
]


def model(server: FakeOpenAIServer, name: str = "openai/fake-model", **kwargs: Any) -> LitellmModel:
    kwargs.setdefault("api_key", "sk-fake")
    kwargs.setdefault("backoff_base", 0.001)  # retries in tests wait microseconds
    kwargs.setdefault("backoff_max", 0.01)
    result = get_model(name, api_base=server.url, **kwargs)
    assert isinstance(result, LitellmModel)
    return result


def sent(server: FakeOpenAIServer, index: int = -1) -> dict[str, Any]:
    return server.requests[index]["body"]


# ---- native tool calls --------------------------------------------------------------------------------


def test_native_tool_calls(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_tool_calls(
        [("write_file", {"path": "src/a.ts", "content": "x\n"}), ("finish", "")],
        text="Writing.",
        prompt_tokens=42,
    )
    m = model(fake_openai)
    assert m.tool_protocol == "native"  # unknown model behind an api_base: assume an OpenAI-style server
    history = [
        *TASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "finish", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "name": "finish", "content": "not yet"},
    ]
    response = m.query(history, TOOLS)
    assert response.text == "Writing."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("write_file", {"path": "src/a.ts", "content": "x\n"}),
        ("finish", {}),
    ]
    assert response.tool_calls[0].id.startswith("call_fake_")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.cost) == (
        42,
        5,
        0.0,
    )
    body = sent(fake_openai)
    assert body["model"] == "fake-model"
    assert [t["function"]["name"] for t in body["tools"]] == ["write_file", "finish"]
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c0",
        "name": "finish",
        "content": "not yet",
    }
    assert body["messages"][0] == TASK[0]  # no protocol text added for native models
    # The assistant message round-trips into the next request.
    assert (
        json.loads(response.assistant_message()["tool_calls"][0]["function"]["arguments"])["path"]
        == "src/a.ts"
    )


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"path": "a.ts", "content": "unterminated', "are not valid JSON"),
        ('["a.ts"]', "must be a JSON object, not list"),
    ],
)
def test_native_bad_arguments_are_format_errors(
    fake_openai: FakeOpenAIServer, arguments: str, problem: str
) -> None:
    fake_openai.add_tool_calls([("write_file", arguments)])
    with pytest.raises(FormatError) as info:
        model(fake_openai).query(TASK, TOOLS)
    assert (
        problem in str(info.value)
        and "'write_file'" in str(info.value)
        and "Nothing was run" in str(info.value)
    )
    assert arguments in info.value.raw


# ---- text protocol ------------------------------------------------------------------------------------


def test_text_protocol(fake_openai: FakeOpenAIServer) -> None:
    reply = 'Creating it.\n```tool_call\n{"name": "write_file", "arguments": {"path": "a.ts", "content": ""}}\n```'
    fake_openai.add_text(reply)
    fake_openai.add_text(reply)
    m = model(fake_openai, tool_protocol="text")
    first = m.query(TASK, TOOLS)
    assert first.text == reply
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("write_file", {"path": "a.ts", "content": ""})
    ]
    body = sent(fake_openai)
    assert "tools" not in body
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith(TASK[0]["content"])
    assert "```tool_call" in system["content"] and "## write_file" in system["content"]

    history = [*TASK, first.assistant_message()]
    history.append({"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "wrote a.ts"})
    second = m.query(history, TOOLS)
    assert second.tool_calls[0].id != first.tool_calls[0].id  # ids stay unique across turns
    messages = sent(fake_openai)["messages"]
    assert all("tool_calls" not in msg and msg["role"] != "tool" for msg in messages)
    assert messages[-1] == {"role": "user", "content": "Observation from write_file:\nwrote a.ts"}
    assert messages[-2] == {"role": "assistant", "content": reply}  # its own words, blocks not doubled


def test_text_protocol_without_system_prompt_and_bad_reply(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_text('```tool_call\n{"name": "rm_rf", "arguments": {}}\n```')
    with pytest.raises(FormatError, match="unknown tool 'rm_rf'"):
        model(fake_openai, tool_protocol="text").query([{"role": "user", "content": "go"}], TOOLS)
    messages = sent(fake_openai)["messages"]
    assert messages[0]["role"] == "system" and "# How to call tools" in messages[0]["content"]
    assert messages[1] == {"role": "user", "content": "go"}


# ---- retries and errors -------------------------------------------------------------------------------


def test_retries_rate_limits_and_server_errors_with_growing_backoff(fake_openai: FakeOpenAIServer) -> None:
    for status in (429, 500, 503):
        fake_openai.add_error(status)
    fake_openai.add_text("finally")
    delays: list[float] = []
    m = model(fake_openai, backoff_base=1.0, backoff_max=100.0, sleep=delays.append)
    assert m.query(TASK, TOOLS).text == "finally"
    assert len(fake_openai.requests) == 4
    # Exponential with jitter: attempt n waits between half and all of base * 2**n.
    assert len(delays) == 3
    for n, delay in enumerate(delays):
        assert 2**n / 2 <= delay <= 2**n


def test_retry_after_header_is_honoured(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_error(429, headers={"Retry-After": "3"})
    fake_openai.add_text("ok")
    delays: list[float] = []
    assert model(fake_openai, backoff_max=10.0, sleep=delays.append).query(TASK, TOOLS).text == "ok"
    assert delays == [3.0]


def test_gives_up_after_max_retries(fake_openai: FakeOpenAIServer) -> None:
    for _ in range(3):
        fake_openai.add_error(500, "upstream exploded")
    fake_openai.add_text("too late")
    with pytest.raises(ModelError, match=r"gave up after 3 attempts: upstream exploded"):
        model(fake_openai, max_retries=2).query(TASK, TOOLS)
    assert len(fake_openai.requests) == 3 and fake_openai.pending == 1


def test_timeout_is_retried(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_hang()
    fake_openai.add_text("after the timeout")
    assert model(fake_openai, timeout=0.5).query(TASK, TOOLS).text == "after the timeout"
    assert len(fake_openai.requests) == 2


def test_connection_refused_fails_at_once_naming_the_address() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    delays: list[float] = []
    for name in ("openai/x", "ollama/x"):
        base = f"http://127.0.0.1:{port}" + ("/v1" if name.startswith("openai") else "")
        m = get_model(name, api_base=base, api_key="k", max_retries=2, sleep=delays.append)
        with pytest.raises(ModelError) as info:
            m.query(TASK, TOOLS)
        assert str(info.value) == f"{name}: cannot connect to {base}: connection refused"
    assert delays == []


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "authentication failed"),
        (403, "permission denied"),
        (404, "not found; check the model name"),
        (400, "the provider rejected the request"),
    ],
)
def test_non_retryable_errors(fake_openai: FakeOpenAIServer, status: int, hint: str) -> None:
    fake_openai.add_error(status, "computer says no")
    fake_openai.add_text("never reached")
    with pytest.raises(ModelError) as info:
        model(fake_openai).query(TASK, TOOLS)
    message = str(info.value)
    assert message.startswith("openai/fake-model: ") and hint in message and "computer says no" in message
    assert f"(HTTP {status})" in message and "\n" not in message
    assert len(fake_openai.requests) == 1


def test_local_server_needs_no_api_key(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_openai.add_text("hi")
    assert model(fake_openai, api_key=None).query(TASK, []).text == "hi"
    assert fake_openai.requests[0]["headers"]["authorization"] == "Bearer sk-no-key"


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("openai/gpt-5", "OPENAI_API_KEY"),
        ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("groq/llama-3.1-8b-instant", "GROQ_API_KEY"),
    ],
)
def test_a_missing_provider_key_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, name: str, variable: str
) -> None:
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ModelError) as info:
        get_model(name)
    message = str(info.value)
    assert message.startswith(f"{name} needs an API key: set {variable} in the environment")
    assert "OPENAI" not in message.replace(variable, "") or variable.startswith("OPENAI")


def test_providers_without_a_required_key_are_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    assert get_model("ollama/qwen2.5-coder").name == "ollama/qwen2.5-coder"  # localhost by default
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert get_model("bedrock/anthropic.claude-3-haiku-20240307-v1:0")  # ~/.aws or an instance role


def test_an_unknown_provider_is_named_with_the_known_ones() -> None:
    with pytest.raises(ModelError) as info:
        get_model("foo/bar")
    message = str(info.value)
    assert message.startswith("unknown provider 'foo' in 'foo/bar'; known providers: ")
    assert "anthropic" in message and "ollama" in message and "openai" in message


# ---- cost, context window, protocol choice, names ------------------------------------------------------


def test_cost_priced_and_unpriced(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_text("a", prompt_tokens=1_000_000, completion_tokens=0)
    fake_openai.add_text("b", prompt_tokens=1_000_000, completion_tokens=0)
    assert model(fake_openai).query(TASK, []).usage.cost == 0.0  # unknown to litellm: tolerated
    priced = model(fake_openai, name="openai/gpt-4o")
    assert 0.5 < priced.query(TASK, []).usage.cost < 50  # a million input tokens of gpt-4o, in dollars


def test_context_window_and_protocol_choice(fake_openai: FakeOpenAIServer) -> None:
    assert model(fake_openai).context_window is None
    assert model(fake_openai, context_window=8000).context_window == 8000
    known = model(fake_openai, name="openai/gpt-4o")
    assert (known.context_window, known.tool_protocol) == (128_000, "native")
    assert model(fake_openai, tool_protocol="text").tool_protocol == "text"
    assert model(fake_openai, tool_protocol="native").tool_protocol == "native"
    # A provider without OpenAI-style tools and no api_base: the text protocol.
    assert get_model("huggingface/some-model", api_key="k").tool_protocol == "text"


def test_model_names(fake_openai: FakeOpenAIServer) -> None:
    assert model(fake_openai, name="bare-name").name == "openai/bare-name"  # any name works with an api_base
    with pytest.raises(ModelError, match=r"unknown model 'gpt4': name it PROVIDER/MODEL"):
        get_model("gpt4")
    with pytest.raises(ModelError, match="contains whitespace"):
        get_model("openai/gpt 4o")


# ---- context trimming on the wire ----------------------------------------------------------------------


def long_history() -> list[dict[str, Any]]:
    messages = [dict(m) for m in TASK]
    for k in range(4):
        call = {"id": f"c{k}", "type": "function", "function": {"name": "write_file", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        size = 3000 if k < 2 else 10  # two big old observations, a small recent exchange
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"c{k}",
                "content": f"START{k} " + "lorem ipsum " * size + f"END{k}",
            }
        )
    return messages


def test_old_observations_are_shortened_near_the_context_limit(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add_text("ok")
    history = long_history()
    model(fake_openai, context_window=12_000).query(history, TOOLS)
    sent_messages = sent(fake_openai)["messages"]
    assert sent_messages[:2] == TASK
    # The recent exchange is whole (litellm drops `content: None` from assistant messages on the way).
    assert [m.get("content") for m in sent_messages[-4:]] == [m["content"] for m in history[-4:]]
    old = sent_messages[3]["content"]
    assert (
        old.startswith("START0") and old.endswith("END0") and "were removed to fit the context window" in old
    )
    assert len(old) < len(history[3]["content"]) // 5
    assert history[3]["content"].count("lorem") == 3000  # the caller's history is untouched


def test_context_overflow_error_trims_and_retries_once(fake_openai: FakeOpenAIServer) -> None:
    overflow = (
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 40000 tokens."
    )
    fake_openai.add_error(400, overflow)
    fake_openai.add_text("fits now")
    history = long_history()
    assert model(fake_openai).query(history, TOOLS).text == "fits now"  # window unknown until the error
    first, second = (r["body"]["messages"] for r in fake_openai.requests)
    assert first[3]["content"] == history[3]["content"]
    assert "were removed to fit the context window" in second[3]["content"]

    fake_openai.add_error(400, overflow)
    fake_openai.add_error(400, overflow)
    with pytest.raises(ModelError, match="no longer fits the context window"):
        model(fake_openai).query(history, TOOLS)
