"""The verify report: one object, written as report.json (schema in report.schema.json) and report.md."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backend_implementor.atomic import write_text_atomic
from backend_implementor.verify.findings import Finding, ProbeResult

SCHEMA_VERSION = 2
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
# "incomplete": the stage ran, found nothing, but some of its checks could not run (see report.probes).
StageStatus = Literal["passed", "failed", "incomplete", "skipped", "error"]
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}

# Exit codes of `bimpl verify`: 0 clean (every selected check ran), 1 findings or failed stages, 2 usage
# or boot error, 3 incomplete (nothing found, but some checks could not run: not a clean bill).
EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


@dataclass
class StageResult:
    name: str
    status: StageStatus
    duration_s: float = 0.0
    detail: str = ""  # one line: why skipped, what failed, what answered
    log: str | None = None  # path of the stage's log file
    log_tail: str = ""  # last lines of the log when the stage failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "detail": self.detail,
            "log": self.log,
            "log_tail": self.log_tail,
        }


@dataclass
class Report:
    mode: Literal["project", "url"]
    target: str  # the project path or the base URL
    tool_version: str
    started_at: str
    duration_s: float = 0.0
    project: dict[str, Any] | None = None
    base_url: str | None = None
    spec_source: str | None = None
    stages: list[StageResult] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=lambda: {"source": "unavailable", "items": []})
    schema: dict[str, Any] = field(
        default_factory=lambda: {"source": "unavailable", "tables": [], "indexes": [], "migrations": []}
    )
    middleware: dict[str, Any] = field(default_factory=lambda: {"source": "unavailable", "items": []})
    graphql: dict[str, Any] | None = None  # the GraphQL endpoint and its operations (graphql_api.Endpoint)
    tests: dict[str, Any] | None = None
    contract: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)  # one outcome per security probe
    accounts: dict[str, Any] | None = None  # how verify logged in, as whom, or why it could not
    authorization: list[dict[str, Any]] = field(default_factory=list)  # the authorization matrix
    changes: list[str] = field(default_factory=list)  # what verify did to the backend's state
    fatal: str | None = None  # usage or boot error that stopped the run
    out_dir: str | None = None  # where report.json, report.md and the stage logs are

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def exit_code(self) -> int:
        if self.fatal:
            return EXIT_USAGE
        if self.findings or any(s.status in ("failed", "error") for s in self.stages):
            return EXIT_FINDINGS
        if any(s.status == "incomplete" for s in self.stages):
            return EXIT_INCOMPLETE
        return EXIT_CLEAN

    @property
    def status(self) -> str:
        return {
            EXIT_CLEAN: "clean",
            EXIT_FINDINGS: "failed",
            EXIT_USAGE: "error",
            EXIT_INCOMPLETE: "incomplete",
        }[self.exit_code]

    @property
    def inconclusive(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.outcome == "inconclusive"]

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.cwe, f.id))

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "bimpl verify", "version": self.tool_version},
            "mode": self.mode,
            "target": self.target,
            "base_url": self.base_url,
            "spec_source": self.spec_source,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "status": self.status,
            "exit_code": self.exit_code,
            "fatal": self.fatal,
            "out_dir": self.out_dir,
            "project": self.project,
            "stages": [s.to_dict() for s in self.stages],
            "deliverables": {
                "endpoints": self.endpoints,
                "schema": self.schema,
                "middleware": self.middleware,
                "tests": self.tests,
                "graphql": self.graphql,
            },
            "contract": self.contract,
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "probes": [p.to_dict() for p in self.probes],
            "accounts": self.accounts,
            "authorization": self.authorization,
            "changes": self.changes,
            "summary": {
                "findings": len(self.findings),
                "by_severity": counts,
                "cwes": sorted({f.cwe for f in self.findings}),
                "failed_stages": [s.name for s in self.stages if s.status in ("failed", "error")],
                "incomplete_stages": [s.name for s in self.stages if s.status == "incomplete"],
                "inconclusive_probes": [p.id for p in self.inconclusive],
            },
        }

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Writes report.json and report.md atomically: both are rendered first, then each goes to a
        temporary file in out_dir that replaces the old one, so a reader (the agent's finish gate, CI)
        never sees a half-written report, and a failure leaves the previous one intact."""
        out_dir.mkdir(parents=True, exist_ok=True)
        j, m = out_dir / "report.json", out_dir / "report.md"
        json_text = json.dumps(self.to_dict(), indent=2, default=str) + "\n"
        md_text = render_markdown(self)
        write_text_atomic(j, json_text)
        write_text_atomic(m, md_text)
        return j, m


