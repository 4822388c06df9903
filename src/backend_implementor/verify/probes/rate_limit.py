"""No rate limit on login (CWE-307): a burst of wrong passwords for one account is never refused.

Runs last: it may lock the account (or this client) out. The account is one verify registered (the first
probe user when verify made it, which costs no extra login); without signup it is a made-up name, so a
real account given with --user is never locked out."""

from __future__ import annotations

from .base import Context, Exchange, is_2xx, rand

ID = "login-rate-limit"
CWE = 307
SECONDS = 15
MAX_REQUESTS = 40
ATTEMPTS = 30


def _limited(resp) -> bool:
    return (
        resp.status_code in (423, 429, 503)
        or "retry-after" in resp.headers
        or (resp.headers.get("ratelimit-remaining", resp.headers.get("x-ratelimit-remaining", "")) == "0")
    )


def run(ctx: Context) -> None:
    if ctx.auth is None:
        if ctx.accounts.reason:
            ctx.blocked(ctx.accounts.reason)
        return
    first = ctx.accounts.users[0] if ctx.accounts.users else None
    if first is not None and first.ident in ctx.accounts.created:
        victim = first
    else:
        victim = ctx.new_user() if ctx.auth.register_path else None
        if victim is None and ctx.auth.register_path:
            return  # new_user() said why
    ident = victim.ident if victim else f"bimplnobody{rand(6)}"
    statuses = []
    first = None
    for i in range(ATTEMPTS):
        resp = ctx.login(ident, f"bimpl-wrong-{i}-Pw9!", retry_429=False)
        if resp is None:
            ctx.blocked(f"POST {ctx.auth.login_path} stopped answering during the burst")
            return
        first = first or ctx.last()
        if _limited(resp):
            ctx.changed(f"tripped the login rate limit of POST {ctx.auth.login_path} with wrong passwords for "
                        f"{ident}: logins from this client may be refused for a while")  # fmt: skip
            return
        if is_2xx(resp) and ctx.logged_in(resp):
            return  # the server lets anything in, which other probes report
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
