"""The verify pipeline: install -> build -> test -> boot -> (log in) -> security -> contract -> static -> report.

The probes run before the contract fuzzer: fuzzing would spend a login rate limit and fill the database
with junk the probes trip over. Both act as the accounts logged in once, before either starts.

`verify_project` and `verify_url` are the Python API (the agent's finish tool calls them); the CLI in
verify/cli.py only renders progress and the result. Usage problems raise VerifyUsageError before anything
runs; a backend that does not boot is a result (Report.fatal, exit code 2), not an exception."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from backend_implementor import __version__
from backend_implementor.verify import inventory
from backend_implementor.verify.auth import (
    Account,
    AuthConfig,
    AuthOptionError,
    parse_account,
    parse_auth_option,
    parse_cookie_option,
)
from backend_implementor.verify.contract import (
    DEFAULT_CHECKS,
    drop_alternative_auth,
    run_schemathesis,
    without_opaque_tokens,
)
from backend_implementor.verify.findings import Evidence, Finding
from backend_implementor.verify.proc import BootError, CmdResult, Server, free_port, port_open, run_cmd
from backend_implementor.verify.project import Project, ProjectError, detect_project
from backend_implementor.verify.report import Report, StageResult
from backend_implementor.verify.testresults import (
    ReporterError,
    TestSummary,
    parse_report_file,
    reporter_args,
)

STAGES = ("install", "build", "test", "boot", "security", "contract", "static")
SECRET_ENV_NAMES = ("JWT_SECRET", "APP_SECRET")
URL_STAGES = ("security", "contract")  # what needs no source
SERVER_STAGES = ("security", "contract")
SPEC_PATHS = ("/openapi.json", "/openapi.yaml", "/api-docs", "/api-docs.json", "/swagger.json",
              "/docs/openapi.json", "/api/openapi.json", "/v3/api-docs", "/v2/api-docs", "/docs/json",
              "/swagger/v1/swagger.json", "/api/swagger.json", "/api/docs.json", "/api/v1/openapi.json",
              "/swagger.yaml")  # fmt: skip
SPEC_FILES = ("openapi.json", "openapi.yaml", "openapi.yml", "swagger.json", "swagger.yaml", "swagger.yml",
              "docs/openapi.json", "docs/openapi.yaml", "api/openapi.yaml")  # fmt: skip
URL_RECOVERY_S = 30.0  # how long URL mode waits for a crashed server to come back (e.g. a supervisor)

# (event, stage, data): event is "start" (data None), "end" (data StageResult) or "note" (data str).
ProgressFn = Callable[[str, str, Any], None]


class VerifyUsageError(Exception):
    """Bad options or target; the message is meant for the user as is."""


@dataclass
class VerifyOptions:
    stages: list[str] | None = None  # None = every stage the mode allows
    start_cmd: str | None = None
    port: int | None = None
    health: str | None = None
    auth: str | None = None  # the --auth string
    users: list[str] = field(default_factory=list)  # --user NAME:PASSWORD (existing accounts)
    admin: str | None = None  # --admin NAME:PASSWORD
    token: str | None = None  # --token: a ready bearer token
    cookie: str | None = None  # --cookie: a ready session cookie
    install_scripts: bool = False  # run packages' install scripts (native modules such as bcrypt, sqlite3)
    db_url: str | None = None
    fuzz_time: float = 30.0  # seconds of schemathesis; 0 skips the contract stage
    contract_examples: int = 50  # schemathesis -n: examples per operation (within fuzz_time)
    out_dir: Path | None = None
    spec: str | None = None  # OpenAPI file or URL; otherwise fetched from the server
    contract_checks: str = DEFAULT_CHECKS
    probe_budget: float = 60.0
    boot_timeout: float = 60.0
    install_timeout: float = 600.0
    build_timeout: float = 600.0
    test_timeout: float = 600.0
    env: dict[str, str] = field(default_factory=dict)  # extra env for the server
    # What the project's commands and server start from; None = this process's environment. The agent
    # passes its scrubbed environment, so code the model wrote never sees the user's API keys.
    base_env: dict[str, str] | None = None
    confine: tuple[str, ...] = ()  # argv prefix for the project's commands and server (the agent's namespace)
    # --oidc-env: OpenID login settings the app reads, beyond the OIDC_<NAME>_ISSUER keys of its .env.example:
    # a NAME (OIDC_<NAME>_ISSUER, _CLIENT_ID, _CLIENT_SECRET) or ISSUER_VAR,CLIENT_ID_VAR[,CLIENT_SECRET_VAR].
    oidc_env: list[str] = field(default_factory=list)
    graphql: str | None = None  # --graphql PATH: the GraphQL endpoint; None: looked for at /graphql
    progress: ProgressFn | None = None


def parse_stages(text: str | None, *, url_mode: bool) -> list[str] | None:
    if text is None or not text.strip():
        return None
    stages = [s.strip().lower() for s in text.split(",") if s.strip()]
    allowed = URL_STAGES if url_mode else STAGES
    for s in stages:
        if s not in STAGES:
            raise VerifyUsageError(f"--stages: unknown stage {s!r} (stages: {', '.join(STAGES)})")
        if s not in allowed:
            raise VerifyUsageError(
                f"--stages: {s!r} needs the project's source; with --url only {', '.join(URL_STAGES)} can run"
            )
    return stages


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Run:
    """One verify run: holds the report and the options, times every stage."""

    def __init__(self, report: Report, options: VerifyOptions, out_dir: Path, stages: list[str]) -> None:
        self.report = report
        self.opts = options
        self.out = out_dir
        self.stages = stages
        self.openapi: dict[str, Any] | None = None
        self.spec_ref: str | None = None  # what schemathesis loads (URL or file)
        self.auth: AuthConfig | None = None  # --auth, else detected once the document is known
        self.credentials: dict[str, Any] = {}  # --user/--admin/--token/--cookie, parsed
        self.session: Any = None  # the probes' Context: its accounts serve the probes and the contract
        self.project: Project | None = None
        # Project mode: starts a NODE_ENV=production instance beside the probed one (ProbeTarget.production)
        self.production: Callable[[], contextlib.AbstractContextManager[str | None]] | None = None
        self.pglite_dir: Path | None = None  # fresh PGlite data dir for bimpl backends
        self.cancel = threading.Event()  # stops commands running in worker threads when the run ends
        self.server_env: dict[str, str] | None = None  # what the booted backend got besides base_env
        # The app's OpenID logins verify gives its own provider to (.env.example keys, --oidc-env).
        self.oidc_logins: list[OidcLogin] = []
        self.oidc: Any = None  # verify's OpenID provider (verify/oidc_provider.py), while the server runs

    def emit(self, event: str, stage: str, data: Any = None) -> None:
        if self.opts.progress is not None:
            with contextlib.suppress(Exception):  # a broken display must not break verification
                self.opts.progress(event, stage, data)

    def wanted(self, name: str) -> bool:
        return name in self.stages

    def record(self, result: StageResult) -> StageResult:
        self.report.stages.append(result)
        self.emit("end", result.name, result)
        return result

    def skip(self, name: str, why: str) -> StageResult:
        self.emit("start", name)
        return self.record(StageResult(name, "skipped", 0.0, why))

    def skip_server_stages(self, why: str) -> None:
        for name in SERVER_STAGES:
            if self.wanted(name):
                self.skip(name, why)

    def timed(self, name: str, fn: Callable[[], StageResult]) -> StageResult:
        self.emit("start", name)
        t0 = time.monotonic()
        try:
            result = fn()
        except (KeyboardInterrupt, BootError):
            raise
        except Exception as exc:  # a bug or an unexpected environment: report it, do not crash the run
            result = StageResult(name, "error", detail=f"{type(exc).__name__}: {exc}")
        result.duration_s = time.monotonic() - t0
        return self.record(result)


# ---------------------------------------------------------------- source stages


def _stage_install(run: _Run, project: Project) -> StageResult:
    if not project.has_dependencies:
        return StageResult("install", "skipped", detail="no dependencies in package.json: nothing to install")
    nm = project.root / "node_modules"
    lock = project.root / (project.lockfile or "package.json")
    if nm.is_symlink():
        # A shared install (e.g. a test cache): npm ci would wipe what the link points at.
        return StageResult(
            "install", "skipped", detail="node_modules is a symlink: managed elsewhere, not reinstalled"
        )
    marker = nm / ".package-lock.json"  # npm writes it after every install
    if nm.is_dir() and (not marker.exists() or marker.stat().st_mtime >= lock.stat().st_mtime):
        return StageResult(
            "install", "skipped", detail="node_modules present and not older than the lockfile"
        )
    pm = project.package_manager
    if project.lockfile:
        cmd = {
            "npm": ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            "pnpm": ["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"],
            "yarn": ["yarn", "install", "--frozen-lockfile", "--ignore-scripts"],
        }[pm]
    else:
        cmd = [pm, "install", "--ignore-scripts"] + (["--no-audit", "--no-fund"] if pm == "npm" else [])
    if run.opts.install_scripts:
        cmd = [c for c in cmd if c != "--ignore-scripts"]
    res = run_cmd(
        cmd,
        cwd=project.root,
        log_path=run.out / "install.log",
        timeout_s=run.opts.install_timeout,
        base_env=run.opts.base_env,
        confine=run.opts.confine,
    )
    if res.ok:
        return StageResult("install", "passed", detail=res.cmd, log=str(res.log_path))
    why = res.error or ("timed out" if res.timed_out else f"exit {res.returncode}")
    cause = package_manager_error(res.log_path)
    return StageResult(
        "install",
        "failed",
        detail=f"{res.cmd}: {why}" + (f": {cause.splitlines()[0]}" if cause else ""),
        log=str(res.log_path),
        log_tail=cause or res.tail(),
    )


_USAGE_START = re.compile(r"npm (error|ERR!) (Clean install a project|Usage:|aliases:|Run \"npm help)", re.I)


def package_manager_error(log_path: Path) -> str:
    """npm's own error lines, without the usage text it prints after them (which is all a tail shows)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    out = []
    for line in lines:
        if _USAGE_START.search(line):
            break
        if re.match(r"\s*(npm (error|ERR!)|ERR_PNPM|error )", line) and not re.search(
            r"A complete log", line
        ):
            text = re.sub(r"^\s*npm (error|ERR!)\s*", "", line).strip()
            if text:
                out.append(text)
    return "\n".join(out[:12])


