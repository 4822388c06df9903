"""Private fields exposed through GraphQL (CWE-200).

- Sensitive fields: every root query field a user can call without arguments (and `me`), asked with each
  type's fields two levels deep, must not hand out password hashes or other accounts' tokens (the same
  rules as the REST exposure check: exposure.leaks).
- Parity with REST: a value written through the REST API that REST never returns (a private note, a PIN)
  must not be readable through the GraphQL type either. The row is created as its owner, read through
  REST (keys seen) and through the GraphQL by-id query: a field REST leaves out that carries the value
  written is the leak."""

from __future__ import annotations

from typing import Any

from .. import graphql_api as g
from .base import Context, is_2xx, json_of, norm_key, rand
from .exposure import identities, leaks
from .gql import Answer, need, reader_of, run_call

ID = "graphql-exposure"
CWE = 200
SECONDS = 15
MAX_REQUESTS = 40
NEEDS_OPENAPI = False
FIX = (
    "Leave private columns out of the GraphQL types (or resolve them only for whom REST shows them): the "
    "schema is a public allow-list, the same as the REST response's."
)


def run(ctx: Context) -> None:
    ep = need(ctx)
    if ep is None:
        return
    users = ctx.accounts.users[:2]  # logged in when the session opened; none: anonymous
    if _sensitive(ctx, ep, users[-1] if users else None):
        return
    if users:
        _hidden_by_rest(ctx, ep, users[0])


def _sensitive(ctx: Context, ep: g.Endpoint, user) -> bool:
    assert ep.schema is not None
    names = [n for n, f in g.root_fields(ep.schema) if g.object_of(f.type) and not g.required_args(f)]
    for name in names[:8]:
        a = run_call(ctx, g.call(ep.schema, "query", name, depth=3), user=user)
        hit = leaks(a.data, caller=identities(user)) if a.graphql else None
        if hit:
            _flag(ctx, f"query {name} returns {hit[1]}", a)
            return True
    return False


def _hidden_by_rest(ctx: Context, ep: g.Endpoint, owner) -> None:
    kept: list[str] = []  # what REST hides and GraphQL was checked not to show
    for kind in ctx.resource_kinds()[:4]:
        get = next((o for o in kind.items if o.method == "GET"), None)
        if get is None:
            continue
        marker = f"bimplgqx{rand(6)}"
        res = ctx.create(kind, owner if kind.create.secured or owner else None, marker=marker, required=False)
        if res is None or res.id is None:
            continue
        rest = ctx.request("GET", ctx.item_path(get, res), user=owner)
        shown = _keys(json_of(rest)) if is_2xx(rest) else None
        if not shown:
            continue
        written = {norm_key(k): v for k, v in res.body.items() if isinstance(v, str) and marker in v}
        hidden = {k for k in written if k not in shown}
        if not hidden:
            continue
        reader = reader_of(ctx, ep, res.id, owner, marker)
        if reader is None:
            continue
        data = reader.answer.data
        found = sorted(k for k, v in _flat(data).items() if norm_key(k) in hidden and isinstance(v, str)
                       and marker in v)  # fmt: skip
        if found:
            _flag(ctx, f"{reader} returns '{found[0]}', a field REST {get} never shows", reader.answer)
            return
        kept.append(f"{', '.join(sorted(hidden))} ({kind.create})")
    if kept:
        ctx.checked = "fields REST does not return stay out of GraphQL: " + "; ".join(kept)


def _keys(data: Any) -> set[str]:
    return {norm_key(k) for k in _flat(data)}


def _flat(data: Any, depth: int = 0) -> dict[str, Any]:
    """The keys of a row and of the envelopes around it ({"data": {...}}), with their values."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and depth < 3:
        for k, v in data.items():
            if isinstance(v, dict):
                out.update(_flat(v, depth + 1))
            else:
                out[k] = v
    return out


def _flag(ctx: Context, what: str, a: Answer) -> None:
    ctx.add(ID, CWE, f"Private data exposed through GraphQL: {what}", "high", FIX,
            ctx.evidence(a.exchange) if a.exchange else ctx.evidence())  # fmt: skip
