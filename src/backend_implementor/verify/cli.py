"""`bimpl verify`: progress goes to stderr; stdout gets a short summary (each finding with one evidence
line, each check that could not run, where the full report is) or, with --format md|json, the whole
report for pipes and CI (`bimpl verify . --format json > report.json` stays clean). Imports of the engine
happen inside the command."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import typer

_ICONS = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "incomplete": "[yellow]⚠[/]", "skipped": "[dim]–[/]",
          "error": "[red]⛔[/]"}  # fmt: skip


class StageProgress:
    """Renders engine events: a spinner naming the stages that run (tests may run beside others), and one
    line with its timing when a stage ends. Events may come from the engine's worker thread."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.status: Any = None
        self.running: dict[str, str] = {}  # stage -> its latest note
        self.lock = threading.Lock()

    def __call__(self, event: str, stage: str, data: Any) -> None:
        from rich.markup import escape

        with self.lock:
            if event == "start":
                self.running[stage] = ""
            elif event == "note" and stage in self.running:
                self.running[stage] = escape(str(data))[:100]
            elif event == "end":
                self.running.pop(stage, None)
                self._stop()
                icon = _ICONS.get(data.status, "?")
                self.console.print(
                    f"{icon} [bold]{stage:<9}[/] {data.duration_s:6.1f}s  {data.status:<7} [dim]{escape(data.detail)}[/]"
                )
            self._show()

    def _show(self) -> None:
        if not self.running:
            self._stop()
            return
        text = ", ".join(
            f"[bold]{name}[/] …" + (f" {note}" if note else "") for name, note in self.running.items()
        )
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def stop(self) -> None:
        with self.lock:
            self.running.clear()
            self._stop()


def _parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--env: expected KEY=VALUE, got {item!r}", param_hint="--env")
        env[key] = value
    return env