_NATIVE_MISSING = re.compile(
    r"Could not locate the bindings file|Cannot find module '[^']*\.node'|node-gyp|"
    r"napi_|build/Release/|prebuild|No native build was found",
    re.I,
)


def _native_hint(run: _Run, log_tail: str) -> str:
    if run.opts.install_scripts or not _NATIVE_MISSING.search(log_tail):
        return ""
    return (
        "; a native module was not built (verify installs with --ignore-scripts): "
        "run again with --install-scripts if you trust the project's dependencies"
    )


def _stage_build(run: _Run, project: Project) -> StageResult:
    cmds: list[list[str]] = []
    if "build" in project.scripts:
        cmds.append(project.run_script_cmd("build", ["--noCheck"] if _build_may_skip_checks(project) else []))
    if "typecheck" in project.scripts:  # often covers what the build excludes (tests)
        cmds.append(project.run_script_cmd("typecheck"))
    if not cmds and project.typescript:
        tsc = project.bin("tsc")
        if tsc is None:
            return StageResult(
                "build", "failed", detail="tsconfig.json present but typescript is not installed"
            )
        cmds.append([str(tsc), "--noEmit", "-p", "tsconfig.json"])
    if not cmds:
        return StageResult("build", "skipped", detail="no build script and no tsconfig.json")
    logs = [run.out / ("build.log" if i == 0 else "typecheck.log") for i in range(len(cmds))]

    def one(i: int) -> CmdResult:
        return run_cmd(
            cmds[i],
            cwd=project.root,
            log_path=logs[i],
            timeout_s=run.opts.build_timeout,
            base_env=run.opts.base_env,
            confine=run.opts.confine,
            cancel=run.cancel,
        )

    if len(cmds) == 2 and _typecheck_is_independent(project):
        # Two single-threaded compilers: side by side they take the time of the slower one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            second = pool.submit(one, 1)
            results = [one(0), second.result()]
    else:
        results = []
        for i in range(len(cmds)):
            results.append(one(i))
            if not results[-1].ok:
                break
    for res, log in zip(results, logs, strict=False):
        if not res.ok:
            why = res.error or ("timed out" if res.timed_out else f"exit {res.returncode}")
            return StageResult(
                "build", "failed", detail=f"{res.cmd}: {why}", log=str(log), log_tail=res.tail()
            )
    return StageResult(
        "build", "passed", detail="; ".join(r.cmd for r in results), log=str(run.out / "build.log")
    )


