"""Security probes against a running backend: each a small module with a CWE id.

`run_probes` runs them in order under one time budget. A probe bug never escapes: it is reported through
`progress` and the probe is skipped. A server that stops answering ends the run with a CWE-703 finding."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..findings import Finding
from . import (
    auth_missing,
    body_size,
    error_leak,
    headers,
    idor,
    injection,
    jwt_tamper,
    mass_assignment,
    password_storage,
    path_traversal,
    rate_limit,
    robustness,
    same_token,
    sqli,
    xss,
)
from .base import BudgetExceeded, Context, ServerDown
from .target import ProbeTarget

# Order: cheap and read-only first; login bursts last so a lockout cannot starve the others.
PROBES = (
    headers,
    auth_missing,
    idor,
    jwt_tamper,
    same_token,
    mass_assignment,
    xss,
    path_traversal,
    injection,
    sqli,
    error_leak,
    password_storage,
    body_size,
    robustness,
    rate_limit,
)

__all__ = ["PROBES", "ProbeTarget", "run_probes"]


def _probe_id(mod) -> str:
    return getattr(mod, "ID", mod.__name__.rsplit(".", 1)[-1])


def run_probes(
    target: ProbeTarget, *, budget_s: float = 60, progress: Callable[[str], None] | None = None
) -> list[Finding]:
    say = progress or (lambda _m: None)
    ctx = Context(target, deadline=time.monotonic() + budget_s, progress=say)
    leaks: list = []

    def passive_leak(exchange, resp) -> None:
        if not leaks and resp.status_code >= 400 and (hit := error_leak.leak_in(resp.text[:20000])):
            leaks.append((exchange, hit))

    ctx.observers.append(passive_leak)
    try:
        if not ctx.alive():
            say("probes: the server is not answering; nothing probed")
            return []
        for i, mod in enumerate(PROBES):
            remaining = ctx.deadline - time.monotonic()
            if remaining <= 0:
                say("probes: time budget exhausted; skipped " + ", ".join(_probe_id(m) for m in PROBES[i:]))
                break
            share = max(1.0, 2 * remaining / (len(PROBES) - i))
            ctx.start_probe(_probe_id(mod), seconds=min(mod.SECONDS, share), max_requests=mod.MAX_REQUESTS)
            say(f"probe {ctx.probe_id} (CWE-{mod.CWE})")
            try:
                mod.run(ctx)
            except BudgetExceeded:
                say(f"  {ctx.probe_id}: stopped at its time/request budget")
            except ServerDown:
                _crashed(ctx)
                break
            except Exception as exc:  # a probe bug is ours, not the backend's: report and go on
                say(f"  internal error in probe {ctx.probe_id}: {type(exc).__name__}: {exc}; skipped")
            if not ctx.alive():
                _crashed(ctx)
                break
    finally:
        ctx.http.close()
    if leaks and not any(f.cwe == error_leak.CWE for f in ctx.findings):
        exchange, hit = leaks[0]
        error_leak.report(ctx, f"stack trace or SQL: {hit[:60]!r}", exchange)
    return _dedupe(ctx.findings)


def _crashed(ctx: Context) -> None:
    ctx.add(
        robustness.ID,
        robustness.CWE,
        f"The server stopped answering during probe '{ctx.probe_id}' (crash)",
        "high",
        "Validate input types before use and keep errors inside handlers (no throws in callbacks or timers).",
        ctx.evidence(*ctx.recent),
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.id, f.title)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