def verify_command(
    path: Path | None = typer.Argument(
        None, help="The Node project to verify (the folder with package.json)."
    ),
    url: str | None = typer.Option(None, "--url", help="Black-box: verify a server already running here."),
    spec: str | None = typer.Option(
        None, "--spec", help="OpenAPI document (file or URL); default: served one."
    ),
    stages: str | None = typer.Option(
        None,
        "--stages",
        help="Comma list of install,build,test,boot,security,contract,static (default: all).",
    ),
    start_cmd: str | None = typer.Option(
        None, "--start-cmd", help="Command that starts the server (gets PORT)."
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port for the server (default: a free one, via PORT)."
    ),
    health: str | None = typer.Option(
        None,
        "--health",
        help="Path that answers < 500 once the server is ready (default: /health for a bimpl backend, else any answer on /).",
    ),
    auth: str | None = typer.Option(
        None,
        "--auth",
        help="Where and how to log in when verify cannot find out: register=/signup|none,login=/login,"
        "user=email,password=password,token=token,encoding=json|form,extra.NAME=VALUE",
    ),
    users: list[str] = typer.Option(
        [],
        "--user",
        help="An existing account NAME:PASSWORD to act as (repeat for a second user; needed without signup).",
    ),
    admin: str | None = typer.Option(
        None, "--admin", help="An admin account NAME:PASSWORD, where the API has roles."
    ),
    token: str | None = typer.Option(None, "--token", help="A ready bearer token for the first user."),
    cookie: str | None = typer.Option(
        None, "--cookie", help="A ready session cookie for the first user: 'name=value' (or a Cookie header)."
    ),
    db_url: str | None = typer.Option(
        None, "--db-url", help="Database URL (enables the password-storage probe)."
    ),
    fuzz_time: float = typer.Option(
        30.0, "--fuzz-time", help="Seconds of schemathesis fuzzing; 0 skips contract."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default PATH/.bimpl/verify or ./.bimpl/verify)."
    ),
    fmt: str = typer.Option(
        "summary", "--format", help="What stdout gets at the end: summary, md (the whole report) or json."
    ),
    contract_examples: int = typer.Option(
        50, "--contract-examples", min=1, help="schemathesis examples per operation (-n), within --fuzz-time."
    ),
    contract_checks: str | None = typer.Option(
        None, "--contract-checks", help="schemathesis checks (or 'all')."
    ),
    probe_budget: float = typer.Option(60.0, "--probe-budget", help="Seconds for the security probes."),
    boot_timeout: float = typer.Option(
        60.0, "--boot-timeout", help="Seconds to wait for the server to be ready."
    ),
    env: list[str] = typer.Option([], "--env", help="KEY=VALUE for the server's environment (repeatable)."),
    oidc_env: list[str] = typer.Option(
        [],
        "--oidc-env",
        help="An OpenID Connect login whose provider verify should play (repeatable): NAME for "
        "OIDC_<NAME>_ISSUER, OIDC_<NAME>_CLIENT_ID and OIDC_<NAME>_CLIENT_SECRET, or the app's own variables "
        "ISSUER_VAR,CLIENT_ID_VAR[,CLIENT_SECRET_VAR]. verify runs its provider on 127.0.0.1 and sets them "
        "(and PUBLIC_URL, when .env.example lists it) unless --env does; the OIDC_<NAME>_ISSUER keys of "
        ".env.example are picked up without it. Not with --url.",
    ),
    graphql: str | None = typer.Option(
        None,
        "--graphql",
        metavar="PATH",
        help="The GraphQL endpoint's path. Default: /graphql, /api/graphql and GraphQL paths of the OpenAPI "
        "document are tried; the schema comes from introspection, else from the project's *.graphql files.",
    ),
    install_scripts: bool = typer.Option(
        False,
        "--install-scripts",
        help="Let npm run packages' install scripts (native modules such as bcrypt or sqlite3 need them).",
    ),
) -> None:
    """Verify a backend: install, build, test, boot, attack, contract-test, and report the deliverables.

    Exit 0 when clean (every selected check ran), 1 on findings or failed stages, 2 on usage or boot
    errors, 3 when nothing was found but some checks could not run (incomplete: see the report).
    Verify registers its own accounts (named bimpl…), creates rows, and trips rate limits on the backend
    it tests; the report lists what it changed."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())

    def fail(message: str) -> None:
        err.print(f"[red]bimpl verify: error:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(2)

    if fmt not in ("summary", "md", "json"):
        fail(f"--format {fmt!r}: expected summary, md or json")
    if (path is None) == (url is None):
        fail("give a project PATH or --url URL (not both)" if path else "give a project PATH or --url URL")

    from backend_implementor.verify.engine import (
        VerifyOptions,
        VerifyUsageError,
        parse_stages,
        verify_project,
        verify_url,
    )

    progress = StageProgress(err)
    try:
        options = VerifyOptions(
            stages=parse_stages(stages, url_mode=url is not None),
            start_cmd=start_cmd,
            port=port,
            health=health,
            auth=auth,
            users=list(users),
            admin=admin,
            token=token,
            cookie=cookie,
            install_scripts=install_scripts,
            db_url=db_url,
            fuzz_time=fuzz_time,
            contract_examples=contract_examples,
            out_dir=out,
            spec=spec,
            probe_budget=probe_budget,
            boot_timeout=boot_timeout,
            env=_parse_env(env),
            oidc_env=list(oidc_env),
            graphql=graphql,
            progress=progress,
        )
        if contract_checks:
            options.contract_checks = contract_checks
        report = verify_url(url, options) if url is not None else verify_project(path, options)  # type: ignore[arg-type]
    except VerifyUsageError as exc:
        progress.stop()
        fail(str(exc))
        return
    except typer.BadParameter as exc:
        progress.stop()
        fail(str(exc))
        return
    finally:
        progress.stop()

    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    elif fmt == "md" and not report.fatal:  # a run that could not start has nothing to show but its error
        from backend_implementor.verify.report import render_markdown

        sys.stdout.write(render_markdown(report))
    sys.stdout.flush()
    if fmt == "summary":
        from rich.console import Console

        # Piped output keeps whole lines (a command is never wrapped at 80 columns).
        out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
        print_summary(out, report)
    else:
        print_summary(err, report, brief=True)
    raise typer.Exit(report.exit_code)


def print_summary(console: Any, report: Any, *, brief: bool = False) -> None:
    """The end of a run: each finding with one evidence line, each check that could not run, the error,
    what verify changed, the verdict and where the full report is. `brief`: only the last lines (the
    report itself went to stdout)."""
    from rich.markup import escape
    from rich.panel import Panel

    if not brief:
        for f in report.sorted_findings():
            ev = (f.evidence.location or f.evidence.request or "").strip().splitlines()
            console.print(f"[red]✗[/] [bold]CWE-{f.cwe}[/] {escape(f'[{f.severity}]')} {escape(f.title)}")
            if ev:
                console.print(f"    [dim]{escape(ev[0][:160])}[/]")
        for p in report.inconclusive:
            console.print(f"[yellow]⚠[/] [bold]{p.id}[/] (CWE-{p.cwe}) could not run: {escape(p.detail)}")
        for s in report.stages:
            if s.status in ("failed", "error") and s.name not in ("security", "static"):
                console.print(f"[red]✗[/] stage [bold]{s.name}[/] {s.status}: {escape(s.detail)}")
        for c in report.changes:
            console.print(f"[dim]changed: {escape(c)}[/]")
    if report.fatal:
        console.print(f"[red]bimpl verify: error:[/] {escape(report.fatal)}", soft_wrap=True)
        boot = report.stage("boot")
        if boot is not None and boot.log_tail:
            console.print(Panel(escape(boot.log_tail), title="last server log lines", border_style="red"))
    verdict = {
        0: "[green]clean[/]",
        1: f"[red]{_failures(report)}[/]",
        2: "[red]error[/]",
        3: f"[yellow]incomplete: {len(report.inconclusive)} check(s) could not run[/]",
    }[report.exit_code]
    where = f" · full report: {escape(report.out_dir)}/report.md" if report.out_dir else ""
    console.print(f"result: {verdict} (exit {report.exit_code}){where}")


def _failures(report: Any) -> str:
    """'2 finding(s)', 'failed stage(s): build' or both: what made the verdict a failure."""
    failed = [s.name for s in report.stages if s.status in ("failed", "error")]
    parts = [f"{len(report.findings)} finding(s)"] if report.findings else []
    if failed:
        parts.append(f"failed stage(s): {', '.join(failed)}")
    return " and ".join(parts)