def _tests_may_run_beside(project: Project) -> bool:
    """bimpl backends' vitest suites run on their own in-memory PGlite and never read dist/, so they can
    run while the build compiles and the server is booted and probed: the slowest stage no longer adds
    to the others."""
    return project.bimpl_generated and project.test_runner == "vitest"


def _stage_test_beside(run: _Run, project: Project) -> StageResult:
    result = _stage_test(run, project)
    if any(run.wanted(s) for s in STAGES if s not in ("install", "test")):
        result.detail += " (ran beside the other stages)"
    return result


def _build_may_skip_checks(project: Project) -> bool:
    """bimpl backends: `typecheck` checks src and test together, so the build beside it only has to emit
    (tsc --noCheck, TypeScript >= 5.6). That halves the stage's CPU time with no check lost."""
    return (
        project.bimpl_generated
        and project.scripts.get("build") == "tsc -p tsconfig.json"
        and project.scripts.get("typecheck") == "tsc -p tsconfig.test.json"
    )


def _typecheck_is_independent(project: Project) -> bool:
    """Whether `typecheck` can run beside `build`: it writes nothing the build reads or writes (bimpl
    backends: tsc --noEmit on a test tsconfig; elsewhere only a plain `tsc --noEmit` without --build)."""
    if project.bimpl_generated:
        return True
    text = project.scripts.get("typecheck", "")
    return bool(re.search(r"--noEmit\b", text)) and not re.search(r"(^|\s)(-b|--build|--incremental)\b", text)


def _stage_test(run: _Run, project: Project) -> StageResult:
    if project.test_script is None:
        return StageResult("test", "skipped", detail="no test script in package.json")
    runner = project.test_runner
    json_out = run.out / "test-results.json"
    json_out.unlink(missing_ok=True)
    extra = reporter_args(runner, json_out) if runner else []
    cmd = project.run_script_cmd("test", extra)
    res = run_cmd(
        cmd,
        cwd=project.root,
        log_path=run.out / "test.log",
        timeout_s=run.opts.test_timeout,
        base_env=run.opts.base_env,
        confine=run.opts.confine,
        cancel=run.cancel,
    )
    if res.error or res.timed_out:
        why = res.error or f"timed out after {run.opts.test_timeout:.0f}s"
        return StageResult("test", "error", detail=why, log=str(res.log_path), log_tail=res.tail())
    summary: TestSummary
    if runner:
        try:
            summary = parse_report_file(json_out, runner=runner, root=project.root)
        except ReporterError as exc:
            summary = TestSummary(runner=runner, source="exit-code", note=f"no per-test results: {exc}")
            summary.failed = 0 if res.ok else 1
    else:
        summary = TestSummary(
            source="exit-code",
            note="test runner is neither vitest nor jest: per-test "
            "results unavailable, judged by the exit code",
        )
        summary.passed, summary.failed = (1, 0) if res.ok else (0, 1)
        summary.total = 1
    run.report.tests = summary.to_dict()
    counts = f"{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped"
    failed = summary.failed > 0 or not res.ok
    if failed and summary.failed == 0:
        counts += f"; but `{res.cmd}` exited {res.returncode}"
    return StageResult(
        "test",
        "failed" if failed else "passed",
        detail=counts,
        log=str(res.log_path),
        log_tail=res.tail() if failed else "",
    )


# ---------------------------------------------------------------- server stages


