"""Authorization parity between REST and GraphQL (CWE-639, CWE-306): a row that REST keeps from another
user, or from anyone without a login, must stay out of their reach through GraphQL too.

User A creates a row through the REST API (a secured item GET reads it back, with a marker in its text). The
GraphQL query field that reads that row by id is found by asking it as A. Then, wherever REST refuses:
- B's by-id query, and B's list queries, must not carry A's marker (when REST's own listing does not show
  the row to B either: a row every user lists is shared by design);
- the same by-id query without credentials must not carry it;
- B's update or delete mutation on A's row must not change it (read back through REST as A).
An API without a login has no one to keep apart: not applicable."""

from __future__ import annotations

import re

from .. import graphql_api as g
from .base import Context, is_2xx, rand
from .gql import Answer, Reader, need, reader_of, run_call
from .idor import listed_for

ID = "graphql-authz"
CWE = 639
SECONDS = 25
MAX_REQUESTS = 80
NEEDS_OPENAPI = False
_CHANGE = re.compile(r"^(update|edit|modify|set|patch|change|delete|remove|destroy)", re.I)
_DELETE = re.compile(r"^(delete|remove|destroy)", re.I)
FIX = (
    "Enforce one authorization rule for both APIs: resolvers call the same service (or policy) as the REST "
    "handlers, scoping every read and write by the signed-in owner."
)


def run(ctx: Context) -> None:
    ep = need(ctx, schema=False)
    if ep is None:
        return
    if ctx.auth is None and not ctx.accounts.users:
        ctx.skip("no login: every caller is the same to this API")
        return
    if need(ctx) is None:
        return
    a, b = ctx.user(0), ctx.user(1)
    if a is None or b is None:
        return
    kinds = [k for k in ctx.resource_kinds() if any(o.method == "GET" and o.secured for o in k.items)]
    if not kinds:
        ctx.skip("no REST resource read only with a login, to compare GraphQL with")
        return
    compared = []
    for kind in kinds[:4]:
        get = next(o for o in kind.items if o.method == "GET" and o.secured)
        marker = f"bimplgql{rand(6)}"
        res = ctx.create(kind, a, marker=marker, required=False)
        if res is None or res.id is None:
            continue
        rest_path = ctx.item_path(get, res)
        own = ctx.request("GET", rest_path, user=a)
        if not (is_2xx(own) and marker in own.text):
            continue
        reader = reader_of(ctx, ep, res.id, a, marker)
        if reader is None:
            continue
        compared.append(f"{get} ~ {reader}")
        if _reads(ctx, kind, get, rest_path, reader, a, b, marker):
            return
        if _writes(ctx, ep, rest_path, reader, a, b, res.id, marker):
            return
    if not compared:
        ctx.skip("no GraphQL query field reads the rows the REST API creates (by id, as their owner)")
    else:
        ctx.checked = "compared " + "; ".join(compared)


def _reads(ctx: Context, kind, get, rest_path: str, reader: Reader, a, b, marker: str) -> bool:
    rest_b = ctx.request("GET", rest_path, user=b)
    if not (is_2xx(rest_b) and marker in rest_b.text) and not listed_for(ctx, kind, b, marker):
        by_b = run_call(ctx, reader.call, user=b)
        if marker in by_b.text():
            _flag(ctx, CWE, f"user B read user A's row through GraphQL {reader} (REST {get} refuses B)", by_b)
            return True
        for name in g.list_fields(ctx.graphql.schema)[:4]:
            listed = run_call(ctx, g.call(ctx.graphql.schema, "query", name, depth=3), user=b)
            if marker in listed.text():
                _flag(ctx, CWE, f"user B lists user A's row through GraphQL query {name} (REST {get} refuses B)",
                      listed)  # fmt: skip
                return True
    rest_anon = ctx.request("GET", rest_path)
    if rest_anon is not None and ctx.denied(rest_anon):
        anon = run_call(ctx, reader.call, user=None)
        if marker in anon.text():
            _flag(ctx, 306, f"anyone without a login reads user A's row through GraphQL {reader} "
                  f"(REST {get} requires a login)", anon)  # fmt: skip
            return True
    return False


def _writes(ctx: Context, ep: g.Endpoint, rest_path: str, reader: Reader, a, b, rid, marker: str) -> bool:
    """B's update and delete mutations on A's row (the mutation fields that take the row's id argument and
    name a change), checked by reading the row back through REST as A."""
    schema = ep.schema
    assert schema is not None
    for name, f in list(g.root_fields(schema, "mutation"))[:40]:
        if not _CHANGE.match(name):
            continue
        id_arg = next((n for n in g.required_args(f) if g.ID_ARG.match(n)), None)
        if id_arg is None:
            continue
        marker2 = f"bimplgql{rand(6)}"
        values = {id_arg: g.id_value(f.args[id_arg], rid), **g.text_inputs(schema, f, marker2, skip=id_arg)}
        c = g.call(schema, "mutation", name, values, depth=1)
        by_b = run_call(ctx, c, user=b)
        back = ctx.request("GET", rest_path, user=a)
        if _DELETE.match(name):
            if back is not None and back.status_code in (404, 410):
                _flag(ctx, CWE, f"user B deleted user A's row through GraphQL mutation {name}", by_b)
                return True
        elif back is not None and marker2 in back.text:
            _flag(ctx, CWE, f"user B changed user A's row through GraphQL mutation {name}", by_b)
            return True
    return False


def _flag(ctx: Context, cwe: int, title: str, answer: Answer) -> None:
    ctx.add(ID, cwe, title, "high", FIX, ctx.evidence(answer.exchange) if answer.exchange else ctx.evidence())
