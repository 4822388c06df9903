"""What verify puts in the server's environment for an app with an OpenID login: its own provider's
issuer, client id and secret under the names the app reads (.env.example's OIDC_<NAME>_ISSUER keys, or
--oidc-env), PUBLIC_URL, and never over what --env gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend_implementor.verify.engine import (
    OidcLogin,
    VerifyOptions,
    VerifyUsageError,
    _new_server_env,
    _Run,
    _start_oidc_provider,
    parse_oidc_env,
)
from backend_implementor.verify.project import detect_project
from backend_implementor.verify.report import Report

ENV_EXAMPLE = """# Copy to .env
PORT=3000
PUBLIC_URL=http://localhost:3000
OIDC_MAIN_ISSUER=https://login.example.com
OIDC_MAIN_CLIENT_ID=
OIDC_MAIN_CLIENT_SECRET=
  OIDC_GOOGLE_WORK_ISSUER=https://accounts.google.com
# OIDC_OLD_ISSUER=https://old.example.com
"""


def _run(tmp_path: Path, files: dict[str, str], **opts) -> _Run:
    root = tmp_path / "app"
    root.mkdir()
    (root / "package.json").write_text(json.dumps({"name": "app", "scripts": {"start": "node app.js"}}))
    for name, text in files.items():
        (root / name).write_text(text)
    project = detect_project(root)
    report = Report(mode="project", target=str(root), tool_version="test", started_at="now")
    run = _Run(report, VerifyOptions(**opts), tmp_path / "out", ["boot"])
    run.project = project
    return run


@pytest.fixture
def started():
    runs: list[_Run] = []

    def start(run: _Run) -> _Run:
        _start_oidc_provider(run, run.project)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.oidc is not None:
            run.oidc.close()


def test_env_example_keys_get_verify_s_provider_and_public_url(tmp_path, started):
    run = started(_run(tmp_path, {".env.example": ENV_EXAMPLE}))
    assert [login.name for login in run.oidc_logins] == ["main", "google_work"]
    env = _new_server_env(run, 4321)
    provider = run.oidc
    assert env["OIDC_MAIN_ISSUER"] == env["OIDC_GOOGLE_WORK_ISSUER"] == provider.issuer
    assert env["OIDC_MAIN_CLIENT_ID"] == provider.client_id == "bimpl-verify"
    assert env["OIDC_MAIN_CLIENT_SECRET"] == provider.client_secret and len(provider.client_secret) >= 32
    assert env["PUBLIC_URL"] == "http://127.0.0.1:4321"
    assert "OIDC_OLD_ISSUER" not in env  # commented out
    (change,) = run.report.changes
    assert change.startswith(f"ran an OpenID provider at {provider.issuer}") and "PUBLIC_URL" in change


def test_env_given_by_the_user_wins_and_their_own_issuer_needs_no_provider(tmp_path, started):
    given = {"OIDC_MAIN_ISSUER": "https://mine.example.com", "PUBLIC_URL": "https://app.example.com"}
    text = "OIDC_MAIN_ISSUER=\nOIDC_MAIN_CLIENT_ID=\nOIDC_MAIN_CLIENT_SECRET=\nPUBLIC_URL=\n"
    run = started(_run(tmp_path, {".env.example": text}, env=given))
    assert run.oidc is None and run.oidc_logins == []
    env = _new_server_env(run, 4321)
    assert env["OIDC_MAIN_ISSUER"] == "https://mine.example.com" and "OIDC_MAIN_CLIENT_ID" not in env
    assert env["PUBLIC_URL"] == "https://app.example.com"


def test_oidc_env_option_names_the_app_s_own_variables(tmp_path, started):
    run = started(_run(tmp_path, {}, oidc_env=["SSO_ISSUER_URL,SSO_CLIENT_ID,SSO_CLIENT_SECRET", "corp"],
                       env={"SSO_CLIENT_ID": "theirs"}))  # fmt: skip
    env = _new_server_env(run, 4321)
    assert env["SSO_ISSUER_URL"] == env["OIDC_CORP_ISSUER"] == run.oidc.issuer
    assert env["SSO_CLIENT_ID"] == "theirs" and env["SSO_CLIENT_SECRET"] == run.oidc.client_secret
    assert "PUBLIC_URL" not in env  # not listed in a .env.example


def test_no_oidc_keys_no_provider_and_nothing_added(tmp_path, started):
    run = started(_run(tmp_path, {".env.example": "PORT=3000\nJWT_SECRET=\n"}))
    assert run.oidc is None
    assert not any(k.startswith("OIDC_") or k == "PUBLIC_URL" for k in _new_server_env(run, 4321))
    assert run.report.changes == []


def test_parse_oidc_env():
    assert parse_oidc_env("main") == OidcLogin(
        "OIDC_MAIN_ISSUER", "OIDC_MAIN_CLIENT_ID", "OIDC_MAIN_CLIENT_SECRET", "main"
    )
    assert parse_oidc_env("ISS, CID") == OidcLogin("ISS", "CID", None)
    for bad in ("", "A,B,C,D", "A,,C", "1BAD", "A-B"):
        with pytest.raises(VerifyUsageError):
            parse_oidc_env(bad)