def _load_doc(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    if (
        isinstance(doc, dict)
        and ("openapi" in doc or "swagger" in doc)
        and isinstance(doc.get("paths"), dict)
    ):
        return doc
    return None


def _find_spec(run: _Run, base_url: str, root: Path | None) -> None:
    """Sets run.openapi and run.spec_ref: --spec first, then what the server serves, then a file."""
    spec = run.opts.spec
    if spec:
        if spec.startswith(("http://", "https://")):
            try:
                r = httpx.get(spec, timeout=10, trust_env=False)
            except httpx.HTTPError as exc:
                raise VerifyUsageError(f"--spec {spec}: cannot fetch ({type(exc).__name__})") from exc
            doc = _load_doc(r.text) if r.status_code == 200 else None
        else:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise VerifyUsageError(f"--spec {spec}: no such file")
            doc = _load_doc(path.read_text(encoding="utf-8", errors="replace"))
            spec = str(path.resolve())
        if doc is None:
            raise VerifyUsageError(
                f"--spec {spec}: not an OpenAPI/Swagger document (no openapi and paths keys)"
            )
        run.openapi, run.spec_ref = doc, spec
        run.report.spec_source = spec
        return
    with httpx.Client(base_url=base_url, timeout=5, trust_env=False) as client:
        for p in SPEC_PATHS:
            try:
                r = client.get(p)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                doc = _load_doc(r.text)
                if doc is not None:
                    run.openapi, run.spec_ref = doc, base_url + p
                    run.report.spec_source = f"served at {p}"
                    return
    if root is not None:
        for name in SPEC_FILES:
            f = root / name
            if f.is_file():
                doc = _load_doc(f.read_text(encoding="utf-8", errors="replace"))
                if doc is not None:
                    run.openapi, run.spec_ref = doc, str(f)
                    run.report.spec_source = f"file {name}"
                    return


_BUILD_HOOKS = re.compile(r"(npm run(?: -s| --silent)?|pnpm(?: run)?|yarn(?: run)?) build")


def _prestart_is_rebuild(run: _Run, project: Project) -> bool:
    """A `prestart` that only rebuilds what this run's build stage has just built (bimpl backends have
    "prestart": "npm run build"): running it again would cost seconds of boot time for nothing."""
    pre = " ".join(project.scripts.get("prestart", "").split())
    build = run.report.stage("build")
    if not pre or build is None or build.status != "passed" or "build" not in project.scripts:
        return False
    return bool(_BUILD_HOOKS.fullmatch(pre)) or pre == " ".join(project.scripts["build"].split())


def _start_command(run: _Run, project: Project) -> str:
    if run.opts.start_cmd:
        return run.opts.start_cmd
    if "start" in project.scripts:
        cmd = project.run_script_cmd("start")
        if project.package_manager == "npm" and _prestart_is_rebuild(run, project):
            # npm skips pre/post hooks, not the script itself, under --ignore-scripts.
            cmd = [*cmd[:2], "--ignore-scripts", *cmd[2:]]
        return " ".join(cmd)
    if project.main and project.main.endswith((".js", ".mjs", ".cjs")):
        return f"node {project.main}"
    raise VerifyUsageError(f"{project.root}: no start script in package.json; pass --start-cmd")


def _server_env(run: _Run, port: int) -> dict[str, str]:
    """The environment verify adds for the backend: made once per run, so a restarted server keeps the
    secrets (and the tokens signed with them) of the first."""
    if run.server_env is None:
        run.server_env = _new_server_env(run, port)
    return run.server_env


def _new_server_env(run: _Run, port: int) -> dict[str, str]:
    # A secret for apps that refuse to start without one (bimpl's JWT_SECRET, BaxBench's APP_SECRET).
    env: dict[str, str] = {name: secrets.token_urlsafe(48) for name in _secrets_to_give(run)}
    if run.opts.db_url:
        env["DATABASE_URL"] = run.opts.db_url
    elif run.pglite_dir is not None:
        env["PGLITE_DIR"] = str(run.pglite_dir)
        # Set but empty means unset to a bimpl backend, and neither the shell's value nor one from the
        # project's .env (which the backend reads) can replace it: the probes stay off the developer's data.
        env["DATABASE_URL"] = ""
    if run.project is not None and _seeds_admin(run.project) and not run.opts.admin:
        # A bimpl backend seeds its admin_role account from these: the probes get a staff account that
        # may create what ordinary users may not (books a loan refers to), as a user would give --admin.
        env["ADMIN_EMAIL"] = f"bimpl-admin-{secrets.token_hex(4)}@example.com"
        env["ADMIN_PASSWORD"] = f"Bimpl-{secrets.token_hex(8)}-Adm9!"
    env.update(_oidc_env(run, port))
    env.update(run.opts.env)
    return env


# ---------------------------------------------------------------- OpenID logins (verify's own provider)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OIDC_ISSUER_KEY = re.compile(r"^[ \t]*(?:export[ \t]+)?OIDC_([A-Z0-9][A-Z0-9_]*?)_ISSUER[ \t]*=", re.M)
_PUBLIC_URL_KEY = re.compile(r"^[ \t]*(?:export[ \t]+)?PUBLIC_URL[ \t]*=", re.M)
ENV_EXAMPLES = (".env.example", ".env")


@dataclass(frozen=True)
class OidcLogin:
    """One OpenID login of the app: the variables it reads its provider from, and the provider's name in
    its paths (`main` of /auth/oidc/{provider}/login) when the variables say it."""

    issuer: str
    client_id: str
    client_secret: str | None
    name: str | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v in (self.issuer, self.client_id, self.client_secret) if v)


