"""Security probes against a running backend: each a small module with a CWE id.

`open_session` makes the one Context a run shares: the contract stage logs in with its accounts before
any fuzzing, and `run_probes` reuses them. Each probe ends `found`, `clean` or `inconclusive` (it could
not log in, create what it needed, stayed rate-limited, ran out of time before testing anything, or hit a
bug of ours). A crash is the process exiting, or the port refusing connects for seconds: it is a CWE-703
finding, the server is brought back when it can be (restarted, or waited for), and probing goes on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..findings import Finding, ProbeResult
from . import (
    auth_missing,
    authz_matrix,
    body_size,
    bounds,
    cookie_flags,
    csrf,
    error_leak,
    exposure,
    function_authz,
    gql,
    graphql_authz,
    graphql_exposure,
    graphql_introspection,
    graphql_limits,
    graphql_sqli,
    headers,
    idor,
    injection,
    jwt_tamper,
    logout,
    mass_assignment,
    oidc_state,
    open_redirect,
    password_storage,
    path_traversal,
    rate_limit,
    robustness,
    same_token,
    session_fixation,
    sqli,
    ssrf,
    xss,
)
from .base import BudgetExceeded, Context, ServerDown
from .target import ProbeTarget

# Order: cheap and read-only first; what exhausts shared state (oversized bodies, crash attempts, the
# login burst) last, so a lockout or a restart cannot starve the others.
PROBES = (
    headers,
    auth_missing,
    idor,
    function_authz,
    authz_matrix,
    jwt_tamper,
    same_token,
    cookie_flags,
    csrf,
    session_fixation,
    oidc_state,
    graphql_authz,
    mass_assignment,
    bounds,
    exposure,
    graphql_exposure,
    graphql_introspection,
    xss,
    open_redirect,
    ssrf,
    path_traversal,
    injection,
    sqli,
    graphql_sqli,
    error_leak,
    password_storage,
    logout,  # logs a session of its own out (and the shared users in again if that ended theirs)
    body_size,
    graphql_limits,  # deep, aliased and batched queries: the server's work grows with each
    robustness,
    rate_limit,
)

__all__ = ["PROBES", "ProbeRun", "ProbeTarget", "open_session", "run_probes"]


def _probe_id(mod) -> str:
    return getattr(mod, "ID", mod.__name__.rsplit(".", 1)[-1])


@dataclass
class ProbeRun:
    findings: list[Finding] = field(default_factory=list)
    results: list[ProbeResult] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what probing did to the backend's state
    accounts: dict = field(default_factory=dict)  # how verify logged in, as whom, or why it could not
    matrix: list[dict] = field(default_factory=list)  # read operations x actors: what each was granted

    @property
    def inconclusive(self) -> list[ProbeResult]:
        return [r for r in self.results if r.outcome == "inconclusive"]


def open_session(
    target: ProbeTarget, *, budget_s: float = 60, progress: Callable[[str], None] | None = None
) -> Context:
    """The run's probing session, logged in as the two users the probes need (when the API has a login)."""
    ctx = Context(target, deadline=time.monotonic() + budget_s, progress=progress)
    ctx.start_probe("login", seconds=60, max_requests=200)
    try:
        if ctx.alive(within=1.0):
            ctx.accounts.discover()
            if ctx.auth is not None or target.users or target.token or target.cookies:
                ctx.accounts.user(1)  # registers (or logs in) users 0 and 1
            _find_graphql(ctx)
    except (BudgetExceeded, ServerDown):
        pass
    # The probes' own budget starts now: logging in is not probing.
    ctx.deadline = time.monotonic() + budget_s
    return ctx


def _find_graphql(ctx: Context) -> None:
    try:
        ctx.graphql = gql.discover(ctx)
        if ctx.graphql is not None:
            gql.graphql_accounts(ctx, ctx.graphql)  # an API that logs in through GraphQL only
    except (BudgetExceeded, ServerDown):
        raise
    except Exception as exc:  # a bug of ours: the GraphQL probes say so, the others run
        ctx.graphql_error = f"internal error looking for the GraphQL endpoint: {type(exc).__name__}: {exc}"


