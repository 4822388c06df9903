"""GraphQL amplification accepted (CWE-770): one request that makes the server do the work of thousands.

Three shapes, each sent after a small control query that must pass (so a refusal is the limit, not a
broken query):
- depth: a query nested 16 levels through a cycle of the schema (Book.author -> Author.books -> ...),
  lists bounded to one item where the field takes a bound, so an unlimited server still does little work;
- aliases: one root field asked 100 times under different aliases in one query;
- batching: a JSON array of 25 operations in one request, answered as 25 results.
A limit anywhere (a validation error, a 400/413, a batch refused or cut short) is clean."""

from __future__ import annotations

from .. import graphql_api as g
from . import gql
from .base import Context, json_of
from .gql import Answer, ask, need

ID = "graphql-limits"
CWE = 770
SECONDS = 20
MAX_REQUESTS = 12
NEEDS_OPENAPI = False
DEPTH = 16
ALIASES = 100
BATCH = 25
FIX = (
    "Bound every query before it runs: maximum depth, aliases, directives and cost (graphql-armor, "
    "graphql-depth-limit), and refuse or cap batched operations."
)


def run(ctx: Context) -> None:
    ep = need(ctx, schema=False)
    if ep is None:
        return
    user = gql.signed_in(ctx)
    _batch(ctx, user)
    if ep.schema is None:
        ctx.blocked(f"the schema of {ep.path} is unknown, so no deep or aliased query could be built")
        return
    _depth(ctx, ep.schema, user)
    _aliases(ctx, ep.schema, user)


def _batch(ctx: Context, user) -> None:
    one = {"query": "query BimplBatch { __typename }"}
    a = ask(ctx, "", body=[one] * BATCH, user=user)
    results = json_of(a.resp)
    if (
        isinstance(results, list)
        and len(results) >= BATCH
        and all(isinstance(r, dict) and isinstance(r.get("data"), dict) for r in results)
    ):
        _flag(ctx, f"a batch of {BATCH} operations in one request was executed", a)


def _depth(ctx: Context, schema, user) -> None:
    path = g.cycle_path(schema)
    if path is None:
        ctx.checked = "no cycle in the schema: a query cannot nest deeper than its types"
        return
    shallow = ask(ctx, g.nested_query(path, len(path)), user=user)
    if not shallow.ok:
        ctx.blocked(f"the control query for depth was not executed: {shallow.why()}")
        return
    deep = ask(ctx, g.nested_query(path, DEPTH), user=user, timeout=15)
    if deep.ok:
        _flag(
            ctx, f"a query nested {DEPTH} levels deep was executed ({'.'.join(n for n, _ in path)} ...)", deep
        )


def _aliases(ctx: Context, schema, user) -> None:
    fields = g.list_fields(schema) or [n for n, f in g.root_fields(schema) if g.bounds_only(f)]
    if not fields:
        ctx.checked = "no root query field without arguments to alias"
        return
    field = fields[0]
    bounds = ", ".join(f"{n}: 1" for n in g.required_args(schema.query_type.fields[field]))
    asked = f"{field}({bounds}) {{ __typename }}" if bounds else f"{field} {{ __typename }}"
    control = ask(ctx, f"query BimplAlias {{ {asked} }}", user=user)
    if not control.ok:
        ctx.blocked(f"the control query {field} was not executed: {control.why()}")
        return
    many = " ".join(f"a{i}: {asked}" for i in range(ALIASES))
    a = ask(ctx, f"query BimplAliases {{ {many} }}", user=user, timeout=15)
    if a.ok and isinstance(a.data, dict) and len(a.data) >= ALIASES:
        _flag(ctx, f"{ALIASES} aliases of '{field}' in one query were executed", a)


def _flag(ctx: Context, what: str, a: Answer) -> None:
    ctx.add(ID, CWE, f"GraphQL amplification accepted: {what}", "medium", FIX,
            ctx.evidence(a.exchange) if a.exchange else ctx.evidence())  # fmt: skip
