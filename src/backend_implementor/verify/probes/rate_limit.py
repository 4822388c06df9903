"""No rate limit on login (CWE-307): a burst of wrong passwords for one account is never refused."""

from __future__ import annotations

from .base import Context, Exchange, is_2xx

ID = "login-rate-limit"
CWE = 307
SECONDS = 15
MAX_REQUESTS = 34
ATTEMPTS = 30


def _limited(resp) -> bool:
    return (
        resp.status_code in (423, 429, 503)
        or "retry-after" in resp.headers
        or (resp.headers.get("ratelimit-remaining", resp.headers.get("x-ratelimit-remaining", "")) == "0")
    )


def run(ctx: Context) -> None:
    victim = ctx.new_user()
    if victim is None or ctx.auth is None:
        return
    statuses = []
    first = None
    for i in range(ATTEMPTS):
        resp = ctx.login(victim.ident, f"bimpl-wrong-{i}-Pw9!")
        if resp is None:
            return
        first = first or ctx.last()
        if _limited(resp) or is_2xx(resp):
            return  # limited (or the server lets anything in, which other probes report)
        statuses.append(resp.status_code)
    ctx.add(
        ID,
        CWE,
        f"No rate limit on {ctx.auth.login_path}: {ATTEMPTS} wrong passwords in a burst, none refused "
        f"(statuses {sorted(set(statuses))})",
        "medium",
        "Limit failed logins per account and client (e.g. 5 per 15 minutes, then 429 with Retry-After).",
        ctx.evidence(first or Exchange("", ""), ctx.last()),
    )
