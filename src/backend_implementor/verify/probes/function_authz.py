"""Function-level authorization (CWE-285): an ordinary user reaches operations meant for administrators.

An operation is an admin operation when its path has an `admin` segment, or its tags, summary or
description say it is for administrators (`admin only`, `requires the admin role`), or an `x-roles`-style
extension names only admin roles. Each is called as an ordinary registered user: reads as they are,
writes aimed only at accounts verify registered itself (a third probe user to delete or change, the
caller itself to promote). An answer that is neither a refusal nor an error is the finding."""

from __future__ import annotations

import re

from ..openapi_doc import Operation, fill_path
from . import auth_missing
from .base import Context, User, is_2xx

ID = "function-authz"
CWE = 285
SECONDS = 12
MAX_REQUESTS = 30

ADMIN_SEGMENT = re.compile(r"/(admin|administrator|admins|superuser|staff|backoffice|internal)(/|$)", re.I)
# Wording that reserves the operation for admins; "all tickets for administrators" (a wider view for them,
# not a gate) does not count.
ADMIN_TEXT = re.compile(
    r"\(?\badmin(istrator)?s?[\s-]*only\b|\bonly\s+(for\s+|by\s+)?(an?\s+)?admin(istrator)?s?\b"
    r"|\brequires?\s+(an?\s+|the\s+)?admin(istrator)?\b|\brestricted\s+to\s+admin(istrator)?s?\b"
    r"|\badmin(istrator)?\s+(role|rights|privileges?|permissions?)\s+(is\s+|are\s+)?required\b"
    r"|\bsuperusers?\s+only\b|\bstaff\s+only\b",
    re.I,
)
ROLE_KEYS = ("x-roles", "x-required-roles", "x-role", "x-permissions", "x-scopes")
SELF = re.compile(r"promote|role|grant|elevate|activate|verify|approve|unlock", re.I)


def admin_only(op: Operation) -> bool:
    if ADMIN_SEGMENT.search(op.path):
        return True
    raw = op.op
    text = " ".join(str(raw.get(k) or "") for k in ("summary", "description", "operationId"))
    text += " " + " ".join(str(t) for t in raw.get("tags") or [])
    if ADMIN_TEXT.search(text) or any(
        str(t).lower() in ("admin", "administration") for t in raw.get("tags") or []
    ):
        return True
    for key in ROLE_KEYS:
        roles = raw.get(key)
        if isinstance(roles, list) and roles and all(re.search(r"admin", str(r), re.I) for r in roles):
            return True
    return False


def run(ctx: Context) -> None:
    # An admin operation open to anyone is already the missing-authentication finding: one flaw, one report.
    ops = [
        op
        for op in ctx.ops
        if admin_only(op) and not ctx.is_auth_path(op.path) and not ctx.reported(op, auth_missing.CWE)
    ]
    if not ops:
        ctx.skip("no operation is documented as an admin operation")
        return
    user = ctx.user(0)
    if user is None:
        return
    ops.sort(key=lambda op: op.method != "GET")  # reads first: a write may end the session
    for op in ops[:8]:
        path = _path(ctx, op, user)
        if path is None:
            continue
        if op.method == "GET":
            resp = ctx.request("GET", path, params=ctx.query_values(op, user), user=user)
        else:
            body = ctx.example_body(op) if op.body_schema else None
            resp = ctx.request(op.method, path, json_body=body, user=user)
        if is_2xx(resp) and not ctx.denied(resp):
            ctx.add(
                ID,
                CWE,
                f"An ordinary user may call the admin operation {op}",
                "high",
                "Check the caller's role on the server for every admin route (a role middleware on the admin "
                "router), not only that they are logged in; answer 403 otherwise.",
                ctx.evidence(),
            )
            if op.method != "GET":
                ctx.changed(f"called the admin operation {op} as an ordinary user")
            return


def _path(ctx: Context, op: Operation, user: User) -> str | None:
    """Where to send `op`: path parameters naming a user get an account verify owns (the caller for a
    promotion, a third probe user otherwise); others get a record that exists."""
    if not op.path_params:
        return fill_path(op.path, {})
    values = {}
    for p in op.path_params:
        before = op.path.split("{" + p.name + "}", 1)[0]
        if re.search(r"user|account|member|customer|people|person", before + p.name, re.I):
            target = user if (op.method == "GET" or SELF.search(op.path)) else ctx.accounts.user(2)
            if target is None or target.id is None:
                return None
            values[p.name] = target.id
    rest = [p for p in op.path_params if p.name not in values]
    if rest:
        real = ctx.real_path_values(op, user)
        if any(p.name not in real for p in rest):
            return None
        values = {**real, **values}
    return fill_path(op.path, values)
