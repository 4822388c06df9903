"""Mass assignment (CWE-915): privilege, ownership or server-kept fields accepted from the client.

Register with role/admin keys the schema does not offer, then look for admin rights in what the API
says about the user (register and login responses, token claims, a /me-like operation); the same keys sent
to an update of the user's own profile (PUT/PATCH /me, /users/{own id}), looked for after logging in again.
Create a resource with an owner id of another user and look for that owner in the result. Update a
resource with the fields the server keeps itself (in its answers, in no request body: `balance`,
`verified`, `credits`) set to unlikely values, and read them back."""

from __future__ import annotations

import re
from typing import Any

from ..openapi_doc import fill_path
from .base import Context, Exchange, find_key, is_2xx, json_of, jwt_claims

ID = "mass-assignment"
CWE = 915
SECONDS = 15
MAX_REQUESTS = 40

PRIVILEGED = {"role": "admin", "isAdmin": True, "is_admin": True, "admin": True, "roles": ["admin"]}
OWNER_KEYS = ("ownerId", "owner_id", "owner", "userId", "user_id")
FIX = "Copy only the fields a client may set (an allow-list / DTO); never spread req.body into a model."


def is_admin(data: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if isinstance(data, dict):
        for k, v in data.items():
            key = k.lower()
            if key in ("role", "roles", "user_role", "usertype", "type") and (
                v == "admin" or (isinstance(v, list) and "admin" in v)
            ):
                return True
            if key in ("isadmin", "is_admin", "admin") and v is True:
                return True
            if isinstance(v, dict | list) and is_admin(v, depth + 1):
                return True
    elif isinstance(data, list):
        return any(is_admin(x, depth + 1) for x in data[:5])
    return False


def _me_op(ctx: Context):
    for op in ctx.get_ops(with_path_params=False):
        low = op.path.lower()
        if (
            op.secured
            and not op.query_params
            and any(w in low for w in ("/me", "profile", "whoami", "account", "current"))
        ):
            return op
    return None


def _views(ctx: Context, user) -> list[tuple[str, Any, Exchange | None]]:
    views = [
        ("register response", user.register_json, None),
        ("login response", user.login_json, None),
        ("token claims", jwt_claims(user.token), None),
    ]
    op = _me_op(ctx)
    if op is not None:
        resp = ctx.request("GET", op.path, user=user)
        views.append((str(op), json_of(resp) if is_2xx(resp) else None, ctx.last()))
    return views


def run(ctx: Context) -> None:
    base = ctx.user(0)
    if base is None or any(is_admin(v) for _, v, _ in _views(ctx, base)):
        return  # no auth, or ordinary users already look like admins: nothing to compare
    props = {}
    for op in ctx.ops:
        if ctx.auth and op.method == "POST" and op.path == ctx.auth.register_path and op.body_schema:
            props = op.body_schema.get("properties") or {}
    extra = {k: v for k, v in PRIVILEGED.items() if k not in props}
    if ctx.auth is None or ctx.auth.register_path is None:
        # No REST signup to send them to (a GraphQL signup's typed arguments refuse unknown keys anyway);
        # the ownership check below still runs.
        extra = {}
    if extra:
        user = ctx.accounts.new_user(extra=extra)
        if user is None and not (ctx.accounts.reason or "").startswith("registration refused"):
            ctx.blocked(ctx.accounts.reason or "could not log in")
        # Registration refusing the extra keys (a strict body) is the defence itself.
        if user is not None:
            for where, view, ex in _views(ctx, user):
                if is_admin(view):
                    reg = f"POST {ctx.auth.register_path if ctx.auth else ''} with extra keys {sorted(extra)}"
                    ctx.add(
                        ID,
                        CWE,
                        f"Registration accepted client-set privileges: the {where} shows admin rights",
                        "critical",
                        FIX,
                        ctx.evidence(ex)
                        if ex
                        else ctx.evidence(Exchange(reg, f"{where}: admin rights present")),
                    )
                    return
    if _profile_update(ctx):
        return
    if _owner(ctx, base):
        return
    _server_fields(ctx, base)


def _profile_ops(ctx: Context, user) -> list[tuple[Any, str]]:
    """PUT/PATCH operations on the caller's own account, with the path to send them to."""
    out = []
    for op in ctx.ops:
        if op.method not in ("PUT", "PATCH") or ctx.is_auth_path(op.path):
            continue
        if not op.path_params and re.search(r"/(me|profile|account|self|current)(/|$)", op.path, re.I):
            out.append((op, op.path))
        elif (
            len(op.path_params) == 1
            and user.id is not None
            and re.search(r"/(users|accounts|members|profiles)/\{[^}]+\}$", op.path, re.I)
        ):
            out.append((op, fill_path(op.path, {op.path_params[0].name: user.id})))
    return out


def _profile_update(ctx: Context) -> bool:
    probe_user = ctx.user(0)
    if probe_user is None or not _profile_ops(ctx, probe_user):
        return False
    user = ctx.accounts.new_user()  # a fresh account: the shared ones must stay ordinary
    if user is None:
        return False
    for op, path in _profile_ops(ctx, user)[:2]:
        props = (op.body_schema or {}).get("properties") or {}
        extra = {k: v for k, v in PRIVILEGED.items() if k not in props}
        body = ctx.example_body(op)
        body = {**(body if isinstance(body, dict) else {}), **extra}
        resp = ctx.request(op.method, path, json_body=body, user=user)
        sent = ctx.last()
        if not is_2xx(resp):
            continue
        again = ctx.accounts.log_in(user.ident, user.password) or user
        for where, view, _ex in [("update response", json_of(resp), None), *_views(ctx, again)]:
            if is_admin(view):
                ctx.add(
                    ID,
                    CWE,
                    f"{op} accepted client-set privileges: the {where} shows admin rights",
                    "critical",
                    FIX,
                    ctx.evidence(sent),
                )
                return True
    return False


SERVER_KEPT_SKIP = re.compile(
    r"^(_?id|uuid|created|updated|modified|deleted)|(_at|At|_on|On)$|owner|user_?id", re.I
)


def _server_fields(ctx: Context, a) -> bool:
    for kind in ctx.resource_kinds()[:4]:
        update = next((o for o in kind.items if o.method in ("PATCH", "PUT")), None)
        if update is None or not kind.param:
            continue
        res = ctx.create(kind, a, required=False)
        if res is None or res.id is None or not isinstance(res.json, dict):
            continue
        documented = set((kind.create.body_schema or {}).get("properties") or {})
        documented |= set((update.body_schema or {}).get("properties") or {})
        forged = {}
        for k, v in res.json.items():
            if k in documented or SERVER_KEPT_SKIP.search(k) or (kind.param and k == kind.param):
                continue
            if isinstance(v, bool):
                forged[k] = not v
            elif isinstance(v, int | float):
                forged[k] = 987654
        if not forged:
            continue
        body = ctx.example_body(update)
        body = {**(body if isinstance(body, dict) else {}), **forged}
        path = ctx.item_path(update, res)
        resp = ctx.request(update.method, path, json_body=body, user=a)
        sent = ctx.last()
        if not is_2xx(resp):
            continue
        get = next((o for o in kind.items if o.method == "GET"), None)
        back = json_of(ctx.request("GET", ctx.item_path(get, res), user=a)) if get else json_of(resp)
        taken = [k for k, v in forged.items() if isinstance(back, dict) and back.get(k) == v]
        if taken:
            ctx.add(
                ID,
                CWE,
                f"{update} accepted server-kept field(s) from the client: {', '.join(taken)}",
                "high",
                FIX,
                ctx.evidence(sent),
            )
            return True
    return False


def _owner(ctx: Context, a) -> bool:
    b = ctx.user(1)
    if b is None or b.id is None:
        return False
    for kind in ctx.resource_kinds()[:3]:
        props = kind.create.body_schema.get("properties") or {} if kind.create.body_schema else {}
        keys = [k for k in OWNER_KEYS if k not in props]
        body = ctx.example_body(kind.create)
        if not isinstance(body, dict) or not keys:
            continue
        res = ctx.create(kind, a, body={**body, **{k: b.id for k in keys}}, required=False)
        if res is None:
            continue
        owner = find_key(res.json, tuple(keys))
        if owner is not None and str(owner) == str(b.id) and str(a.id) != str(b.id):
            ctx.add(
                ID,
                CWE,
                f"{kind.create} accepted a client-set owner: the resource was created for another user",
                "high",
                FIX,
                ctx.evidence(),
            )
            return True
    return False
