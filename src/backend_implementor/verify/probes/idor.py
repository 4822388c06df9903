"""Insecure direct object reference between two registered users (CWE-639).

User A creates a resource; user B reads, updates and deletes it by id. Reads count only for operations
that require authentication (public resources are readable by design), and not when B's own listing of the
collection shows A's resource too: then every signed-in user sees every item by design (a shared resource,
e.g. a catalogue), and reading one by id exposes nothing the list does not. Writes are checked by reading
the resource back as A. Beyond the created resources:
- the account itself: B reads A's record (/users/{A's id}) with A's email in it, or changes it;
- a user named in the query (?username=A) lists what A created;
- a small integer id read by anyone without a login, where creating needs one and no listing shows it;
- a body naming A's own record as the acting party (`from_account_id`) sent by B changes A's records."""

from __future__ import annotations

import re

from ..openapi_doc import fill_path
from .base import Context, User, is_2xx, rand

ID = "idor"
CWE = 639
SECONDS = 20
MAX_REQUESTS = 90
ACCOUNT_PATH = re.compile(r"/(users?|accounts?|members?|profiles?|customers?|people)/\{[^}]+\}$", re.I)
USER_PARAM = re.compile(
    r"^(user(_?name|_?id)?|owner(_?id)?|author(_?id)?|member|account|email|login|handle)$", re.I
)
OWN_PATH = re.compile(r"/(me|mine|my|self|current|whoami|profile|account|wallet|balance)s?\b", re.I)


def run(ctx: Context) -> None:
    a, b = ctx.user(0), ctx.user(1)
    if a is None or b is None:
        return
    if _account(ctx, a, b) or _acting_party(ctx, a, b):
        return
    for kind in ctx.resource_kinds()[:4]:
        marker = f"bimplidor{rand(6)}"
        if not kind.param:  # a collection without item paths: only the listing can leak
            if ctx.create(kind, a, marker=marker, required=False) is not None:
                _named_in_query(ctx, kind, a, b, marker)
            continue
        get = next((o for o in kind.items if o.method == "GET"), None)
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
                if not listed_for(ctx, kind, b, marker):
                    _flag(ctx, f"user B read user A's resource: {get}", ex)
                    continue
            if not get.secured and _anonymous_enumeration(ctx, kind, res, path, marker):
                continue
        if _named_in_query(ctx, kind, a, b, marker):
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


def _account(ctx: Context, a: User, b: User) -> bool:
    """B reads or changes A's own account record by A's id."""
    email = next((v for k, v in a.fields.items() if "mail" in k.lower()), a.ident if "@" in a.ident else None)
    if a.id is None or b.id is None:
        return False
    for op in ctx.ops:
        if len(op.path_params) != 1 or not ACCOUNT_PATH.search(op.path):
            continue
        p = op.path_params[0].name
        mine = fill_path(op.path, {p: a.id})
        if op.method == "GET":
            own = ctx.request("GET", mine, user=a)
            if not is_2xx(own) or not email or email not in own.text:
                continue
            resp = ctx.request("GET", mine, user=b)
            if is_2xx(resp) and email in resp.text and not ctx.denied(resp):
                _flag(ctx, f"user B read user A's account record (their email): {op}", ctx.last())
                return True
        elif op.method in ("PUT", "PATCH"):
            get = next((o for o in ctx.ops if o.method == "GET" and o.path == op.path), None)
            marker = f"bimplidor{rand(6)}"
            body = ctx.example_body(op, marker)
            if get is None or not isinstance(body, dict) or marker not in str(body):
                continue
            resp = ctx.request(op.method, mine, json_body=body, user=b)
            ex = ctx.last()
            back = ctx.request("GET", mine, user=a) if is_2xx(resp) else None
            if back is not None and marker in back.text:
                _flag(ctx, f"user B changed user A's account record: {op}", ex)
                return True
    return False


def _anonymous_enumeration(ctx: Context, kind, res, path: str, marker: str) -> bool:
    """A's resource, created with A's login, read by anyone who counts ids (/carts/1, /carts/2)."""
    if not re.fullmatch(r"\d{1,9}", str(res.id)):
        return False
    resp = ctx.request("GET", path)
    if not (is_2xx(resp) and marker in resp.text):
        return False
    ex = ctx.last()
    anon = ctx.request("POST", kind.create.path, json_body=ctx.example_body(kind.create))
    if anon is None or not ctx.denied(anon) or listed_for(ctx, kind, None, marker):
        return False  # anyone may create them, or the listing shows them anyway: public by design
    _flag(ctx, f"anyone without a login reads user A's resource by its sequential id: {kind.items[0]}", ex)
    return True


def _named_in_query(ctx: Context, kind, a: User, b: User, marker: str) -> bool:
    """A GET that takes the user from the query (?username=alice) shows A's resource to B."""
    for op in ctx.get_ops(with_path_params=False):
        names = [p for p in op.query_params if USER_PARAM.match(p.name)]
        if not names:
            continue
        p = names[0]
        value = a.fields.get(p.name) or (a.id if "id" in p.name.lower() else a.ident)
        params = {**ctx.query_values(op, a), p.name: value}
        own = ctx.request("GET", op.path, params=params, user=a if op.secured or a else None)
        if not (is_2xx(own) and marker in own.text):
            continue
        resp = ctx.request("GET", op.path, params=params, user=b)
        if is_2xx(resp) and marker in resp.text and not ctx.denied(resp):
            _flag(
                ctx,
                f"user B lists user A's resources by naming A in the query ('{p.name}'): {op}",
                ctx.last(),
            )
            return True
    return False


def _acting_party(ctx: Context, a: User, b: User) -> bool:
    """B sends a write naming A's own record as the party acting (from_account_id = A's account); A's own
    records change."""
    own_ops = [o for o in ctx.get_ops(with_path_params=False) if OWN_PATH.search(o.path) and o.secured]
    for op in ctx.ops:
        if op.method != "POST" or op.path_params or ctx.is_auth_path(op.path) or not own_ops:
            continue
        body = ctx.example_body(op)
        if not isinstance(body, dict):
            continue
        actor = ctx.fill_parties(body, op, a, b)
        if not actor:
            continue
        before = [ctx.request("GET", o.path, user=a).text for o in own_ops[:2]]
        resp = ctx.request("POST", op.path, json_body=body, user=b)
        ex = ctx.last()
        if not is_2xx(resp):
            continue
        after = [ctx.request("GET", o.path, user=a).text for o in own_ops[:2]]
        if after != before:
            fields = ", ".join(actor)
            _flag(ctx, f"user B acted on user A's records by naming them in the body ({fields}): {op}", ex)
            return True
    return False


def listed_for(ctx: Context, kind, user, marker: str) -> bool:
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
