from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from tool_helpers import call, running_with

from backend_implementor.processes import clean_output
from backend_implementor.tools import ToolContext, build_tools, is_secret, scrubbed_env
from backend_implementor.tools.isolation import isolation
from backend_implementor.tools.process import OutputCapture


def test_runs_in_workspace_with_exit_code(ws: Path, tools) -> None:
    out = call(tools, "bash", command="pwd; echo out; echo err >&2")
    assert out == f"{ws}\nout\nerr\n[exit code 0]"


def test_failure_is_an_error_with_exit_code_and_output(tools) -> None:
    out = call(tools, "bash", command="echo before; exit 3")
    assert out.startswith("Error: command failed with exit code 3") and "before" in out


def test_killed_by_signal_is_named(tools) -> None:
    assert "SIGKILL" in call(tools, "bash", command="kill -9 $$")


def test_stdin_is_empty(tools) -> None:
    # `cat` would hang forever on an inherited terminal; /dev/null gives EOF at once.
    assert call(tools, "bash", command="cat; echo done") == "done\n[exit code 0]"


def test_each_call_is_a_fresh_shell(tools) -> None:
    call(tools, "bash", command="cd /; export FOO=1")
    assert call(tools, "bash", command='echo "${FOO:-unset}"') == "unset\n[exit code 0]"


@pytest.fixture(params=["namespace", "process groups"])
def isolated_tools(request, ws: Path):
    """The bash tool with and without a PID namespace per command (the fallback where the kernel
    refuses user namespaces)."""
    if request.param == "namespace" and not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    ctx = ToolContext(workspace=ws, isolate=request.param == "namespace")
    yield build_tools(ctx, ["bash"])
    ctx.close()


def test_timeout_kills_every_process_of_the_command(ws: Path, isolated_tools) -> None:
    # Background children, a grandchild and one that ignores SIGTERM (needs the SIGKILL escalation).
    mark = f"300.{secrets.randbelow(10**6)}"
    command = (
        f"sleep {mark} & echo 1 >> started; "
        f"(sleep {mark} & echo 2 >> started; wait) & "
        f"(trap '' TERM; echo 3 >> started; sleep {mark}) & "
        f"sleep {mark}"
    )
    # 2 s leaves a loaded machine time to start all four before the timeout hits.
    out = call(isolated_tools, "bash", command=command, timeout=2)
    assert out.startswith("Error: command timed out after 2s") and "process group was killed" in out
    assert sorted((ws / "started").read_text().split()) == ["1", "2", "3"]
    assert running_with(f"sleep {mark}") == []


def test_background_processes_left_behind_are_stopped(isolated_tools) -> None:
    mark = f"300.{secrets.randbelow(10**6)}"
    out = call(isolated_tools, "bash", command=f"sleep {mark} & echo started")
    assert out.startswith("started\n[note: the command left background processes running")
    assert out.endswith("[exit code 0]")
    assert running_with(f"sleep {mark}") == []


@pytest.mark.parametrize(
    "shape",
    [
        "setsid sleep {mark} & echo started",
        "setsid bash -c 'trap \"\" TERM HUP; sleep {mark}' & echo started",
        "(setsid sleep {mark} &) ; echo started",  # double fork: the parent is gone at once
        "nohup setsid sleep {mark} > /dev/null 2>&1 & disown; echo started",
    ],
)
def test_nothing_survives_a_command_however_it_detaches(shape, ws: Path) -> None:
    if not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    mark = f"300.{secrets.randbelow(10**6)}"
    ctx = ToolContext(workspace=ws)
    tools = build_tools(ctx, ["bash"])
    out = call(tools, "bash", command=shape.format(mark=mark))
    assert out.startswith("started")
    assert running_with(f"sleep {mark}") == []
    ctx.close()


def test_commands_cannot_read_the_environment_of_processes_outside(ws: Path, tools) -> None:
    if not isolation().available:
        pytest.skip(f"no PID namespaces here: {isolation().reason}")
    # Stands in for bimpl: same user, dumpable, an API key in its environment.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "OPENAI_API_KEY": "sk-MARKMARKMARKMARKMARKMARK"},
    )
    try:
        out = call(tools, "bash", command=f"ls /proc | grep -c '^[0-9]'; cat /proc/{holder.pid}/environ")
        assert out.startswith("Error: command failed with exit code 1")  # not in its /proc at all
        assert int(out.split("Output:\n")[1].splitlines()[0]) < 10
        # Root in the namespace can unmount that /proc and see the host's; the user namespace still
        # keeps the environment (and ptrace) out of reach.
        for command in [f"umount -l /proc; cat /proc/{holder.pid}/environ", f"gdb -p {holder.pid} -batch"]:
            assert "MARKMARK" not in call(tools, "bash", command=command)
    finally:
        holder.kill()
        holder.wait()


def test_timeout_argument_is_validated(tools) -> None:
    assert "timeout must be between" in call(tools, "bash", command="true", timeout=0)
    assert "timeout must be between" in call(tools, "bash", command="true", timeout=99999)
    assert "must be of type number" in call(tools, "bash", command="true", timeout="5")
    assert "command is empty" in call(tools, "bash", command="  ")


def test_context_default_timeout_applies(ws: Path) -> None:
    ctx = ToolContext(workspace=ws, env=dict(os.environ), command_timeout=0.5)
    try:
        out = call(build_tools(ctx, ["bash"]), "bash", command="sleep 30")
    finally:
        ctx.close()
    assert "timed out after 0.5s" in out


