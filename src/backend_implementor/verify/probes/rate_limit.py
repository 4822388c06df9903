"""No rate limit on login (CWE-307): a burst of wrong passwords for one account is never refused.

Runs last: it may lock the account (or this client) out. The account is one verify registered (the first
probe user when verify made it, which costs no extra login); without signup it is a made-up name, so a
real account given with --user is never locked out. An API without a REST login whose probe users logged
in through a GraphQL mutation gets the same burst through that mutation."""

from __future__ import annotations

import re

from .. import graphql_api as g
from . import gql
from .base import Context, Exchange, is_2xx, rand

ID = "login-rate-limit"
CWE = 307
SECONDS = 15
MAX_REQUESTS = 40
ATTEMPTS = 30
FIX = "Limit failed logins per account and client (e.g. 5 per 15 minutes, then 429 with Retry-After)."
# How GraphQL servers say "slow down" inside a 200: an error code or message (graphql-rate-limit, armor).
_REFUSAL = re.compile(r"rate.?limit|too.?many|throttl|try again later|locked|slow down", re.I)


def _limited(resp) -> bool:
    return (
        resp.status_code in (423, 429, 503)
        or "retry-after" in resp.headers
        or (resp.headers.get("ratelimit-remaining", resp.headers.get("x-ratelimit-remaining", "")) == "0")
    )


def run(ctx: Context) -> None:
    if ctx.auth is not None:
        _rest(ctx)
    elif ctx.accounts.login_mutation and ctx.graphql is not None and ctx.graphql.schema is not None:
        _graphql(ctx, ctx.accounts.login_mutation)
    elif ctx.accounts.reason:
        ctx.blocked(ctx.accounts.reason)


def _victim(ctx: Context) -> str | None:
    """An account verify made (None: new_user() could not make one and said why), or a made-up name."""
    first = ctx.accounts.users[0] if ctx.accounts.users else None
    if first is not None and first.ident in ctx.accounts.created:
        return first.ident
    if ctx.auth is None or not ctx.auth.register_path:
        return f"bimplnobody{rand(6)}"
    victim = ctx.new_user()
    return victim.ident if victim else None


def _rest(ctx: Context) -> None:
    assert ctx.auth is not None
    ident = _victim(ctx)
    if ident is None:
        return
    statuses = []
    first = None
    for i in range(ATTEMPTS):
        resp = ctx.login(ident, f"bimpl-wrong-{i}-Pw9!", retry_429=False)
        if resp is None:
            ctx.blocked(f"POST {ctx.auth.login_path} stopped answering during the burst")
            return
        first = first or ctx.last()
        if _limited(resp):
            ctx.checked = f"POST {ctx.auth.login_path} refused wrong password {i + 1} of a burst"
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
        FIX,
        ctx.evidence(first or Exchange("", ""), ctx.last()),
    )


def _graphql(ctx: Context, mutation: str) -> None:
    ep = ctx.graphql
    assert ep is not None and ep.schema is not None
    ident = _victim(ctx)
    if ident is None:
        return
    where = f"GraphQL mutation {mutation} at {ep.path}"
    refusals: set[str] = set()
    first = None
    for i in range(ATTEMPTS):
        a = gql.run_call(ctx, gql.credentials_call(ep.schema, mutation, ident, f"bimpl-wrong-{i}-Pw9!"))
        if a.resp is None:
            ctx.blocked(f"{where} stopped answering during the burst")
            return
        first = first or a.exchange
        if _limited(a.resp) or _REFUSAL.search(g.error_text(a.errors)):
            ctx.checked = f"{where} refused wrong password {i + 1} of a burst"
            ctx.changed(f"tripped the login rate limit of {where} with wrong passwords for {ident}: logins "
                        "from this client may be refused for a while")  # fmt: skip
            return
        if a.ok and gql.token_in(a.data):
            return  # the server lets anything in, which other probes report
        refusals.add(a.why() if a.graphql else f"HTTP {a.status}")
    ctx.add(
        ID,
        CWE,
        f"No rate limit on {where}: {ATTEMPTS} wrong passwords in a burst, none refused "
        f"(answers: {'; '.join(sorted(refusals))[:200]})",
        "medium",
        FIX,
        ctx.evidence(first or Exchange("", ""), ctx.last()),
    )