def run_probes(
    target: ProbeTarget | Context,
    *,
    budget_s: float = 60,
    progress: Callable[[str], None] | None = None,
) -> ProbeRun:
    ctx = (
        target if isinstance(target, Context) else open_session(target, budget_s=budget_s, progress=progress)
    )
    if progress is not None:
        ctx.progress = progress
    say = ctx.progress
    run = ProbeRun()
    leaks: list = []

    def passive_leak(exchange, resp) -> None:
        if not leaks and resp.status_code >= 400 and (hit := error_leak.leak_in(resp.text[:20000])):
            leaks.append((exchange, hit))

    ctx.observers.append(passive_leak)
    watch = exposure.Watch(ctx)
    ctx.observers.append(watch)
    try:
        if not ctx.alive():
            say("probes: the server is not answering; nothing probed")
            run.results = [ProbeResult(_probe_id(m), m.CWE, "inconclusive", "the server was not answering")
                           for m in PROBES]  # fmt: skip
            return run
        down = False
        for i, mod in enumerate(PROBES):
            pid = _probe_id(mod)
            if down:
                run.results.append(ProbeResult(pid, mod.CWE, "inconclusive", "the server was down"))
                continue
            remaining = ctx.deadline - time.monotonic()
            if remaining <= 0:
                run.results.append(ProbeResult(pid, mod.CWE, "inconclusive", "the probes' time budget ran out first (--probe-budget)"))  # fmt: skip
                continue
            share = max(1.0, 2 * remaining / (len(PROBES) - i))
            ctx.start_probe(pid, seconds=min(mod.SECONDS, share), max_requests=mod.MAX_REQUESTS)
            say(f"probe {pid} (CWE-{mod.CWE})")
            before, t0 = len(ctx.findings), time.monotonic()
            try:
                mod.run(ctx)
            except BudgetExceeded:
                ctx.blocked("it ran out of its time or request budget before it finished (--probe-budget)")
            except ServerDown:
                ctx.blocked("the server crashed during this probe")
                down = not _crashed(ctx)
            except Exception as exc:  # a probe bug is ours, not the backend's: report and go on
                ctx.blocked(f"internal error in the probe: {type(exc).__name__}: {exc}")
            if not down and not ctx.alive():
                ctx.blocked("the server crashed during this probe")
                down = not _crashed(ctx)
            run.results.append(_result(ctx, mod, before, time.monotonic() - t0))
    finally:
        if ctx is not target:  # a session the caller opened is the caller's to close
            ctx.http.close()
    if leaks and not any(f.cwe == error_leak.CWE for f in ctx.findings):
        exchange, hit = leaks[0]
        error_leak.report(ctx, f"stack trace or SQL: {hit[:60]!r}", exchange)
        for r in run.results:
            if r.id == error_leak.ID and r.outcome != "found":
                r.outcome, r.detail = "found", "seen in an answer to another probe"
    if exposure.report(ctx, watch):
        for r in run.results:
            if r.id == exposure.ID and r.outcome != "found":
                r.outcome, r.detail = "found", "; ".join(what for what, _ in watch.hits)[:300]
    if any(f.id == robustness.ID for f in ctx.findings):
        for r in run.results:
            if r.id == robustness.ID:
                r.outcome, r.detail = "found", "the server crashed (see the finding for the request)"
    run.findings = _dedupe(ctx.findings)
    run.changes = list(ctx.changes)
    run.accounts = ctx.accounts.describe()
    run.matrix = list(ctx.matrix)
    if run.accounts["registered"]:
        run.changes.insert(0, f"registered {len(run.accounts['registered'])} account(s) named bimpl…")
    return run


def _result(ctx: Context, mod, before: int, seconds: float) -> ProbeResult:
    pid = _probe_id(mod)
    found = [f for f in ctx.findings[before:] if f.id != robustness.ID or mod is robustness]
    if found:
        outcome, detail = "found", "; ".join(f.title for f in found)[:300]
    elif ctx.blocked_reasons:
        outcome, detail = "inconclusive", "; ".join(ctx.blocked_reasons)[:500]
    elif ctx.probe_requests == 0 and not ctx.ops and getattr(mod, "NEEDS_OPENAPI", True):
        if ctx.graphql is not None:  # a GraphQL API: the graphql-* probes are the ones that apply
            outcome = "clean"
            detail = f"not applicable: no OpenAPI document describes a REST API; probed through GraphQL at {ctx.graphql.path}"
        else:
            outcome, detail = "inconclusive", "no OpenAPI document (served or --spec): nothing to aim at"
    elif ctx.probe_requests == 0:
        outcome, detail = "clean", ctx.not_applicable or ctx.checked or "nothing to test in this API"
    else:
        done = (
            f"{ctx.checked}; {ctx.probe_requests} request(s)"
            if ctx.checked
            else f"{ctx.probe_requests} request(s)"
        )
        outcome, detail = "clean", ctx.not_applicable or done
    return ProbeResult(pid, mod.CWE, outcome, detail, ctx.probe_requests, seconds)


def _crashed(ctx: Context) -> bool:
    """Report the crash, the request that caused it first; then bring the server back. False: it stays down."""
    causing = list(ctx.recent)[::-1]
    ctx.add(
        robustness.ID,
        robustness.CWE,
        f"The server stopped answering during probe '{ctx.probe_id}' (crash)",
        "high",
        "Validate input types before use and keep errors inside handlers (no throws in callbacks or timers).",
        ctx.evidence(*causing),
    )
    try:
        back = ctx.target.recover()
    except Exception:
        back = False
    if back:
        ctx.progress("  the server is back; probing goes on")
        ctx.changed("the server crashed and was brought back")
        ctx.accounts.reset()  # in-memory accounts and sessions may be gone
    return back


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.id, f.title)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