def test_long_output_keeps_head_and_tail_with_elided_count(tools) -> None:
    out = call(tools, "bash", command="seq 1 100000")
    lines = out.splitlines()
    gap = [line for line in lines if "elided" in line]
    assert len(gap) == 1
    elided = int(re.match(r"\.\.\. (\d+) lines elided", gap[0]).group(1))
    shown = [int(line) for line in lines if line.isdigit()]
    assert shown[0] == 1 and shown[-1] == 100000
    # Every line is either shown or counted, none twice.
    assert len(shown) + elided == 100000
    assert shown == sorted(set(shown))
    assert len(out) < 25_000


def test_many_short_lines_are_capped_too(tools) -> None:
    lines = call(tools, "bash", command="seq 1 1000").splitlines()
    assert lines[200] == "... 600 lines elided (2,400 bytes) ..."
    assert lines[199] == "200" and lines[201] == "801" and lines[-2] == "1000"


def test_short_output_is_untouched(tools) -> None:
    assert call(tools, "bash", command="seq 1 400").splitlines()[-2:] == ["400", "[exit code 0]"]


def test_one_huge_line_keeps_its_start(tools) -> None:
    out = call(tools, "bash", command="python3 -c 'print(\"x\" * 50000)'; echo end")
    first, gap, last = out.splitlines()[:3]
    assert first == "x" * 2000 and "elided" in gap and last == "end"


def test_capture_render_counts_bytes() -> None:
    read_fd, write_fd = os.pipe()
    capture = OutputCapture(os.fdopen(read_fd, "rb"), head_bytes=10, tail_bytes=10, max_lines=100)
    os.write(write_fd, b"".join(b"%04d\n" % i for i in range(100)))
    os.close(write_fd)
    assert capture.join(timeout=5)
    text = capture.render()
    assert text.startswith("0000\n0001\n...") and text.endswith("0098\n0099\n")
    assert "... 96 lines elided (480 bytes) ..." in text


SECRETS = {
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwx",
    "ANTHROPIC_API_KEY": "sk-ant-api03-secretvalue",
    "GITHUB_TOKEN": "gho_secretvaluesecretvalue",
    "AWS_ACCESS_KEY_ID": "AKIAABCDEFGHIJKLMNOP",
    "AWS_SECRET_ACCESS_KEY": "awssecretvalue",
    "AWS_SESSION_TOKEN": "awssessionvalue",
    "MY_APP_SECRET": "appsecretvalue",
    "DB_PASSWORD": "dbpasswordvalue",
    "npm_config__auth": "npmauthvalue",
    "STRIPE_KEY": "stripekeyvalue",
    "INNOCENT_NAME": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",  # caught by its value
    "JWT_SIGNING_KEY": "jwtsigningvalue",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/creds.json",
    "DATABASE_URL": "postgres://app:hunter2hunter2@db.internal:5432/app",  # a password in the URL
    "REDIS_URL": "redis://:redispassword@127.0.0.1:6379/0",
    "MYSQL_PWD": "mysqlpwdvalue",
    "SMTP_PASS": "smtppassvalue",
    "SENTRY_DSN": "https://abc123def456@o1.ingest.sentry.io/1",
    "PLAIN_LOOKING": "sk_live_abcdefghijklmnop",  # Stripe, by value
    "SOME_PEM": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n",
    "GROQ_LIKE": "gsk_abcdefghijklmnopqrstuvwxyz",
}
KEPT = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "NODE_ENV": "test",
    "TOKENIZERS_PARALLELISM": "false",
}


@pytest.mark.parametrize(("name", "value"), SECRETS.items())
def test_secret_detection(name: str, value: str) -> None:
    assert is_secret(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *KEPT.items(),
        ("HOME", "/root"),
        ("PORT", "3000"),
        ("KEYBOARD", "us"),
        ("PWD", "/work"),
        ("OLDPWD", "/"),
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),  # no password in it
        ("HTTP_PROXY_URL", "http://proxy:3128"),
    ],
)
def test_ordinary_variables_are_kept(name: str, value: str) -> None:
    assert not is_secret(name, value)


def test_commands_never_see_secrets(ws: Path) -> None:
    env = {**SECRETS, **KEPT}
    assert scrubbed_env(env) == KEPT
    # The context gets the raw environment here: bash scrubs again on its own.
    ctx = ToolContext(workspace=ws, env=env)
    try:
        out = call(build_tools(ctx, ["bash"]), "bash", command="env")
    finally:
        ctx.close()
    for value in SECRETS.values():
        assert value not in out
    assert "NODE_ENV=test" in out


def test_empty_context_env_falls_back_to_scrubbed_process_env(ws: Path, monkeypatch) -> None:
    monkeypatch.setenv("BIMPL_TEST_API_KEY", "sk-shouldnotleak0123456789")
    monkeypatch.setenv("BIMPL_TEST_PLAIN", "visible")
    ctx = ToolContext(workspace=ws)
    try:
        out = call(build_tools(ctx, ["bash"]), "bash", command="env")
    finally:
        ctx.close()
    assert "sk-shouldnotleak" not in out and "BIMPL_TEST_PLAIN=visible" in out


def test_colour_codes_and_progress_redraws_are_removed(tools) -> None:
    command = (
        r"printf '\033[1;31mred\033[0m plain\n'; printf 'progress 10%%\rprogress 50%%\rprogress 100%%\n'"
    )
    assert call(tools, "bash", command=command) == "red plain\nprogress 100%\n[exit code 0]"
    assert call(tools, "bash", command="echo $NO_COLOR").startswith("1\n")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[32m✓\x1b[39m passed", "✓ passed"),
        ("\x1b]0;title\x07text", "text"),
        ("a\r\nb\r\n", "a\nb\n"),  # CRLF line ends are not redraws
        ("50%\r100%\ndone", "100%\ndone"),
        ("x = [1, 2]; // ok", "x = [1, 2]; // ok"),
    ],
)
def test_clean_output(raw: str, clean: str) -> None:
    assert clean_output(raw) == clean
