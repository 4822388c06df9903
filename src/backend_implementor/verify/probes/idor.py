"""Insecure direct object reference between two registered users (CWE-639).

User A creates a resource; user B reads, updates and deletes it by id. Reads count only for operations
that require authentication (public resources are readable by design), and not when B's own listing of the
collection shows A's resource too: then every signed-in user sees every item by design (a shared resource,
e.g. a catalogue), and reading one by id exposes nothing the list does not. Writes are checked by reading
the resource back as A."""

from __future__ import annotations

from .base import Context, is_2xx, rand

ID = "idor"
CWE = 639
SECONDS = 15
MAX_REQUESTS = 60


def run(ctx: Context) -> None:
    a, b = ctx.user(0), ctx.user(1)
    if a is None or b is None:
        return
    for kind in ctx.resource_kinds()[:4]:
        if not kind.param:
            continue
        get = next((o for o in kind.items if o.method == "GET"), None)
        marker = f"bimplidor{rand(6)}"
        res = ctx.create(kind, a, marker=marker)
        if res is None or res.id is None:
            continue
        if get is not None:
            path = ctx.item_path(get, res)
            own = ctx.request("GET", path, user=a)
            if not is_2xx(own):
                continue
            resp = ctx.request("GET", path, user=b)
            if is_2xx(resp) and marker in resp.text and get.secured:
                ex = ctx.last()
                if not _listed_for(ctx, kind, b, marker):
                    _flag(ctx, f"user B read user A's resource: {get}", ex)
                    continue
        for op in kind.items:
            if op.method in ("PUT", "PATCH"):
                marker2 = f"bimplidor{rand(6)}"
                body = ctx.example_body(op, marker2)
                path = ctx.item_path(op, res)
                resp = ctx.request(op.method, path, json_body=body, user=b)
                ex = ctx.last()
                if is_2xx(resp) and get is not None:
                    back = ctx.request("GET", ctx.item_path(get, res), user=a)
                    if back is not None and marker2 in back.text:
                        _flag(ctx, f"user B modified user A's resource: {op}", ex)
                        break
        for op in kind.items:
            if op.method == "DELETE" and get is not None:
                resp = ctx.request("DELETE", ctx.item_path(op, res), user=b)
                ex = ctx.last()
                if is_2xx(resp):
                    back = ctx.request("GET", ctx.item_path(get, res), user=a)
                    if back is not None and back.status_code in (404, 410):
                        _flag(ctx, f"user B deleted user A's resource: {op}", ex)


def _listed_for(ctx: Context, kind, user, marker: str) -> bool:
    """Whether `user`'s GET on the collection (first page) shows the resource carrying `marker`."""
    listing = next(
        (o for o in ctx.ops if o.method == "GET" and o.path == kind.create.path and not o.path_params), None
    )
    if listing is None:
        return False
    resp = ctx.request("GET", kind.create.path, user=user)
    return is_2xx(resp) and marker in resp.text


def _flag(ctx: Context, title: str, exchange=None) -> None:
    ctx.add(
        ID,
        CWE,
        title,
        "high",
        "Scope every lookup by the authenticated owner (WHERE id = $1 AND owner_id = $2) and answer 404 otherwise.",
        ctx.evidence(exchange) if exchange else ctx.evidence(),
    )
