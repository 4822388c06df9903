"""Bounds and business rules (CWE-20): out-of-range numbers accepted on writes.

For each POST whose valid body the API accepts, one numeric field at a time is set out of range and sent
again; a 2xx is the finding. The range comes from the document (`minimum`, `maximum`, exclusive forms),
and, for fields the document leaves open, from names whose value can only be non-negative (quantity,
price, stock, amount, ...). Names of signed quantities (discount, offset, delta, balance change) are never
guessed at, so fields that may be negative by design stay clean."""

from __future__ import annotations

import re
from typing import Any

from ..openapi_doc import fill_path
from .base import Context, User, is_2xx

ID = "bounds"
CWE = 20
SECONDS = 12
MAX_REQUESTS = 40

NON_NEGATIVE = re.compile(
    r"^(quantity|qty|count_ordered|price|unit_?price|cost|stock|in_?stock|amount|total|fee|seats|copies|"
    r"tickets|items|weight|age|duration|pages)$",
    re.I,
)


def violations(name: str, schema: dict) -> list[tuple[Any, str]]:
    """Out-of-range values for one numeric field, each with the rule it breaks."""
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), None)
    if typ not in ("integer", "number") or schema.get("enum"):
        return []
    out: list[tuple[Any, str]] = []
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    if isinstance(schema.get("exclusiveMinimum"), bool):  # OpenAPI 3.0 / Swagger 2.0 spelling
        lo = schema.get("minimum")
    if isinstance(lo, int | float):
        bad = -1 if lo >= 0 else lo - 1
        out.append((bad, f"below the documented minimum {lo}"))
    elif NON_NEGATIVE.match(name):
        out.append((-1, "negative, where the name allows no negative value"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(schema.get("exclusiveMaximum"), bool):
        hi = schema.get("maximum")
    if isinstance(hi, int | float):
        out.append((hi + 1, f"above the documented maximum {hi}"))
    return out


def run(ctx: Context) -> None:
    a, b = ctx.user(0), ctx.user(1)
    tested, opened = 0, False
    for op in ctx.ops:
        if op.method != "POST" or op.body_schema is None or ctx.is_auth_path(op.path):
            continue
        props = ctx.props_of(op)
        fields = {k: v for k, s in props.items() if (v := violations(k, s))}
        if not fields:
            continue
        if not opened:
            ctx.open_creators(a)  # POST /create_cart -> cart_id, for bodies that must name one
            opened = True
        sent = _baseline(ctx, op, a, b)
        if sent is None:
            continue
        path, body, user = sent
        tested += 1
        for name, cases in fields.items():
            if name not in body:
                continue
            for value, rule in cases:
                resp = ctx.request("POST", path, json_body={**body, name: value}, user=user)
                if is_2xx(resp):
                    ctx.add(
                        ID,
                        CWE,
                        f"Out-of-range value accepted: {name}={value} ({rule}) by {op}",
                        "medium",
                        f"Validate '{name}' on the server (a schema with its minimum and maximum, e.g. zod "
                        ".int().min(1)) and refuse the request with 400.",
                        ctx.evidence(),
                    )
                    break
    if tested == 0 and any(
        violations(k, s) for op in ctx.ops if op.method == "POST" for k, s in ctx.props_of(op).items()
    ):
        ctx.blocked("no write with a bounded number accepted a valid body to compare with")


def _baseline(ctx: Context, op, a: User | None, b: User | None) -> tuple[str, dict, User | None] | None:
    """A valid request of `op` the API accepts: (path, body, user), or None."""
    user = a if op.secured or a is not None else None
    path = op.path
    if op.path_params:
        values = ctx.real_path_values(op, user)
        if len(values) < len(op.path_params):
            return None
        path = fill_path(op.path, values)
    kind = next((k for k in ctx.resource_kinds() if k.create.path == op.path), None)
    body = ctx.example_body(op)
    if not isinstance(body, dict):
        return None
    if user is not None:
        ctx.fill_parties(body, op, user, b)
    if kind is not None:
        res = ctx.create(kind, user, body=body, required=False)
        return (path, res.body, user) if res is not None else None
    resp = ctx.request("POST", path, json_body=body, user=user)
    return (path, body, user) if is_2xx(resp) else None
