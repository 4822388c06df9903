"""The real `bimpl verify` command, all stages (contract fuzzing included, kept short), over representative
corpus apps: a vulnerable app exits 1 naming its planted CWE with evidence, its twin exits 0. Plus the
input validation the twins need for the contract stage (a NUL byte is a 400, never a 500)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from corpus_helpers import CorpusApp, boot, corpus_apps, ensure_node_modules

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="needs node and npm"
    ),
]

# One of each kind: SQL in query/login (PGlite), file names, a database the password probe reads,
# a static-only finding, a crash. Each run is ~10 s; two at a time.
VULNERABLE = ["sqli-query", "password-plain", "eval-injection", "crash"]
TWINS = ["sqli-query-fixed", "path-traversal-fixed", "sqli-login-fixed", "password-plain-fixed"]
APPS = {a.name: a for a in corpus_apps()}
BIMPL = [sys.executable, "-c", "from backend_implementor.cli import main; main()"]


def _verify(app: CorpusApp, tmp: Path) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp / app.name
    args = [*BIMPL, "verify", str(app.dir), "--fuzz-time", "3", "--out", str(out / "report")]
    if app.expected.get("db_dir_env"):
        db = out / "db"
        db.mkdir(parents=True)
        args += ["--db-url", str(db), "--env", f"{app.expected['db_dir_env']}={db}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    report = json.loads((out / "report" / "report.json").read_text())
    return proc, report


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, dict]]:
    ensure_node_modules()
    tmp = tmp_path_factory.mktemp("cli-corpus")
    names = VULNERABLE + TWINS
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda n: _verify(APPS[n], tmp), names))
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("name", VULNERABLE)
def test_vulnerable_app_exits_1_naming_its_cwe(runs, name):
    proc, report = runs[name]
    cwe = APPS[name].expected["cwe"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert report["fatal"] is None
    planted = [f for f in report["findings"] if f["cwe"] == cwe]
    assert planted, [(f["cwe"], f["title"]) for f in report["findings"]]
    ev = planted[0]["evidence"]
    assert ev["request"] and (ev["response"] or ev["location"]), ev
    assert f"CWE-{cwe}" in proc.stdout  # the Markdown report, printed at the end


@pytest.mark.parametrize("name", TWINS)
def test_twin_exits_0_with_every_stage_clean(runs, name):
    proc, report = runs[name]
    stages = {s["name"]: (s["status"], s["detail"]) for s in report["stages"]}
    assert proc.returncode == 0, (stages, report["findings"], report.get("contract"))
    assert report["findings"] == []
    for stage in ("boot", "contract", "security", "static"):
        assert stages[stage][0] == "passed", stages
    assert report["contract"]["operations"] >= 1 and report["contract"]["failures"] == []


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs"),
    [
        ("sqli-query-fixed", "GET", "/products", {"params": {"name": "a\x00b"}}),
        ("sqli-query-fixed", "GET", "/products", {"params": {"name": "x" * 101}}),
        ("path-traversal-fixed", "GET", "/files", {"params": {"name": "readme.txt\x00.png"}}),
        ("sqli-login-fixed", "POST", "/auth/login", {"json": {"email": "a\x00@b.c", "password": "pw123456"}}),
        (
            "sqli-login-fixed",
            "POST",
            "/auth/register",
            {"json": {"email": "a\x00@b.c", "password": "pw123456"}},
        ),
        ("password-plain-fixed", "POST", "/auth/login", {"json": {"email": "a\x00@b.c", "password": "x"}}),
    ],
)
def test_twins_reject_control_characters_with_400(name, method, path, kwargs):
    ensure_node_modules()
    with boot(APPS[name]) as running:
        resp = httpx.request(method, running.base_url + path, timeout=10, **kwargs)
        assert resp.status_code == 400, resp.text
        assert running.is_alive()
