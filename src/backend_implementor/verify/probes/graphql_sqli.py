"""SQL injection through GraphQL arguments (CWE-89): the text arguments of the root query fields (filters,
search, sort, ids), tried the way the REST check tries query parameters, without anything destructive:
- error-based: a lone quote gives a SQL error (in `errors[]`, or masked as an internal error, or a 5xx)
  while the plain value and a balanced form do not;
- boolean-based: a tautology lists more rows than its contradiction."""

from __future__ import annotations

import re

from graphql import get_named_type

from .. import graphql_api as g
from . import gql
from .base import Context
from .gql import Answer, items_in, need, run_call
from .sqli import FIX, SQL_ERROR_RE

ID = "graphql-sqli"
CWE = 89
SECONDS = 20
MAX_REQUESTS = 120
NEEDS_OPENAPI = False
_INTERNAL = re.compile(r"internal server error|INTERNAL_SERVER_ERROR|unexpected error", re.I)
_TEXT = ("String", "ID")


def run(ctx: Context) -> None:
    ep = need(ctx)
    if ep is None:
        return
    user = gql.signed_in(ctx)
    assert ep.schema is not None
    tried = 0
    for name, f in list(g.root_fields(ep.schema))[:20]:
        for arg, a in f.args.items():
            if get_named_type(a.type).name not in _TEXT or g.is_list(a.type):
                continue
            tried += 1
            if _argument(ctx, ep, name, arg, user):
                return
    if not tried:
        ctx.skip("no root query field takes a text argument")


def _argument(ctx: Context, ep: g.Endpoint, name: str, arg: str, user) -> bool:
    def send(value: str) -> Answer:
        c = g.call(ep.schema, "query", name, {arg: value}, depth=1)  # type: ignore[arg-type]
        return run_call(ctx, c, user=user)

    label = f"argument '{arg}' of query {name}"
    first = send("bimplzq")
    if not first.graphql or _broken(first):
        return False
    broken = send("bimplzq'")
    if _broken(broken):
        for balanced in ("bimplzq''", "bimplzq'--"):
            ok = send(balanced)
            if ok.graphql and not _broken(ok):
                _flag(ctx, f"{label}: a quote breaks the query ({_what(broken)}), its balanced form does not",
                      broken, ok)  # fmt: skip
                return True
        return False
    for true_v, false_v in (("bimplzq' OR 'a'<>'b", "bimplzq' AND 'a'='b"), ("0 OR 1=1", "0 AND 1=2")):
        t, f = send(true_v), send(false_v)
        tn, fn = _count(t), _count(f)
        if tn is not None and fn is not None and tn > fn:
            _flag(ctx, f"(boolean) {label}: a tautology returns {tn} rows, its contradiction {fn}", t, f)
            return True
    return False


def _broken(a: Answer) -> bool:
    if a.status >= 500:
        return True
    text = g.error_text(a.errors)
    return bool(SQL_ERROR_RE.search(text) or _INTERNAL.search(text))


def _what(a: Answer) -> str:
    return f"HTTP {a.status}" if a.status >= 500 else g.error_text(a.errors)[:80].strip()


def _count(a: Answer) -> int | None:
    if not a.graphql:
        return None
    if a.errors and a.data is None:
        return 0
    items = items_in(a.data)
    if items is not None:
        return len(items)
    return 1 if isinstance(a.data, dict) and any(v is not None for v in a.data.values()) else 0


def _flag(ctx: Context, title: str, *answers: Answer) -> None:
    ctx.add(ID, CWE, f"SQL injection through GraphQL {title}", "critical", FIX,
            ctx.evidence(*(x.exchange for x in answers if x.exchange)))  # fmt: skip
