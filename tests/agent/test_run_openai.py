"""`bimpl run` through the real litellm path, over HTTP, against a fake OpenAI-compatible server."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(server, workspace, *extra, task="create the hello module"):
    env = {**os.environ, "OPENAI_API_KEY": "sk-fake-key-for-tests"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "backend_implementor",
            "run",
            "--json",
            "-w",
            str(workspace),
            "--model",
            "openai/fake-model",
            "--api-base",
            server.url,
            *extra,
            task,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def test_native_tool_calls(fake_openai, workspace):
    fake_openai.add_tool_calls(
        [("write_file", {"path": "src/hello.ts", "content": "export const hi = 'hi';\n"})]
    )
    fake_openai.add_tool_calls([("bash", {"command": "cat src/hello.ts"})], text="Checking the file.")
    fake_openai.add_tool_calls([("finish", {"summary": "hello module written"})])
    result = run_cli(fake_openai, workspace)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "finished" and summary["steps"] == 3
    assert summary["prompt_tokens"] == 30 and summary["completion_tokens"] == 15
    assert (workspace / "src" / "hello.ts").read_text() == "export const hi = 'hi';\n"

    first, _, third = (r["body"] for r in fake_openai.requests)
    tool_names = {t["function"]["name"] for t in first["tools"]}
    assert {"read_file", "write_file", "edit_file", "bash", "service", "finish"} <= tool_names
    assert first["messages"][0]["role"] == "system" and "backend" in first["messages"][0]["content"].lower()
    assert first["messages"][1] == {"role": "user", "content": "create the hello module"}
    # the observation of the bash call went back to the model as a tool message
    tool_message = third["messages"][-1]
    assert tool_message["role"] == "tool" and "export const hi" in tool_message["content"]
    assert fake_openai.requests[0]["headers"]["authorization"] == "Bearer sk-fake-key-for-tests"


def test_text_protocol(fake_openai, workspace):
    fake_openai.add_text(
        'I will write the file.\n```tool_call\n{"name": "write_file", "arguments": {"path": "a.txt", "content": "A\\n"}}\n```'
    )
    fake_openai.add_text(
        '```tool_call\n{"name": "write_file", "arguments": {"path": broken}}\n```'
    )  # bad JSON
    fake_openai.add_text('```tool_call\n{"name": "finish", "arguments": {"summary": "wrote a.txt"}}\n```')
    result = run_cli(fake_openai, workspace, "--tool-protocol", "text")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exit_status"] == "finished"
    assert (workspace / "a.txt").read_text() == "A\n"
    first, second, third = (r["body"] for r in fake_openai.requests)
    assert "tools" not in first
    assert "```tool_call" in first["messages"][0]["content"]  # the protocol is described in the system prompt
    # the tool result came back as text, and the format error was explained to the model
    assert any("Created a.txt" in str(m.get("content")) for m in second["messages"])
    assert "Format error" in str(third["messages"][-1]["content"])


def test_repeated_format_errors_end_the_run(fake_openai, workspace):
    for _ in range(3):
        fake_openai.add_tool_calls([("write_file", '{"path": "a.txt", "content": ')])  # truncated JSON
    result = run_cli(fake_openai, workspace)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "format_error" and summary["steps"] == 3


def test_server_errors_are_retried_then_auth_failure_is_a_clear_exit(fake_openai, workspace):
    fake_openai.add_error(500)
    fake_openai.add_tool_calls([("finish", {"summary": "ok after a retry"})])
    result = run_cli(fake_openai, workspace)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["message"] == "ok after a retry"

    fake_openai.add_error(401, "Incorrect API key provided")
    result = run_cli(fake_openai, workspace)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["exit_status"] == "model_error" and "Traceback" not in result.stderr
