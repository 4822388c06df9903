"""The verify pipeline on tiny fake projects: package.json scripts are small node/sh commands, servers are
one-file node apps without dependencies, probes and static checks are stood in by fakes (sys.modules)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from backend_implementor.cli import app
from backend_implementor.verify.engine import VerifyOptions, VerifyUsageError, verify_project, verify_url
from backend_implementor.verify.findings import Evidence, Finding

DATA = Path(__file__).parent / "data"
needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs node+npm"
)

# A dependency-free node server: /openapi.json, /items (leaks an SQL error for a quote), /crash kills it.
SERVER_JS = r"""
const http = require('http');
const fs = require('fs');
if (process.env.PID_FILE) fs.writeFileSync(process.env.PID_FILE, String(process.pid));
const spec = {openapi: '3.0.3', info: {title: 'fake', version: '1'}, paths: {
  '/items': {get: {summary: 'List items', parameters: [{name: 'q', in: 'query', schema: {type: 'string'}}],
    responses: {'200': {description: 'ok', content: {'application/json': {schema: {type: 'object'}}}}}}},
}};
if (process.env.CRASHY) spec.paths['/crash'] = {post: {responses: {'200': {description: 'ok'}}}};
http.createServer((req, res) => {
  const send = (code, obj) => { res.writeHead(code, {'content-type': 'application/json'}); res.end(JSON.stringify(obj)); };
  if (req.url === '/openapi.json') return send(200, spec);
  if (req.url === '/health') return send(200, {ok: true});
  if (req.url.startsWith('/items')) {
    if (decodeURIComponent(req.url).includes("'")) return send(200, {items: [], debug: 'SQL syntax error near quote'});
    return send(200, {items: []});
  }
  if (req.url === '/crash') { process.exit(7); }
  send(404, {error: 'not found'});
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + process.env.PORT));
"""


def make_project(
    root: Path, scripts: dict[str, str], files: dict[str, str] | None = None, **pkg: Any
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": "fake", "scripts": scripts, **pkg}))
    (root / "app.js").write_text(SERVER_JS)
    for name, text in (files or {}).items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        if name.startswith("node_modules/.bin/") or name.endswith(".sh"):
            f.chmod(0o755)
    return root


# A stand-in vitest: writes the real vitest sample report to --outputFile (what the reporter would do).
FAKE_VITEST = f"""#!/bin/sh
for a in "$@"; do case "$a" in --outputFile=*) cp "{DATA / "vitest-sample.json"}" "${{a#--outputFile=}}";; esac; done
echo "fake vitest $@"
exit 1
"""


@dataclass
class FakeTarget:
    base_url: str
    openapi: dict | None
    auth: Any
    db_url: str | None
    is_alive: Any
    signing_secrets: tuple[str, ...] = ()
    recover: Any = None
    users: tuple = ()
    admin: Any = None
    token: str | None = None
    cookies: dict | None = None
    oidc: Any = None
    oidc_names: tuple = ()
    graphql_path: str | None = None
    project_root: Any = None
    production: Any = None


class FakeSession:
    """What the engine uses of the probes' session: its accounts (none here) and its HTTP client."""

    def __init__(self, target: FakeTarget) -> None:
        self.target = target
        self.accounts = types.SimpleNamespace(users=[], reason=None, cfg=None, describe=lambda: {})
        self.http = types.SimpleNamespace(close=lambda: None)
        self.graphql = None

    def first_user(self):
        return None


@pytest.fixture
def fake_checks(monkeypatch):
    """Fake probes (one real HTTP probe) and a fake static scan, agreed interfaces only."""
    calls: dict[str, Any] = {}

    def open_session(target, *, budget_s=60, progress=None):
        calls["target"] = target
        calls["budget_s"] = budget_s
        return FakeSession(target)

    def run_probes(session, *, budget_s=60, progress=None):
        target = session.target
        calls["alive_before"] = target.is_alive()
        if progress:
            progress("sqli-query")
        r = httpx.get(target.base_url + "/items", params={"q": "' OR '1'='1"}, trust_env=False)
        findings = []
        if "SQL" in r.text:
            findings = [Finding("sqli-query", 89, "SQL injection in query parameter 'q'", "critical",
                                "Use parameterised queries", Evidence("GET /items?q=' OR '1'='1", r.text[:200]))]  # fmt: skip
        return types.SimpleNamespace(
            findings=findings, results=[], changes=[], accounts={}, inconclusive=[], matrix=[]
        )

    probes = types.ModuleType("backend_implementor.verify.probes")
    probes.open_session = open_session
    probes.run_probes = run_probes
    target_mod = types.ModuleType("backend_implementor.verify.probes.target")
    target_mod.ProbeTarget = FakeTarget
    static = types.ModuleType("backend_implementor.verify.static")

    def scan(project_dir):
        calls["static_dir"] = project_dir
        if "eval(" in (project_dir / "app.js").read_text():
            return [Finding("eval", 94, "eval of request data", "high", "never eval input",
                            Evidence(location="app.js:1"), stage="static")]  # fmt: skip
        return []

    static.scan = scan
    monkeypatch.setitem(sys.modules, "backend_implementor.verify.probes", probes)
    monkeypatch.setitem(sys.modules, "backend_implementor.verify.probes.target", target_mod)
    monkeypatch.setitem(sys.modules, "backend_implementor.verify.static", static)
    return calls


