"""GraphQL introspection answered in production (CWE-200): anyone can read the whole schema, every type,
field and argument, including those the client never uses, the map an attacker starts from.

Verify runs a project's server in test mode, where introspection is commonly on by design. So in project
mode the question goes to a second instance of the backend started with NODE_ENV=production (the same
environment otherwise); only when the test-mode server already refuses introspection is that boot skipped.
Against a URL the server is taken as deployed: its own answer is the verdict."""

from __future__ import annotations

import time

from .base import Context
from .gql import introspect, need

ID = "graphql-introspection"
CWE = 200
SECONDS = 10  # the production instance's boot is not counted
MAX_REQUESTS = 40  # a stepwise introspection takes a few per instance
NEEDS_OPENAPI = False
FIX = (
    "Turn introspection off when NODE_ENV=production (graphql-js NoSchemaIntrospectionCustomRule, "
    "Apollo Server `introspection: false`, graphql-armor); keep the SDL in the repository for clients."
)


def run(ctx: Context) -> None:
    ep = need(ctx, schema=False)
    if ep is None:
        return
    user = ctx.accounts.users[0] if ep.needs_login and ctx.accounts.users else None
    schema, here = introspect(ctx, user, ep.path)
    answered = schema is not None
    production = ctx.target.production
    if production is None:  # a URL: what it answers is what production answers
        if answered:
            _flag(ctx, f"{ep.path} answers the introspection query (the server at {ctx.base_url})", here)
        return
    if not answered:
        ctx.checked = "introspection is refused even in test mode"
        return
    t0 = time.monotonic()
    with production() as base_url:
        ctx.not_counting(time.monotonic() - t0)  # starting the server is not the probe's time
        if base_url is None:
            ctx.blocked("the backend did not start with NODE_ENV=production (see server-production.log)")
            return
        schema, prod = introspect(ctx, None, base_url + ep.path)
        if schema is not None:
            _flag(ctx, f"{ep.path} answers the introspection query with NODE_ENV=production", prod)
        elif prod.status not in (401, 403) and not prod.graphql:  # a login it wants is a refusal too
            ctx.blocked(f"the production instance answered HTTP {prod.status} without a GraphQL body")


def _flag(ctx: Context, title: str, answer) -> None:
    ctx.add(ID, CWE, f"GraphQL introspection is on in production: {title}", "medium", FIX,
            ctx.evidence(answer.exchange) if answer.exchange else ctx.evidence())  # fmt: skip
