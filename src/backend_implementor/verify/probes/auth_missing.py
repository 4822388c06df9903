"""Protected operations reachable without a token (CWE-306).

Protected = declared with a security requirement in the OpenAPI document or, when the document declares
none, sharing a path with an operation that answers 401/403 without a token. Write operations are only
sent to resources this probe created."""

from __future__ import annotations

from ..openapi_doc import Operation, fill_path
from .base import Context, Resource, is_2xx

ID = "auth-missing"
CWE = 306
SECONDS = 15
MAX_REQUESTS = 200  # one anonymous request per protected operation, plus one created row per resource


def _protected(ctx: Context) -> list[Operation]:
    ops = [op for op in ctx.ops if not ctx.is_auth_path(op.path)]
    if any(op.secured for op in ops):
        return [op for op in ops if op.secured]
    # No security declared: learn which paths are protected from plain GETs without a token.
    guarded: set[str] = set()
    for op in ops:
        if op.method == "GET" and not op.path_params:
            resp = ctx.request("GET", op.path, params=ctx.query_values(op))
            if resp is not None and ctx.denied(resp):
                guarded.add(op.path.rstrip("/"))
    return [op for op in ops if any(op.path.rstrip("/") == g or op.path.startswith(g + "/") for g in guarded)]


def run(ctx: Context) -> None:
    user = ctx.user(0)
    kinds = {k.create.path: k for k in ctx.resource_kinds()}
    item_kind = {o.path: k for k in kinds.values() for o in k.items}
    flagged = 0
    made: dict[str, Resource] = {}  # one row per resource serves all its item operations while refused
    # DELETE last, so a refused one leaves the row for nothing after it, and an accepted one for no one.
    for op in sorted(_protected(ctx), key=lambda o: o.method == "DELETE"):
        if flagged >= 3:
            return
        path = fill_path(op.path, ctx.path_values(op))
        if op.path_params:
            kind = item_kind.get(op.path)
            if kind is None or user is None:
                continue
            res = made.get(kind.create.path) or ctx.create(kind, user)
            if res is None or res.id is None:
                continue
            made[kind.create.path] = res
            path = ctx.item_path(op, res)
        elif op.method != "GET" and op.path not in kinds:
            continue  # only create where we know what the write does
        body = ctx.example_body(op) if op.method in ("POST", "PUT", "PATCH") else None
        resp = ctx.request(op.method, path, json_body=body, params=ctx.query_values(op))
        if is_2xx(resp) and not ctx.denied(resp):
            if op.path_params:
                made.pop(item_kind[op.path].create.path, None)  # changed or gone: the next one gets a new row
            flagged += 1
            ctx.add(
                ID,
                CWE,
                f"{op} is protected but answered HTTP {resp.status_code} without a token",
                "high",
                "Mount the authentication middleware on this route (and check the role it needs).",
                ctx.evidence(),
            )
