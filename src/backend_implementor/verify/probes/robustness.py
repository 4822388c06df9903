"""Type-confused bodies (numbers, null, objects, arrays where strings are expected) that should be
refused with a 4xx; run_probes turns a server that dies during this (or any) probe into CWE-703."""

from __future__ import annotations

from .base import LOGOUT_RE, Context

ID = "crash"
CWE = 703
SECONDS = 20
MAX_REQUESTS = 140
CONFUSIONS = (12345, None, {"bimpl": {"$gt": ""}}, ["bimpl"])


def run(ctx: Context) -> None:
    user = ctx.user(0)
    ctx.open_creators(user)
    ops = [
        op
        for op in ctx.ops
        if op.method in ("POST", "PUT", "PATCH")
        and op.body_schema is not None
        and not LOGOUT_RE.search(op.path)
    ]  # a logout would end the session the later operations need
    for op in ops[:6]:
        body = ctx.example_body(op)
        if not isinstance(body, dict):
            continue
        path = op.path
        if op.path_params:
            kind = next((k for k in ctx.resource_kinds() if op in k.items), None)
            res = ctx.create(kind, user if kind.create.secured else None) if kind else None
            if res is None or res.id is None:
                continue
            path = ctx.item_path(op, res)
        who = user if op.secured else None
        # A rate-limited login refusing these is no gap: the limit answers before any handler could crash.
        wait = not ctx.is_auth_path(op.path)
        for field in list(body)[:4]:
            for bad in CONFUSIONS:
                ctx.request(op.method, path, json_body={**body, field: bad}, user=who, retry_429=wait)
        ctx.request(op.method, path, json_body=[body], user=who, retry_429=wait)
        ctx.request(op.method, path, json_body="bimpl", user=who, retry_429=wait)
