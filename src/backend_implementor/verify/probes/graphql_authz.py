"""Authorization through GraphQL (CWE-639, CWE-306): a row that REST keeps from another user, or from
anyone without a login, must stay out of their reach through GraphQL too; and in a GraphQL-only API, a row
one user creates and nobody else lists must not be read or changed by another.

Parity with REST: user A creates a row through the REST API (a secured item GET reads it back, with a
marker in its text). The GraphQL query field that reads that row by id is found by asking it as A. Then,
wherever REST refuses:
- B's by-id query, and B's list queries, must not carry A's marker (when REST's own listing does not show
  the row to B either: a row every user lists is shared by design);
- the same by-id query without credentials must not carry it;
- B's update or delete mutation on A's row must not change it (read back through REST as A).

GraphQL alone (no REST resource to compare with): A creates the row with a create mutation and reads it
by id. A row anonymous callers read, or B's list queries show, is public or shared by design; otherwise
B's by-id query must not show it, and B's update and delete mutations must not change it (read back as A).
An API without a login has no one to keep apart: not applicable."""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import graphql_api as g
from .base import Context, find_key, is_2xx, rand
from .gql import Answer, Reader, is_signup, need, reader_of, run_call
from .idor import listed_for

ID = "graphql-authz"
CWE = 639
SECONDS = 25
MAX_REQUESTS = 80
NEEDS_OPENAPI = False
_CHANGE = re.compile(r"^(update|edit|modify|set|patch|change|delete|remove|destroy|archive)", re.I)
_DELETE = re.compile(r"^(delete|remove|destroy|archive)", re.I)
_CREATE = re.compile(r"^(create|add|new|post|submit|insert|save)", re.I)
FIX = (
    "Enforce one authorization rule for both APIs: resolvers call the same service (or policy) as the REST "
    "handlers, scoping every read and write by the signed-in owner."
)
ReadBack = Callable[[], tuple[bool, str]]  # (the row is gone, the text it reads as)


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
    compared: list[str] = []
    for kind in kinds[:4]:
        if _with_rest(ctx, ep, kind, a, b, compared):
            return
    if not kinds and _graphql_only(ctx, ep, a, b, compared):
        return
    if not compared:
        ctx.skip("no GraphQL query field reads the rows the API creates (by id, as their owner)")
    else:
        ctx.checked = "compared " + "; ".join(compared)


def _with_rest(ctx: Context, ep: g.Endpoint, kind, a, b, compared: list[str]) -> bool:
    get = next(o for o in kind.items if o.method == "GET" and o.secured)
    marker = f"bimplgql{rand(6)}"
    res = ctx.create(kind, a, marker=marker, required=False)
    if res is None or res.id is None:
        return False
    rest_path = ctx.item_path(get, res)
    own = ctx.request("GET", rest_path, user=a)
    if not (is_2xx(own) and marker in own.text):
        return False
    reader = reader_of(ctx, ep, res.id, a, marker)
    if reader is None:
        return False
    compared.append(f"{get} ~ {reader}")
    rest_anon = ctx.request("GET", rest_path)
    if rest_anon is not None and ctx.denied(rest_anon):
        anon = run_call(ctx, reader.call, user=None)
        if marker in anon.text():
            _flag(ctx, 306, f"anyone without a login reads user A's row through GraphQL {reader} "
                  f"(REST {get} requires a login)", anon)  # fmt: skip
            return True
    rest_b = ctx.request("GET", rest_path, user=b)
    if (is_2xx(rest_b) and marker in rest_b.text) or listed_for(ctx, kind, b, marker):
        return False  # B reads it through REST too: a shared row, and its writes are REST's rule to judge
    if _read_by(ctx, ep, reader, b, marker, f"(REST {get} refuses B)"):
        return True

    def read_back() -> tuple[bool, str]:
        back = ctx.request("GET", rest_path, user=a)
        return back is not None and back.status_code in (404, 410), back.text if back is not None else ""

    return _writes(ctx, ep, read_back, b, res.id)


