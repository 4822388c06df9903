import json

import pytest

from backend_implementor.agent.errors import UsageError
from backend_implementor.agent.trajectory import REDACTED, Trajectory, redact, secret_values


def test_secret_values_picked_by_variable_name():
    env = {
        "OPENAI_API_KEY": "sk-live-abcdef123",
        "GITHUB_TOKEN": "ghp_123456789",
        "MY_SECRET_THING": "hunter22222",
        "DB_PASSWORD": "pa55word!",
        "PATH": "/usr/bin",
        "SHORT_TOKEN": "abc",  # too short to redact safely
        "DEPLOY_KEY": "deploy-key-value",
        "UNREMARKABLE_NAME": "sk-proj-abcdefghijklmnop1234",  # a known key format, whatever the name
    }
    assert {v for v in secret_values(env) if v in env.values()} == {
        "sk-live-abcdef123",
        "ghp_123456789",
        "hunter22222",
        "pa55word!",
        "deploy-key-value",
        "sk-proj-abcdefghijklmnop1234",
    }


def test_encoded_secrets_are_redacted_too(tmp_path):
    import base64
    import subprocess

    key = "sk-proj-abcdefghijklmnopqrstuvwx"
    t = Trajectory.create(tmp_path, {"OPENAI_API_KEY": key})
    echoed = subprocess.run(  # what `echo $KEY | base64` and `| xxd -p` would show the model
        ["bash", "-c", f"echo {key} | base64 -w0; echo; printf %s {key} | od -An -tx1 | tr -d ' \n'"],
        capture_output=True,
        text=True,
    ).stdout
    t.append({"type": "step", "content": echoed, "b64": base64.urlsafe_b64encode(key.encode()).decode()})
    raw = t.path.read_text()
    assert key not in raw
    for line in echoed.splitlines():
        assert line[:40] not in raw
    assert base64.urlsafe_b64encode(key.encode()).decode()[:40] not in raw


def test_redaction_reaches_nested_values_and_disk(tmp_path):
    env = {"ANTHROPIC_API_KEY": "sk-ant-SECRET-VALUE-1"}
    t = Trajectory.create(tmp_path, env)
    t.append(
        {
            "type": "step",
            "messages": [{"role": "tool", "content": "key=sk-ant-SECRET-VALUE-1 end"}],
            "n": [1, "x sk-ant-SECRET-VALUE-1"],
        }
    )
    t.write_json("summary.json", {"message": "sk-ant-SECRET-VALUE-1"})
    raw = t.path.read_text() + (t.run_dir / "summary.json").read_text()
    assert "sk-ant-SECRET-VALUE-1" not in raw
    assert raw.count(REDACTED) == 3
    assert redact({"a": ["no secrets"]}, ["zzzzzz"]) == {"a": ["no secrets"]}


def test_torn_last_line_is_ignored(tmp_path):
    t = Trajectory.create(tmp_path, {})
    t.append({"type": "start", "messages": []})
    t.append({"type": "step", "step": 1})
    with t.path.open("a") as f:
        f.write(json.dumps({"type": "step", "step": 2})[:10])  # killed mid-write
    assert [r["type"] for r in t.records()] == ["start", "step"]


def test_open_unknown_run_lists_known_runs(tmp_path):
    t = Trajectory.create(tmp_path, {})
    t.append({"type": "start"})
    with pytest.raises(UsageError, match=f"no run 'nope'.*runs here: {t.run_dir.name}"):
        Trajectory.open(tmp_path, "nope", {})
    with pytest.raises(UsageError, match="is not a run id"):
        Trajectory.open(tmp_path, "../../etc", {})
    assert Trajectory.open(tmp_path, t.run_dir.name, {}).records() == [{"type": "start"}]