def parse_oidc_env(text: str) -> OidcLogin:
    """--oidc-env: `NAME` (OIDC_<NAME>_ISSUER, OIDC_<NAME>_CLIENT_ID, OIDC_<NAME>_CLIENT_SECRET) or the
    app's own variables `ISSUER_VAR,CLIENT_ID_VAR[,CLIENT_SECRET_VAR]`."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 3 or not all(_ENV_NAME.fullmatch(p) for p in parts):
        raise VerifyUsageError(
            f"--oidc-env {text!r}: expected NAME (for OIDC_<NAME>_ISSUER, _CLIENT_ID, _CLIENT_SECRET) or "
            "ISSUER_VAR,CLIENT_ID_VAR[,CLIENT_SECRET_VAR]"
        )
    if len(parts) == 1:
        name = parts[0].upper()
        return OidcLogin(f"OIDC_{name}_ISSUER", f"OIDC_{name}_CLIENT_ID", f"OIDC_{name}_CLIENT_SECRET",
                         name.lower())  # fmt: skip
    return OidcLogin(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _env_examples(root: Path) -> str:
    text = ""
    for name in ENV_EXAMPLES:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text += (root / name).read_text(encoding="utf-8") + "\n"
    return text


def _oidc_logins(run: _Run, project: Project) -> list[OidcLogin]:
    """The OpenID logins verify gives its provider to: the OIDC_<NAME>_ISSUER keys of .env.example (and
    .env), then --oidc-env; none whose issuer the user set with --env (their own provider)."""
    names = dict.fromkeys(_OIDC_ISSUER_KEY.findall(_env_examples(project.root)))
    found = [parse_oidc_env(name) for name in names]
    found += [parse_oidc_env(text) for text in run.opts.oidc_env]
    unique = list({login.issuer: login for login in found}.values())
    return [login for login in unique if login.issuer not in run.opts.env]


def _oidc_env(run: _Run, port: int) -> dict[str, str]:
    """OIDC_<NAME>_ISSUER (verify's provider), _CLIENT_ID and _CLIENT_SECRET for each OpenID login, and
    PUBLIC_URL (where the app runs) when .env.example lists it; never what --env gives. The report's
    changes say so."""
    env: dict[str, str] = {}
    provider = run.oidc
    if provider is not None:
        for login in run.oidc_logins:
            values = (provider.issuer, provider.client_id, provider.client_secret)
            for var, value in zip((login.issuer, login.client_id, login.client_secret), values, strict=True):
                if var and var not in run.opts.env:
                    env[var] = value
    if (
        run.project is not None
        and "PUBLIC_URL" not in run.opts.env
        and _PUBLIC_URL_KEY.search(_env_examples(run.project.root))
    ):
        env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    if env:
        what = f"set {', '.join(env)} in the server's environment"
        if provider is not None and run.oidc_logins:
            what = f"ran an OpenID provider at {provider.issuer} for the app's OpenID login and {what}"
        if what not in run.report.changes:
            run.report.changes.append(what)
    return env


def _start_oidc_provider(run: _Run, project: Project) -> None:
    run.oidc_logins = _oidc_logins(run, project)
    if run.oidc_logins:
        from backend_implementor.verify.oidc_provider import OidcProvider

        run.oidc = OidcProvider()


def _seeds_admin(project: Project) -> bool:
    """A bimpl backend with accounts reads ADMIN_EMAIL in its config; one without has no login to seed."""
    if not project.bimpl_generated:
        return False
    config = project.root / "src" / "config.ts"
    try:
        return "ADMIN_EMAIL" in config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _secrets_to_give(run: _Run) -> list[str]:
    """bimpl backends get every secret verify knows. Another app gets one only where its code reads it
    without a literal fallback (`process.env.APP_SECRET` alone, or `|| randomBytes(...)`) and neither the
    environment nor the project's .env sets it: overriding a secret the app configures itself (a .env, a
    hard-coded fallback used elsewhere too) can make it refuse its own tokens."""
    project = run.project
    if project is None or project.bimpl_generated:
        return list(SECRET_ENV_NAMES)
    base = run.opts.base_env if run.opts.base_env is not None else os.environ
    wanted = [n for n in SECRET_ENV_NAMES if n not in base and n not in run.opts.env]
    dotenv = ""
    for name in (".env", ".env.local", ".env.development", ".env.test"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            dotenv += (project.root / name).read_text(encoding="utf-8") + "\n"
    wanted = [n for n in wanted if not re.search(rf"^\s*(export\s+)?{n}\s*=", dotenv, re.M)]
    read, configured = set(), set()
    for path in _source_files(project.root):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text(encoding="utf-8")
            for n in wanted:
                if re.search(rf"\b{n}\b", text):
                    read.add(n)
                if re.search(rf"env\.{n}\s*(\|\||\?\?)\s*['\"`]", text):
                    configured.add(n)
    return [n for n in wanted if n in read and n not in configured]


_REQUIRE_RE = re.compile(r"""(?:require\(|from\s+|import\()\s*['"](\.{1,2}/[^'"]+)['"]""")


def _source_files(root: Path, limit: int = 400) -> list[Path]:
    """The project's own JS/TS files, and the files its relative imports reach outside it (a shared lib/)."""
    skip = {"node_modules", ".git", "dist", "build", "coverage", ".bimpl", ".data"}
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        out += [Path(dirpath) / f for f in filenames if f.endswith((".js", ".ts", ".mjs", ".cjs"))]
        if len(out) >= limit:
            return out[:limit]
    seen = set(out)
    for path in list(out):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for rel in _REQUIRE_RE.findall(path.read_text(encoding="utf-8")):
                target = (path.parent / rel).resolve()
                for cand in (target, *(target.with_name(target.name + e) for e in (".js", ".ts")),
                             target / "index.js", target / "index.ts"):  # fmt: skip
                    if cand.is_file() and cand not in seen and len(out) < limit:
                        seen.add(cand)
                        out.append(cand)
    return out


def _prepare_pglite(run: _Run, project: Project) -> None:
    """bimpl backends default to PGlite under .data/: give them a fresh database in the out dir instead, so
    probes never write to the developer's data, and let the password-storage probe read it."""
    if not project.bimpl_generated or run.opts.db_url or "DATABASE_URL" in run.opts.env:
        return
    if "PGLITE_DIR" in run.opts.env:
        return
    d = run.out / "pglite"
    shutil.rmtree(d, ignore_errors=True)
    run.pglite_dir = d


def _stage_boot(run: _Run, server: Server) -> StageResult:
    server.start()
    answered = server.wait_ready(timeout_s=run.opts.boot_timeout, health=run.opts.health)
    detail = f"{server.cmd} on port {server.port}: {answered}"
    if run.oidc is not None:
        given = ", ".join(v for login in run.oidc_logins for v in login.variables if v not in run.opts.env)
        detail += f"; OpenID login through verify's provider at {run.oidc.issuer} ({given})"
    return StageResult("boot", "passed", detail=detail, log=str(server.log_path))


def _stage_contract(run: _Run, base_url: str, is_alive: Callable[[], bool]) -> StageResult:
    if run.opts.fuzz_time <= 0:
        return StageResult("contract", "skipped", detail="disabled by --fuzz-time 0")
    if run.spec_ref is None:
        return StageResult("contract", "skipped", detail="no OpenAPI document (served or --spec)")
    headers, who = _contract_credentials(run)
    spec_ref, left_out = run.spec_ref, []
    if run.openapi:
        doc, left_out = without_opaque_tokens(run.openapi)
        if left_out:
            spec_ref = str(run.out / "contract-openapi.json")
            Path(spec_ref).write_text(json.dumps(doc), encoding="utf-8")
    code, parsed, tail = run_schemathesis(
        spec_ref,
        base_url=base_url,
        out_dir=run.out,
        fuzz_time_s=run.opts.fuzz_time,
        headers=headers,
        checks=run.opts.contract_checks,
        max_examples=run.opts.contract_examples,
    )
    log = str(run.out / "contract.log")
    if parsed is None:
        return StageResult(
            "contract", "error", detail=f"schemathesis exited {code} without a report", log=log, log_tail=tail
        )
    drop_alternative_auth(parsed, run.openapi)
    parsed.authenticated = bool(headers)
    parsed.auth_detail = who
    run.report.contract = parsed.to_dict()
    if not is_alive():
        requests = [f.request for f in parsed.failures if f.request]
        last = requests[-1] if requests else "(schemathesis run; see contract.log)"
        run.report.findings.append(Finding(
            id="crash-contract", cwe=703, severity="high", stage="contract",
            title="The server process died during contract testing",
            fix="Catch errors in async handlers and add an error middleware; never let a request kill the process",
            evidence=Evidence(request=last, response="process exited"),
        ))  # fmt: skip
    detail = (
        f"{parsed.operations} operations, {parsed.failed_operations} failing, "
        f"{len(parsed.failures)} failure(s); {'as a logged-in user' if headers else 'without credentials'}"
    )
    if left_out:
        names = sorted({x.rsplit("?", 1)[1] for x in left_out})
        detail += f"; continuation tokens not made up: ?{', ?'.join(names)} on {len(left_out)} operation(s)"
    if parsed.failures or code not in (0, 1):
        return StageResult("contract", "failed", detail=detail, log=log)
    if parsed.errors:
        # Nothing failed, but part of the API went untested: not a pass.
        detail += "; could not test: " + "; ".join(parsed.errors[:3])
        return StageResult("contract", "incomplete", detail=detail, log=log)
    return StageResult("contract", "passed", detail=detail, log=log)


def _contract_credentials(run: _Run) -> tuple[dict[str, str], str]:
    """The first probe user's credentials as headers for schemathesis (logged in before any fuzzing)."""
    session = run.session
    if session is None:
        return {}, "no login (see --auth)"
    user = session.first_user()
    if user is None:
        return {}, session.accounts.reason or "no login endpoint known (see --auth)"
    headers = dict(user.headers)
    if user.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in user.cookies.items())
        headers.update(user.extra_headers)
    how = "a token" if user.token else "a session cookie"
    return headers, f"as {user.ident}, with {how}"


def _probe_target(run: _Run, base_url: str, is_alive: Callable[[], bool], recover: Callable[[], bool]):
    ProbeTarget = importlib.import_module("backend_implementor.verify.probes.target").ProbeTarget
    creds = run.credentials
    return ProbeTarget(
        base_url=base_url,
        openapi=run.openapi,
        auth=run.auth,
        db_url=run.opts.db_url or (str(run.pglite_dir) if run.pglite_dir else None),
        is_alive=is_alive,
        recover=recover,
        # The secrets the server was given: with one of them the JWT probe can sign a token itself.
        signing_secrets=tuple(v for k, v in (run.server_env or {}).items() if k in SECRET_ENV_NAMES),
        oidc=run.oidc,
        oidc_names=tuple(login.name for login in run.oidc_logins if login.name),
        users=tuple(creds.get("users") or ()),
        admin=creds.get("admin") or _seeded_admin(run),
        token=creds.get("token"),
        cookies=creds.get("cookies"),
        graphql_path=run.opts.graphql,
        project_root=run.project.root if run.project is not None else None,
        production=run.production,
    )


def _seeded_admin(run: _Run) -> Account | None:
    env = run.server_env or {}
    if env.get("ADMIN_EMAIL") and env.get("ADMIN_PASSWORD"):
        return Account(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
    return None


def _log_in(run: _Run, base_url: str, is_alive: Callable[[], bool], recover: Callable[[], bool]) -> bool:
    """Open the probing session and log in the accounts the probes and the contract stage use, before any
    fuzzing. Credentials the user gave (--auth, --user, --token, --cookie) must work: otherwise the run
    stops with report.fatal instead of probing unauthenticated and passing."""
    try:
        probes_mod = importlib.import_module("backend_implementor.verify.probes")
    except ImportError:
        return True
    run.emit("note", "security", "logging in")
    target = _probe_target(run, base_url, is_alive, recover)
    run.session = probes_mod.open_session(
        target,
        budget_s=run.opts.probe_budget,
        progress=lambda *a: run.emit("note", "security", " ".join(map(str, a))),
    )
    accounts = run.session.accounts
    given = run.opts.auth or run.credentials
    if given and not accounts.users:
        shown = [f"--auth {run.opts.auth!r}" if run.opts.auth else ""]
        shown += [f"--user {u.split(':', 1)[0]}" for u in run.opts.users]
        shown += ["--token" if run.opts.token else "", "--cookie" if run.opts.cookie else ""]
        options = " ".join(o for o in shown if o)
        run.report.fatal = f"{options} does not work on this backend: {accounts.reason or 'login failed'}"
        run.report.accounts = accounts.describe()
        run.skip_server_stages(f"{options} does not work on this backend")
        return False
    return True


def _stage_security(run: _Run) -> StageResult:
    probes_mod = importlib.import_module("backend_implementor.verify.probes")
    result = probes_mod.run_probes(
        run.session,
        budget_s=run.opts.probe_budget,
        progress=lambda *a: run.emit("note", "security", " ".join(map(str, a))),
    )
    run.report.findings.extend(result.findings)
    run.report.probes = result.results
    run.report.accounts = result.accounts
    run.report.authorization = result.matrix
    run.report.changes.extend(c for c in result.changes if c not in run.report.changes)
    cwes = ", ".join(f"CWE-{c}" for c in sorted({f.cwe for f in result.findings}))
    counts = {o: sum(r.outcome == o for r in result.results) for o in ("found", "clean", "inconclusive")}
    detail = (
        f"{len(result.findings)} finding(s)" + (f": {cwes}" if cwes else "")
        + f"; probes: {counts['found']} found, {counts['clean']} clean, {counts['inconclusive']} inconclusive"
    )  # fmt: skip
    if result.inconclusive:
        detail += " (" + ", ".join(r.id for r in result.inconclusive) + ")"
    if result.findings:
        status = "failed"
    elif result.inconclusive:
        status = "incomplete"
    else:
        status = "passed"
    return StageResult("security", status, detail=detail)


def _stage_static(run: _Run, root: Path) -> StageResult:
    try:
        static_mod = importlib.import_module("backend_implementor.verify.static")
    except ImportError as exc:
        return StageResult("static", "skipped", detail=f"static checks not available ({exc.name or exc})")
    findings = static_mod.scan(root)
    run.report.findings.extend(findings)
    cwes = ", ".join(f"CWE-{c}" for c in sorted({f.cwe for f in findings}))
    return StageResult(
        "static",
        "failed" if findings else "passed",
        detail=f"{len(findings)} finding(s)" + (f": {cwes}" if cwes else ""),
    )


def _server_stages(
    run: _Run,
    base_url: str,
    is_alive: Callable[[], bool],
    recover: Callable[[], bool],
    process_alive: Callable[[], bool] | None = None,
) -> None:
    """`is_alive` judges a stage's end; `process_alive` is what the probes know of the process (URL mode:
    nothing, so they judge by refused connects alone and notice a server a supervisor restarts)."""
    if not _log_in(run, base_url, process_alive or is_alive, recover):
        return
    if run.session is not None and run.session.graphql is not None:
        run.report.graphql = run.session.graphql.describe()
    if run.wanted("security"):
        if run.session is None:
            run.skip("security", "security probes not available")
        else:
            run.timed("security", lambda: _stage_security(run))
    if run.wanted("contract"):
        if not is_alive() and not recover():
            run.skip("contract", "the server is down and did not come back")
        else:
            run.timed("contract", lambda: _stage_contract(run, base_url, is_alive))
    if run.session is not None:
        run.session.http.close()


def _resolve_out(options: VerifyOptions, default: Path) -> Path:
    out = Path(options.out_dir).expanduser() if options.out_dir else default
    if out.exists() and not out.is_dir():
        raise VerifyUsageError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VerifyUsageError(f"--out {out}: cannot create ({exc.strerror})") from exc
    return out.resolve()


def _validate(options: VerifyOptions, stages: list[str] | None, url_mode: bool) -> list[str]:
    if options.fuzz_time < 0:
        raise VerifyUsageError("--fuzz-time must be ≥ 0 seconds")
    if options.port is not None and not 0 < options.port < 65536:
        raise VerifyUsageError(f"--port {options.port}: not a TCP port")
    if options.health is not None and not options.health.startswith("/"):
        raise VerifyUsageError(f"--health {options.health!r}: must be a path starting with '/'")
    if options.oidc_env and url_mode:
        raise VerifyUsageError(
            "--oidc-env needs the project: verify sets the app's environment only when it boots it"
        )
    for text in options.oidc_env:
        parse_oidc_env(text)
    if options.graphql is not None and not re.fullmatch(r"/[\w\-./~%]*", options.graphql):
        raise VerifyUsageError(
            f"--graphql {options.graphql!r}: must be a path starting with '/' (e.g. /graphql)"
        )
    allowed = URL_STAGES if url_mode else STAGES
    if stages is None:
        return list(allowed)
    bad = [s for s in stages if s not in allowed]
    if bad:
        raise VerifyUsageError(f"stages not available here: {', '.join(bad)} (allowed: {', '.join(allowed)})")
    return [s for s in STAGES if s in stages]  # run in pipeline order whatever order was given


def _resolve_auth(run: _Run) -> None:
    """Parse --auth, --user, --admin, --token and --cookie before anything runs."""
    o = run.opts
    try:
        run.auth = parse_auth_option(o.auth) if o.auth else None
        creds: dict[str, Any] = {}
        users: list[Account] = [parse_account(u, "--user") for u in o.users]
        if users:
            creds["users"] = users
        if o.admin:
            creds["admin"] = parse_account(o.admin, "--admin")
        if o.token:
            token = o.token.strip()
            if token.lower().startswith("bearer "):
                token = token[7:].strip()
            if not token:
                raise AuthOptionError("--token: empty")
            creds["token"] = token
        if o.cookie:
            creds["cookies"] = parse_cookie_option(o.cookie)
        run.credentials = creds
    except AuthOptionError as exc:
        raise VerifyUsageError(str(exc)) from exc


# ---------------------------------------------------------------- public API


def verify_project(path: Path | str, options: VerifyOptions | None = None) -> Report:
    """Verify the Node project at `path`. Raises VerifyUsageError for bad input; everything else is in
    the returned Report (exit_code 0 clean, 1 findings/failed stages, 2 boot error)."""
    opts = options or VerifyOptions()
    try:
        project = detect_project(Path(path))
    except ProjectError as exc:
        raise VerifyUsageError(str(exc)) from exc
    stages = _validate(opts, opts.stages, url_mode=False)
    if opts.health is None and project.bimpl_generated:
        # Its /health answers only once the database is reachable, which is what "ready" should mean.
        opts = dataclasses.replace(opts, health="/health")
    out = _resolve_out(opts, project.root / ".bimpl" / "verify")
    report = Report(
        mode="project",
        target=str(project.root),
        tool_version=__version__,
        started_at=_now(),
        project=project.to_dict(),
        out_dir=str(out),
    )
    run = _Run(report, opts, out, stages)
    run.project = project
    _resolve_auth(run)
    t0 = time.monotonic()
    root = project.root
    report.schema = inventory.schema(root)
    report.middleware = inventory.middleware(root, project.main)
    tests_beside: threading.Thread | None = None
    try:
        install_failed = False
        if run.wanted("install"):
            install_failed = run.timed("install", lambda: _stage_install(run, project)).status == "failed"
        if run.wanted("test") and not install_failed and _tests_may_run_beside(project):
            tests_beside = threading.Thread(
                target=run.timed, args=("test", lambda: _stage_test_beside(run, project)), daemon=True
            )
            tests_beside.start()
        for name, fn in (("build", _stage_build), ("test", _stage_test)):
            if run.wanted(name) and not (name == "test" and tests_beside):
                if install_failed:
                    run.skip(name, "install failed")
                else:
                    run.timed(name, lambda fn=fn: fn(run, project))
        needs_server = any(run.wanted(s) for s in SERVER_STAGES)
        if run.wanted("boot") or needs_server:
            if install_failed:
                run.skip("boot", "install failed")
                run.skip_server_stages("install failed")
            else:
                _boot_and_probe(run, project)
        if run.wanted("static"):
            run.timed("static", lambda: _stage_static(run, root))
        if tests_beside is not None:
            tests_beside.join()
    finally:
        run.cancel.set()  # after Ctrl-C or a bug: stop what still runs in a worker thread
        if tests_beside is not None:
            tests_beside.join()
        report.stages.sort(key=lambda s: STAGES.index(s.name) if s.name in STAGES else len(STAGES))
        report.endpoints = inventory.endpoints(
            run.openapi, None if run.openapi else root, report.spec_source or ""
        )
        report.duration_s = time.monotonic() - t0
        report.write(out)
    return report


def _boot_and_probe(run: _Run, project: Project) -> None:
    cmd = _start_command(run, project)
    _prepare_pglite(run, project)
    _start_oidc_provider(run, project)  # before the app boots: it may read its provider's metadata at start
    servers: list[Server] = []

    def new_server() -> Server:
        port = run.opts.port or free_port()
        s = Server(
            cmd,
            cwd=project.root,
            port=port,
            log_path=run.out / f"server{len(servers) or ''}.log",
            env=_server_env(run, port),
            base_env=run.opts.base_env,
            confine=run.opts.confine,
        )
        servers.append(s)
        return s

    server = new_server()
    try:
        try:
            run.timed("boot", lambda: _stage_boot(run, server))
        except BootError as exc:
            hint = _native_hint(run, exc.log_tail or "")
            result = StageResult(
                "boot", "error", detail=str(exc) + hint, log=str(server.log_path), log_tail=exc.log_tail
            )
            run.record(result)
            run.report.fatal = f"the backend did not boot: {exc}{hint}"
            run.skip_server_stages("boot failed")
            return
        run.report.base_url = server.base_url
        _find_spec(run, server.base_url, project.root)

        current = {"server": server}

        def is_alive() -> bool:
            return current["server"].is_alive()

        def restart() -> bool:
            # After a crash the probes still deserve a live target; the crash itself is already a finding.
            current["server"].stop()
            s2 = Server(
                cmd,
                cwd=project.root,
                port=server.port,
                log_path=run.out / f"server-restart{len(servers)}.log",
                env=_server_env(run, server.port),
                base_env=run.opts.base_env,
                confine=run.opts.confine,
            )
            servers.append(s2)
            try:
                s2.start()
                s2.wait_ready(timeout_s=run.opts.boot_timeout, health=run.opts.health)
            except BootError:
                return False
            current["server"] = s2
            run.emit("note", "security", "server restarted after a crash")
            return True

        @contextlib.contextmanager
        def production() -> Iterator[str | None]:
            """A second instance with NODE_ENV=production, on its own port (and its own PGlite database),
            for the probes whose answer depends on the mode."""
            port = free_port()
            env = {k: v for k, v in _server_env(run, server.port).items() if k != "PORT"}
            env["NODE_ENV"] = "production"
            db_dir = None
            if "PGLITE_DIR" in env and run.pglite_dir is not None:
                db_dir = run.out / "pglite-production"
                shutil.rmtree(db_dir, ignore_errors=True)
                env["PGLITE_DIR"] = str(db_dir)
            s = Server(cmd, cwd=project.root, port=port, log_path=run.out / "server-production.log", env=env,
                       base_env=run.opts.base_env, confine=run.opts.confine)  # fmt: skip
            run.emit("note", "security", "starting a second instance with NODE_ENV=production")
            try:
                try:
                    s.start()
                    s.wait_ready(timeout_s=min(run.opts.boot_timeout, 60), health=run.opts.health)
                except BootError:
                    yield None
                    return
                yield s.base_url
            finally:
                s.stop()
                if db_dir is not None:
                    shutil.rmtree(db_dir, ignore_errors=True)

        run.production = production
        _server_stages(run, server.base_url, is_alive, restart)
    finally:
        for s in servers:
            s.stop()
        if run.oidc is not None:
            run.oidc.close()
            run.oidc = None


def verify_url(url: str, options: VerifyOptions | None = None) -> Report:
    """Black-box verification of a running server: contract and security stages only."""
    opts = options or VerifyOptions()
    base = url.rstrip("/")
    parsed = httpx.URL(base) if base.startswith(("http://", "https://")) else None
    if parsed is None or not parsed.host:
        raise VerifyUsageError(f"--url {url!r}: expected http://host:port")
    stages = _validate(opts, opts.stages, url_mode=True)
    out = _resolve_out(opts, Path.cwd() / ".bimpl" / "verify")
    report = Report(
        mode="url", target=base, tool_version=__version__, started_at=_now(), base_url=base, out_dir=str(out)
    )
    run = _Run(report, opts, out, stages)
    _resolve_auth(run)
    t0 = time.monotonic()
    try:
        run.emit("start", "reach")
        try:
            with httpx.Client(timeout=5, trust_env=False) as client:
                answer = client.get(base + (opts.health or "/"))
            reach = StageResult(
                "reach", "passed", time.monotonic() - t0, f"GET {opts.health or '/'} -> {answer.status_code}"
            )
        except httpx.HTTPError as exc:
            reach = StageResult("reach", "error", time.monotonic() - t0, f"cannot reach {base}: {exc}")
            report.fatal = f"cannot reach {base} ({type(exc).__name__}); is the server running?"
        run.record(reach)
        if report.fatal:
            return report
        _find_spec(run, base, None)
        host, port = parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)

        def reachable() -> bool:
            # We cannot see their process: down means the port refused connects for a few seconds.
            end = time.monotonic() + 3
            while not port_open(host, port):
                if time.monotonic() > end:
                    return False
                time.sleep(0.25)
            return True

        def comes_back() -> bool:
            # A supervisor may restart it: wait a while, and say so.
            end = time.monotonic() + URL_RECOVERY_S
            while time.monotonic() < end:
                if port_open(host, port):
                    run.emit("note", "security", "the server is back")
                    return True
                time.sleep(0.5)
            return False

        _server_stages(run, base, reachable, comes_back, process_alive=lambda: True)
    finally:
        report.endpoints = inventory.endpoints(run.openapi, None, report.spec_source or "")
        report.duration_s = time.monotonic() - t0
        report.write(out)
    return report