def _graphql_only(ctx: Context, ep: g.Endpoint, a, b, compared: list[str]) -> bool:
    schema = ep.schema
    assert schema is not None
    creators = [
        (n, f) for n, f in g.root_fields(schema, "mutation")
        if _CREATE.match(n) and not is_signup(n) and g.object_of(f.type) is not None
    ]  # fmt: skip
    for name, f in creators[:3]:
        marker = f"bimplgql{rand(6)}"
        made = run_call(
            ctx, g.call(schema, "mutation", name, g.text_inputs(schema, f, marker), depth=1), user=a
        )
        rid = find_key(made.data, ("id", "_id", "uuid")) if made.ok else None
        if rid is None:
            continue
        reader = reader_of(ctx, ep, rid, a, marker)
        if reader is None:
            continue
        compared.append(f"mutation {name} ~ {reader}")
        if marker in run_call(ctx, reader.call, user=None).text():
            continue  # anonymous callers read it: public by design
        if any(marker in _listing(ctx, ep, name, b).text() for name in g.list_fields(schema)[:4]):
            continue  # B lists it too: shared by design
        by_b = run_call(ctx, reader.call, user=b)
        if marker in by_b.text():
            _flag(ctx, CWE, f"user B read user A's row through GraphQL {reader} (anonymous callers and B's "
                  "lists do not see it)", by_b)  # fmt: skip
            return True

        def read_back(reader: Reader = reader) -> tuple[bool, str]:
            back = run_call(ctx, reader.call, user=a)
            data = back.data if isinstance(back.data, dict) else {}
            return back.graphql and data.get(reader.call.field) is None, back.text()

        if _writes(ctx, ep, read_back, b, rid):
            return True
    return False


def _listing(ctx: Context, ep: g.Endpoint, name: str, user) -> Answer:
    return run_call(ctx, g.call(ep.schema, "query", name, depth=3), user=user)  # type: ignore[arg-type]


def _read_by(ctx: Context, ep: g.Endpoint, reader: Reader, b, marker: str, why: str) -> bool:
    by_b = run_call(ctx, reader.call, user=b)
    if marker in by_b.text():
        _flag(ctx, CWE, f"user B read user A's row through GraphQL {reader} {why}", by_b)
        return True
    for name in g.list_fields(ep.schema)[:4]:  # type: ignore[arg-type]
        listed = _listing(ctx, ep, name, b)
        if marker in listed.text():
            _flag(ctx, CWE, f"user B lists user A's row through GraphQL query {name} {why}", listed)
            return True
    return False


def _writes(ctx: Context, ep: g.Endpoint, read_back: ReadBack, b, rid) -> bool:
    """B's update and delete mutations on A's row (the mutation fields that take an id argument and name a
    change), checked by reading the row back as A."""
    schema = ep.schema
    assert schema is not None
    for name, f in list(g.root_fields(schema, "mutation"))[:40]:
        if not _CHANGE.match(name):
            continue
        id_arg = next((n for n in g.required_args(f) if g.ID_ARG.match(n)), None)
        if id_arg is None or (value := g.id_value(f.args[id_arg], rid)) is None:
            continue
        marker2 = f"bimplgql{rand(6)}"
        values = {id_arg: value, **g.text_inputs(schema, f, marker2, skip=id_arg)}
        by_b = run_call(ctx, g.call(schema, "mutation", name, values, depth=1), user=b)
        gone, text = read_back()
        if _DELETE.match(name):
            if gone:
                _flag(ctx, CWE, f"user B deleted user A's row through GraphQL mutation {name}", by_b)
                return True
        elif marker2 in text:
            _flag(ctx, CWE, f"user B changed user A's row through GraphQL mutation {name}", by_b)
            return True
    return False


def _flag(ctx: Context, cwe: int, title: str, answer: Answer) -> None:
    ctx.add(ID, cwe, title, "high", FIX, ctx.evidence(answer.exchange) if answer.exchange else ctx.evidence())
