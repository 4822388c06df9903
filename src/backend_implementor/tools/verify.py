"""`verify`: the agent runs `bimpl verify` on its own work and reads what failed.

The observation is a compact digest of the report (failed stages with their log tails, failed tests,
findings with CWE, evidence and fix hint); the full report stays on disk under the run folder.
"""

from __future__ import annotations

from pathlib import Path

from backend_implementor.tools.base import Tool, ToolContext, ToolError
from backend_implementor.tools.isolation import isolation
from backend_implementor.tools.shell import command_env
from backend_implementor.tools.workspace import resolve_in_workspace

MAX_FINDINGS_SHOWN = 15


class Verify(Tool):
    name = "verify"
    description = (
        "Prove a Node/Express backend in the workspace the way `bimpl verify` does: install, build, run "
        "its tests, boot it, contract-test it against its OpenAPI document, attack it with security "
        "probes (SQL injection, missing auth, IDOR, JWT tampering, mass assignment, XSS, ...) and scan "
        "the source. Returns failed stages, failed tests and findings with fix hints. Takes a minute or more."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Project folder (default: the workspace root)"},
            "stages": {
                "type": "string",
                "description": "Comma list to run only some stages: install,build,test,boot,security,contract,static",
            },
            "fuzz_time": {
                "type": "number",
                "description": "Seconds of contract fuzzing (default 10; 0 skips it)",
            },
        },
        "required": [],
    }

    def time_limit(self, arguments: dict) -> float:
        return 3600.0  # install, build and the project's own tests each have their own timeouts within

    def run(self, path: str = ".", stages: str | None = None, fuzz_time: float = 10.0) -> str:
        from backend_implementor.verify.engine import VerifyUsageError, parse_stages

        root = self.ctx.workspace if path in ("", ".") else _folder(self.ctx, path)
        try:
            wanted = parse_stages(stages, url_mode=False)
        except VerifyUsageError as exc:
            raise ToolError(str(exc)) from None
        report = run_verify(self.ctx, root, wanted, max(0.0, float(fuzz_time)))
        if report.fatal:
            raise ToolError(f"verify could not run: {report.fatal}")
        return digest(report)


def _folder(ctx: ToolContext, path: str) -> Path:
    try:
        resolved = resolve_in_workspace(ctx, path.rstrip("/") + "/package.json", must_exist=True).parent
    except ToolError:
        raise ToolError(
            f"{path!r} is not a Node project folder in the workspace (no package.json there)"
        ) from None
    return resolved


def run_verify(ctx: ToolContext, root: Path, stages: list[str] | None, fuzz_time: float):
    from backend_implementor.verify.engine import VerifyOptions, VerifyUsageError, verify_project

    out_dir = (ctx.run_dir / "verify") if ctx.run_dir else None
    try:
        # The project's tests and server run code the model wrote: they get the scrubbed environment.
        options = VerifyOptions(
            stages=stages,
            fuzz_time=fuzz_time,
            out_dir=out_dir,
            base_env=command_env(ctx),
            # and run in a PID namespace as bash does: they must not read bimpl's keys or outlive it
            confine=isolation().prefix if ctx.isolate else (),
            progress=ctx.progress,
        )
        return verify_project(root, options)
    except VerifyUsageError as exc:
        raise ToolError(f"verify could not run: {exc}") from None


def digest(report) -> str:
    """The report as an LLM should read it: verdict first, then only what needs fixing."""
    lines = [f"verify: {report.status} (exit {report.exit_code}) in {report.duration_s:.0f} s"]
    for stage in report.stages:
        lines.append(f"- {stage.name}: {stage.status}{' — ' + stage.detail if stage.detail else ''}")
        if stage.status in ("failed", "error") and stage.log_tail:
            tail = stage.log_tail.strip().splitlines()[-25:]
            lines.extend("    " + line for line in tail)
    failures = (report.tests or {}).get("failures") or []
    if failures:
        lines.append(f"Failed tests ({len(failures)}):")
        for failure in failures[:20]:
            message = " ".join(failure["message"].split())[:300]
            lines.append(f"- {failure['file']}: {failure['name']}{': ' + message if message else ''}")
    findings = report.sorted_findings()
    if findings:
        lines.append(f"Findings ({len(findings)}):")
        for f in findings[:MAX_FINDINGS_SHOWN]:
            lines.append(f"- [{f.severity}] CWE-{f.cwe} {f.title}")
            if f.evidence.request:
                lines.append(f"    request: {f.evidence.request[:300]}")
            if f.evidence.response:
                lines.append(f"    response: {' '.join(f.evidence.response.split())[:300]}")
            if f.evidence.location:
                lines.append(f"    at: {f.evidence.location}")
            lines.append(f"    fix: {f.fix}")
        if len(findings) > MAX_FINDINGS_SHOWN:
            lines.append(f"... and {len(findings) - MAX_FINDINGS_SHOWN} more")
    if report.inconclusive:
        lines.append(
            f"Checks that could not run ({len(report.inconclusive)}): verify is not clean until they can"
        )
        lines.extend(f"- {p.id} (CWE-{p.cwe}): {p.detail[:300]}" for p in report.inconclusive)
    if report.out_dir:
        lines.append(f"Full report: {report.out_dir}/report.md")
    return "\n".join(lines)