def _cell(value: Any) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("|", "\\|")


def _fence(text: str) -> str:
    body = text.rstrip()
    ticks = "````" if "```" in body else "```"
    return f"{ticks}\n{body}\n{ticks}"


def render_markdown(report: Report) -> str:
    d = report.to_dict()
    out: list[str] = [f"# bimpl verify: {report.target}", ""]
    verdict = {
        "clean": "✅ clean",
        "failed": "❌ findings or failed stages",
        "incomplete": "⚠️ incomplete: some checks could not run",
        "error": "⛔ error",
    }[report.status]
    out += [
        f"**Result:** {verdict} (exit {report.exit_code}) · {len(report.findings)} finding(s) · "
        f"{report.duration_s:.1f}s · {report.started_at}",
        "",
    ]
    if report.fatal:
        out += ["**Error:** " + report.fatal, ""]
        boot = report.stage("boot")
        if boot and boot.log_tail:
            out += ["Last log lines:", "", _fence(boot.log_tail), ""]
    if report.project:
        p = report.project
        gen = f"yes ({p.get('bimpl_reason')})" if p.get("bimpl_generated") else "no"
        out += [
            f"Project `{p.get('name')}` · package manager {p.get('package_manager')} "
            f"(lockfile: {p.get('lockfile') or 'none'}) · TypeScript: {'yes' if p.get('typescript') else 'no'}"
            f" · test runner: {p.get('test_runner') or 'unknown'} · bimpl-generated: {gen}",
            "",
        ]

    out += ["## 1. Endpoints", "", f"_Source: {report.endpoints.get('source')}_", ""]
    items = report.endpoints.get("items") or []
    if items:
        out += ["| Method | Path | Auth | Summary |", "| --- | --- | --- | --- |"]
        out += [
            f"| {e['method']} | `{_cell(e['path'])}` | {_cell(e['auth'])} | {_cell(e.get('summary'))} |"
            for e in items
        ]
    else:
        out.append("No endpoints found.")
    out.append("")
    gq = report.graphql
    if gq:
        shown = "on" if gq["introspection"] else "off"
        out += [f"GraphQL at `{gq['path']}` · schema from {gq['schema_source']} · introspection {shown} "
                "(on the probed server)", ""]  # fmt: skip
        if gq["operations"]:
            out += ["| Kind | Operation |", "| --- | --- |"]
            out += [f"| {o['kind']} | `{_cell(o['signature'])}` |" for o in gq["operations"]]
        out += [*(f"- {n}" for n in gq.get("notes") or []), ""]

    sch = report.schema
    out += ["## 2. Schema", "", f"_Source: {sch.get('source')}_", ""]
    if sch.get("migrations"):
        out += ["Migrations: " + ", ".join(f"`{m}`" for m in sch["migrations"]), ""]
    for t in sch.get("tables") or []:
        cols = ", ".join(f"{c['name']} ({c['type']})" if c.get("type") else c["name"] for c in t["columns"])
        out.append(f"- **{t['name']}** ({t.get('defined_in')}): {cols or 'no columns parsed'}")
        out += [f"  - {c}" for c in t.get("constraints") or []]
    if sch.get("indexes"):
        out += ["", "Indexes:"]
        out += [
            f"- {'unique ' if i['unique'] else ''}`{i['name']}` on {i['table']} ({i['columns']})"
            for i in sch["indexes"]
        ]
    if not sch.get("tables") and not sch.get("indexes"):
        out.append("No tables found.")
    out.append("")

    mw = report.middleware
    out += ["## 3. Middleware", "", f"_Source: {mw.get('source')}_", ""]
    if mw.get("items"):
        for it in mw["items"]:
            mount = f" on `{it['mount']}`" if it.get("mount") else ""
            out.append(f"{it['order']}. `{it['call']}({_cell(it['handler'])})`{mount} (line {it['line']})")
    else:
        out.append("Nothing known.")
    out.append("")

    out += ["## 4. Tests", ""]
    t = report.tests
    if t:
        out.append(
            f"Runner: {t.get('runner') or 'unknown'} · passed {t['passed']} · failed {t['failed']} · "
            f"skipped {t['skipped']} · total {t['total']} (from {t['source']})"
        )
        if t.get("note"):
            out += ["", t["note"]]
        if t.get("failures"):
            out += ["", "Failed tests:"]
            for f in t["failures"]:
                msg = (f.get("message") or "").splitlines()
                out.append(f"- `{f['file']}` › {f['name']}" + (f": {msg[0][:200]}" if msg else ""))
    else:
        test_stage = report.stage("test")
        out.append(f"Not run ({test_stage.detail})." if test_stage else "Not run.")
    out.append("")

    c = report.contract
    if c:
        out += [
            "## Contract (schemathesis)",
            "",
            f"{c['operations']} operation(s) tested, {c['failed_operations']} with failures; "
            f"{'authenticated' if c['authenticated'] else 'unauthenticated'} ({c['auth_detail']}); "
            f"checks: {c['checks']}",
            "",
        ]
        for f in c["failures"]:
            out.append(
                f"- **{f['operation']}**: {'; '.join(f['checks'])}"
                + (f" (status {f['status']})" if f.get("status") else "")
            )
            if f.get("request"):
                out.append(f"  - reproduce: `{f['request']}`")
        out += [f"- could not test: {e}" for e in c.get("errors") or []]
        out.append("")

    out += ["## Findings", ""]
    if not report.findings:
        out += ["None.", ""]
    for i, f in enumerate(report.sorted_findings(), 1):
        out += [
            f"### {i}. [{f.severity}] CWE-{f.cwe}: {f.title}",
            "",
            f"- check: `{f.id}` ({f.stage})",
            f"- fix: {f.fix}",
        ]
        ev = f.evidence
        if ev.location:
            out.append(f"- location: `{ev.location}`")
        if ev.request:
            out += ["- request:", "", _fence(ev.request)]
        if ev.response:
            out += ["- response:", "", _fence(ev.response)]
        out.append("")

    if report.probes:
        out += ["## Security probes", "", "| Probe | CWE | Outcome | Detail |", "| --- | --- | --- | --- |"]
        out += [f"| {p.id} | {p.cwe} | {p.outcome} | {_cell(p.detail)} |" for p in report.probes]
        out.append("")
    if report.accounts:
        a = report.accounts
        login = a.get("login") or {}
        out += ["## Accounts", ""]
        if login:
            out.append(
                f"Login: POST `{login.get('login')}` ({login.get('encoding')}, {login.get('source')}), "
                f"registration: {('POST `' + login['register'] + '`') if login.get('register') else 'none'}, "
                f"credentials sent as {login.get('sends')}"
            )
        if a.get("users"):
            out.append("Acted as: " + ", ".join(f"`{u}`" for u in a["users"]))
        if a.get("reason"):
            out.append(f"Could not log in: {a['reason']}")
        out.append("")
    if report.authorization:
        actors = list(dict.fromkeys(a for row in report.authorization for a in row["cells"]))
        out += ["## Authorization matrix", "",
                "Each read operation as each caller: the HTTP status; **bold** where it granted what it should not.",
                "", "| Operation | Rule | " + " | ".join(actors) + " |", "| --- | --- |" + " --- |" * len(actors)]  # fmt: skip
        for row in report.authorization:
            cells = [
                (f"**{row['cells'].get(a)}**" if a in row["flagged"] else str(row["cells"].get(a, "-")))
                for a in actors
            ]
            out.append(f"| `{row['operation']}` | {row['rule']} | " + " | ".join(cells) + " |")
        out.append("")
    if report.changes:
        out += ["## What verify changed", ""] + [f"- {c}" for c in report.changes] + [""]

    out += ["## Stages", "", "| Stage | Status | Time | Detail |", "| --- | --- | --- | --- |"]
    out += [
        f"| {s['name']} | {s['status']} | {s['duration_s']:.1f}s | {_cell(s['detail'])} |"
        for s in d["stages"]
    ]
    out.append("")
    for s in report.stages:
        if s.status in ("failed", "error") and s.log_tail and s.name != "boot":
            out += [f"### {s.name} log (last lines)", "", _fence(s.log_tail), ""]
    return "\n".join(out)