def pid_gone(pid: int) -> bool:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- usage errors (no processes)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a project PATH or --url URL"),
        (["x", "--url", "http://127.0.0.1:1"], "not both"),
        (["{tmp}/missing"], "no such directory"),
        (["{tmp}"], "no package.json"),
        (["{proj}", "--stages", "install,fuzz"], "unknown stage 'fuzz'"),
        (["--url", "http://127.0.0.1:1", "--stages", "test"], "needs the project's source"),
        (["--url", "ftp://x"], "expected http://host:port"),
        (["{proj}", "--auth", "login"], "--auth: expected key=value"),
        (["{proj}", "--format", "html"], "expected summary, md or json"),
        (["{proj}", "--fuzz-time", "-1"], "--fuzz-time must be"),
        (["{proj}", "--health", "health"], "must be a path"),
        (["{proj}", "--env", "NOPE"], "expected KEY=VALUE"),
        (["{proj}", "--oidc-env", "A,B,C,D"], "--oidc-env 'A,B,C,D': expected NAME"),
        (["{proj}", "--oidc-env", "main issuer"], "expected NAME"),
        (["--url", "http://127.0.0.1:1", "--oidc-env", "MAIN"], "--oidc-env needs the project"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path, args, message):
    proj = make_project(tmp_path / "p", {"start": "node app.js"})
    args = [a.replace("{tmp}", str(tmp_path)).replace("{proj}", str(proj)) for a in args]
    result = runner.invoke(app, ["verify", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unreachable_url_is_exit_2(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["verify", "--url", f"http://127.0.0.1:{port}", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot reach" in result.output
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 2


def test_auth_option_the_backend_refuses_stops_the_run(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class NoSignup(BaseHTTPRequestHandler):
        def _answer(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoSignup)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        r = verify_url(url, VerifyOptions(auth="register=/x", out_dir=tmp_path / "o"))
    finally:
        server.shutdown()
    assert r.exit_code == 2
    assert (
        r.fatal
        == "--auth 'register=/x' does not work on this backend: registration refused: POST /x -> HTTP 404"
    )
    assert [(s.name, s.status) for s in r.stages] == [
        ("reach", "passed"),
        ("security", "skipped"),
        ("contract", "skipped"),
    ]


def test_stage_order_and_selection(tmp_path):
    proj = make_project(tmp_path / "p", {"start": "node app.js"})
    r = verify_project(proj, VerifyOptions(stages=["static", "install"], out_dir=tmp_path / "o"))
    assert [s.name for s in r.stages] == ["install", "static"]
    assert r.stages[0].detail == "no dependencies in package.json: nothing to install"
    with pytest.raises(VerifyUsageError, match="not available here"):
        verify_url("http://127.0.0.1:9", VerifyOptions(stages=["build"]))


# ---------------------------------------------------------------- source stages


@needs_node
@pytest.mark.slow
def test_install_build_test_stages(tmp_path):
    proj = make_project(
        tmp_path / "p",
        {"start": "node app.js", "build": "node -e \"console.error('TS2322: bad type'); process.exit(2)\"",
         "test": "vitest run"},
        {"node_modules/.bin/vitest": FAKE_VITEST},
    )  # fmt: skip
    events: list[tuple[str, str]] = []
    opts = VerifyOptions(stages=["install", "build", "test"], out_dir=tmp_path / "o",
                         progress=lambda event, stage, data: events.append((event, stage)))  # fmt: skip
    r = verify_project(proj, opts)
    by = {s.name: s for s in r.stages}
    # Not a bimpl backend: its tests may need the build's output, so they run after it.
    assert events.index(("end", "build")) < events.index(("start", "test"))
    assert by["install"].status == "skipped"
    assert by["build"].status == "failed" and "TS2322: bad type" in by["build"].log_tail
    assert by["test"].status == "failed"
    assert by["test"].detail == "1 passed, 2 failed, 2 skipped"
    assert r.tests["source"] == "reporter-json"
    assert [f["name"] for f in r.tests["failures"]] == [
        "books › rejects bad isbn",
        "(test file failed to run)",
    ]
    assert r.exit_code == 1


@needs_node
@pytest.mark.slow
def test_install_failure_skips_what_depends_on_it(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_npm = bin_dir / "npm"
    fake_npm.write_text('#!/bin/sh\necho "npm $@"\necho "ERR! 404 no-such-package" >&2\nexit 1\n')
    fake_npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    proj = make_project(tmp_path / "p", {"start": "node app.js", "test": "vitest run"},
                        {"package-lock.json": "{}"}, dependencies={"no-such-package": "1.0.0"})  # fmt: skip
    r = verify_project(
        proj, VerifyOptions(stages=["install", "build", "test", "boot"], out_dir=tmp_path / "o")
    )
    by = {s.name: s for s in r.stages}
    assert by["install"].status == "failed"
    assert by["install"].detail.startswith("npm ci --ignore-scripts")
    assert "no-such-package" in by["install"].log_tail
    assert [by[s].status for s in ("build", "test", "boot")] == ["skipped"] * 3
    assert r.exit_code == 1


@needs_node
@pytest.mark.slow
def test_test_script_without_known_runner_uses_exit_code(tmp_path):
    proj = make_project(tmp_path / "p", {"test": 'node -e "process.exit(0)"'})
    r = verify_project(proj, VerifyOptions(stages=["test"], out_dir=tmp_path / "o"))
    assert r.tests["source"] == "exit-code" and r.tests["passed"] == 1 and r.exit_code == 0


# ---------------------------------------------------------------- build and boot details

# Waits (bounded) for another script to have started: exit 0 when it did, 3 when it never came.
RENDEZVOUS_JS = r"""
const fs = require('fs');
const [me, other] = process.argv.slice(2);
fs.writeFileSync(me, 'started');
const end = Date.now() + 30000;
(function poll() {
  if (fs.existsSync(other)) process.exit(0);
  if (Date.now() > end) { console.error(`${other} never started`); process.exit(3); }
  setTimeout(poll, 50);
})();
"""


@needs_node
@pytest.mark.slow
def test_build_and_an_independent_typecheck_run_side_by_side(tmp_path):
    # Each script waits for the other to start: only a side-by-side run passes.
    proj = make_project(
        tmp_path / "p",
        {"build": "node rv.js build.started check.started",
         "typecheck": "node rv.js check.started build.started --noEmit"},
        {"rv.js": RENDEZVOUS_JS},
    )  # fmt: skip
    r = verify_project(proj, VerifyOptions(stages=["build"], out_dir=tmp_path / "o"))
    assert r.stage("build").status == "passed", r.stage("build").log_tail
    assert r.stage("build").detail == "npm run --silent build; npm run --silent typecheck"


@needs_node
@pytest.mark.slow
def test_bimpl_backend_tests_run_beside_the_build_and_report_in_pipeline_order(tmp_path):
    # The build waits for the tests to start and the tests for the build: only a side-by-side run passes.
    vitest = FAKE_VITEST.replace(
        'echo "fake vitest', 'node rv.js test.started build.started || exit 3\necho "fake vitest'
    )
    proj = make_project(
        tmp_path / "p",
        {"build": "node rv.js build.started test.started", "test": "vitest run"},
        {"rv.js": RENDEZVOUS_JS, "node_modules/.bin/vitest": vitest, ".bimpl.json": "{}"},
    )
    events: list[tuple[str, str]] = []
    opts = VerifyOptions(stages=["build", "test"], out_dir=tmp_path / "o",
                         progress=lambda event, stage, data: events.append((event, stage)))  # fmt: skip
    r = verify_project(proj, opts)
    assert r.stage("build").status == "passed", r.stage("build").log_tail
    assert [s.name for s in r.stages] == ["build", "test"]
    assert r.stage("test").detail == "1 passed, 2 failed, 2 skipped (ran beside the other stages)"
    assert events.index(("start", "test")) < events.index(("end", "build"))


@needs_node
@pytest.mark.slow
def test_build_failure_stops_a_dependent_typecheck(tmp_path):
    # `tsc --build`-style typechecks may read what the build writes: they run after it, and not after a failure.
    proj = make_project(
        tmp_path / "p",
        {"build": "node -e \"console.error('TS1005: expected'); process.exit(2)\"",
         "typecheck": "node -e \"require('fs').writeFileSync('typechecked', '')\" --build"},
    )  # fmt: skip
    r = verify_project(proj, VerifyOptions(stages=["build"], out_dir=tmp_path / "o"))
    assert r.stage("build").status == "failed" and "TS1005" in r.stage("build").log_tail
    assert not (proj / "typechecked").exists()


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize(
    ("prestart", "stages", "builds"),
    [
        ("npm run build", ["build", "boot"], 1),  # built once by the build stage, not again by prestart
        ("npm run build", ["boot"], 1),  # no build stage: prestart must build
        ("node build.js && node build.js", ["build", "boot"], 3),  # not a plain rebuild: it runs
    ],
)
def test_prestart_rebuild_is_skipped_only_after_a_build_stage(tmp_path, prestart, stages, builds):
    proj = make_project(
        tmp_path / "p",
        {"build": "node build.js", "prestart": prestart, "start": "node app.js"},
        {"build.js": "require('fs').appendFileSync('builds.txt', 'built\\n')"},
    )
    r = verify_project(proj, VerifyOptions(stages=stages, health="/health", out_dir=tmp_path / "o"))
    assert r.stage("boot").status == "passed", r.stage("boot").log_tail
    assert (proj / "builds.txt").read_text().count("built") == builds


# ---------------------------------------------------------------- boot, probes, static


@needs_node
@pytest.mark.slow
def test_boot_failure_exit_2_with_log_tail(tmp_path):
    proj = make_project(
        tmp_path / "p",
        {"start": "node -e \"console.error('FATAL: DATABASE_URL is invalid'); process.exit(3)\""},
    )
    result = runner.invoke(
        app, ["verify", str(proj), "--stages", "boot,security", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "did not boot" in result.output
    assert "exited with code 3" in result.output
    assert "FATAL: DATABASE_URL is invalid" in result.output  # the log tail, not a traceback
    assert "Traceback" not in result.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [(s["name"], s["status"]) for s in report["stages"]] == [
        ("boot", "error"),
        ("security", "skipped"),
    ]


@needs_node
@pytest.mark.slow
def test_boot_timeout_when_port_never_opens(tmp_path):
    proj = make_project(
        tmp_path / "p", {"start": "node -e \"console.log('warming up'); setTimeout(() => {}, 60000)\""}
    )
    r = verify_project(proj, VerifyOptions(stages=["boot"], boot_timeout=1.5, out_dir=tmp_path / "o"))
    assert r.exit_code == 2
    assert "not ready after 2s" in r.fatal and "never opened" in r.fatal
    assert "warming up" in r.stage("boot").log_tail


@needs_node
@pytest.mark.slow
def test_full_run_with_fake_probes_and_static(tmp_path, fake_checks):
    pid_file = tmp_path / "pid"
    proj = make_project(tmp_path / "p", {"start": "node app.js"}, {"extra.js": "eval(x)"})
    secrets_file = tmp_path / "secrets"
    record = "require('fs').writeFileSync(process.env.SECRETS_FILE, process.env.JWT_SECRET + ' ' + process.env.APP_SECRET);\n"
    (proj / "app.js").write_text("// eval(req.body)\n" + record + SERVER_JS)
    env = {"PID_FILE": str(pid_file), "SECRETS_FILE": str(secrets_file)}
    r = verify_project(
        proj, VerifyOptions(fuzz_time=0, health="/health", out_dir=tmp_path / "o", env=env, probe_budget=7)
    )
    by = {s.name: s for s in r.stages}
    assert by["boot"].status == "passed" and "GET /health -> 200" in by["boot"].detail
    assert by["contract"].detail == "disabled by --fuzz-time 0"
    assert by["security"].status == "failed" and "CWE-89" in by["security"].detail
    assert by["static"].status == "failed"
    assert sorted(f.cwe for f in r.findings) == [89, 94]
    assert fake_checks["alive_before"] is True and fake_checks["budget_s"] == 7
    assert fake_checks["target"].openapi["paths"]["/items"]
    assert fake_checks["target"].auth is None  # the document shows no way to log in
    # The probes know the secrets the server was started with (to sign tokens of their own).
    assert sorted(fake_checks["target"].signing_secrets) == sorted(secrets_file.read_text().split())
    assert fake_checks["static_dir"] == proj.resolve()
    assert r.endpoints["items"] == [
        {"method": "GET", "path": "/items", "auth": "not declared", "summary": "List items"}
    ]
    assert r.exit_code == 1
    # The server's whole process group is gone once verify returns (npm and node alike).
    assert pid_gone(int(pid_file.read_text()))
    md = (tmp_path / "o" / "report.md").read_text()
    assert "SQL injection in query parameter 'q'" in md and "Use parameterised queries" in md


@needs_node
@pytest.mark.slow
def test_clean_project_exits_0_and_json_format(tmp_path, fake_checks):
    proj = make_project(tmp_path / "p", {"start": "node app.js"})
    (proj / "app.js").write_text(SERVER_JS.replace("SQL syntax error near quote", "nothing"))
    result = runner.invoke(app, ["verify", str(proj), "--fuzz-time", "0", "--format", "json", "--out",
                                 str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds only the report; progress and table go to stderr
    assert data["status"] == "clean" and data["findings"] == []


# ---------------------------------------------------------------- contract (schemathesis) and crashes


@needs_node
@pytest.mark.slow
def test_contract_failure_and_crash_after_the_probes(tmp_path, fake_checks):
    proj = make_project(tmp_path / "p", {"start": "node app.js"})
    r = verify_project(proj, VerifyOptions(stages=["contract", "security"], fuzz_time=3, out_dir=tmp_path / "o",
                                           env={"CRASHY": "1"}))  # fmt: skip
    contract = r.stage("contract")
    assert contract.status == "failed", contract
    failing = {f["operation"] for f in r.contract["failures"]}
    assert "POST /crash" in failing
    crash = next(f for f in r.contract["failures"] if f["operation"] == "POST /crash")
    assert crash["request"].startswith("curl -X ") and "/crash" in crash["request"]
    assert any(f.id == "crash-contract" and f.cwe == 703 for f in r.findings)
    # The probes ran first, on a live server the fuzzer had not touched yet.
    assert r.stage("security").status == "failed" and fake_checks["alive_before"] is True
    assert [s.name for s in r.stages] == ["boot", "security", "contract"]


@needs_node
@pytest.mark.slow
def test_a_schemathesis_crash_leaves_the_contract_stage_incomplete(tmp_path, fake_checks, monkeypatch):
    """Nothing failed, but a phase went untested: neither "failed" (the API did nothing wrong) nor "passed"."""
    from backend_implementor.verify import contract, engine

    crashed = contract.parse_junit(Path(__file__).parent / "data" / "schemathesis-junit-runtime-error.xml")
    monkeypatch.setattr(engine, "run_schemathesis", lambda *a, **k: (1, crashed, ""))
    proj = make_project(tmp_path / "p", {"start": "node app.js"})
    r = verify_project(proj, VerifyOptions(stages=["contract"], fuzz_time=3, out_dir=tmp_path / "o"))
    stage = r.stage("contract")
    assert stage.status == "incomplete", stage
    assert "could not test: Stateful tests: schemathesis crashed (AttributeError" in stage.detail
    assert r.exit_code == 3


# ---------------------------------------------------------------- black box


@needs_node
@pytest.mark.slow
def test_cli_verify_url_against_a_server_we_started(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proj = make_project(tmp_path / "srv", {})
    proc = subprocess.Popen(["node", "app.js"], cwd=proj, env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        bimpl = [sys.executable, "-c", "from backend_implementor.cli import main; main()"]
        out = subprocess.run(
            [*bimpl, "verify", "--url", f"http://127.0.0.1:{port}", "--fuzz-time", "2", "--probe-budget", "10", "--format", "json",
             "--out", str(tmp_path / "o")],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        data = json.loads(out.stdout)
        assert data["mode"] == "url" and data["spec_source"] == "served at /openapi.json"
        stages = {s["name"]: s["status"] for s in data["stages"]}
        assert stages["reach"] == "passed" and stages["contract"] == "passed", out.stderr
        assert data["contract"]["operations"] == 1
        assert data["deliverables"]["endpoints"]["items"][0]["path"] == "/items"
        assert data["deliverables"]["schema"]["source"].startswith("unavailable")
        assert "result: " in out.stderr  # the verdict line went to stderr, the JSON to stdout
        # Exit code follows the security stage: real probes (once present) flag the planted SQL leak.
        assert out.returncode == data["exit_code"]
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
