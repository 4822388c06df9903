"""The authorization matrix: every read operation called as anonymous, as the owner (user A), as another
user (B) and as the admin when verify has one (--admin), with what each was granted.

Reads only (GET), so it can be complete without changing anything. A cell is flagged when it grants what
the document and the data say it should not: anonymous on an operation that requires authentication
(CWE-306), an ordinary user on an admin operation (CWE-285), B on a resource A created and B's own listing
does not show (CWE-639). The table goes into the report (`authorization`); a flagged cell another probe
already reported for the same operation is not reported twice."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..openapi_doc import Operation, fill_path
from . import auth_missing
from .base import Context, Resource, User, is_2xx, rand
from .function_authz import admin_only
from .idor import listed_for

ID = "authz-matrix"
CWE = 285
SECONDS = 15
MAX_REQUESTS = 120
MAX_OPS = 20
DOCS = re.compile(r"openapi|swagger|api-docs|/docs\b|/health|/ready|/live|/metrics", re.I)


@dataclass
class Row:
    operation: str
    rule: str  # who should be granted: public, authenticated, owner, admin
    cells: dict[str, int | None] = field(default_factory=dict)  # actor -> HTTP status (None: no answer)
    flagged: list[str] = field(default_factory=list)  # actors granted what they should not be

    def to_dict(self) -> dict:
        return {"operation": self.operation, "rule": self.rule, "cells": self.cells, "flagged": self.flagged}


def run(ctx: Context) -> None:
    a, b = ctx.user(0), ctx.user(1)
    if a is None or b is None:
        return
    admin = ctx.admin()
    actors: list[tuple[str, User | None]] = [("anonymous", None), ("owner", a), ("other user", b)]
    if admin is not None:
        actors.append(("admin", admin))
    owned = _owned_resources(ctx, a)
    for op in [o for o in ctx.get_ops() if not DOCS.search(o.path) and not ctx.is_auth_path(o.path)][
        :MAX_OPS
    ]:
        target = _target(ctx, op, a, owned)
        if target is None:
            continue
        path, res, marker = target
        rule = "admin" if admin_only(op) else "owner" if res is not None and op.secured else (
            "authenticated" if op.secured else "public")  # fmt: skip
        row = Row(str(op), rule)
        for name, user in actors:
            resp = ctx.request("GET", path, params=ctx.query_values(op, user or a), user=user)
            row.cells[name] = None if resp is None else resp.status_code
            if not (is_2xx(resp) and not ctx.denied(resp) and _should_not(rule, name)):
                continue
            if name == "other user" and (marker not in resp.text or listed_for(ctx, res.kind, b, marker)):
                continue  # B sees it in their own listing too: shared by design
            row.flagged.append(name)
            _report(ctx, op, name, rule)
        ctx.matrix.append(row.to_dict())


def _owned_resources(ctx: Context, a: User) -> dict[str, tuple[Resource, str]]:
    """One resource of each collection, created by A with a marker: collection path -> (resource, marker)."""
    out = {}
    for kind in ctx.resource_kinds()[:4]:
        if not kind.param or not kind.create.secured:
            continue
        marker = f"bimplmx{rand(6)}"
        res = ctx.create(kind, a, marker=marker, required=False)
        if res is not None and res.id is not None:
            out[kind.create.path] = (res, marker)
    return out


def _target(ctx: Context, op: Operation, a: User, owned) -> tuple[str, Resource | None, str] | None:
    """Where to send `op`: A's own resource for an item of a collection A created in, a record that exists
    for other path parameters; None when no such path can be built."""
    if not op.path_params:
        return fill_path(op.path, {}), None, "\0"
    for res, marker in owned.values():
        if op in res.kind.items:
            return ctx.item_path(op, res), res, marker
    values = ctx.real_path_values(op, a)
    if len(values) < len(op.path_params):
        return None
    return fill_path(op.path, values), None, "\0"


def _should_not(rule: str, actor: str) -> bool:
    if actor == "admin":
        return False
    if actor == "anonymous":
        return rule != "public"
    return rule == "admin" or (rule == "owner" and actor == "other user")


CWE_OF = {"anonymous": 306, "other user": 639, "owner": 285}


def _report(ctx: Context, op: Operation, actor: str, rule: str) -> None:
    # Without credentials it is missing authentication whatever the rule (the auth-missing probe's finding).
    cwe = 285 if rule == "admin" and actor != "anonymous" else CWE_OF[actor]
    # One flaw, one report: an operation open to anyone is the missing-authentication finding only.
    if ctx.reported(op, cwe, auth_missing.CWE):
        return
    who = {"anonymous": "A request without credentials", "owner": "An ordinary user",
           "other user": "Another user"}[actor]  # fmt: skip
    what = {"admin": "an admin operation", "owner": "the owner's resource",
            "authenticated": "an operation that requires authentication"}[rule]  # fmt: skip
    ctx.add(
        ID,
        cwe,
        f"{who} is granted {what}: {op}",
        "high",
        "Enforce the operation's rule on the server for every caller: authentication, then role, then "
        "ownership (scope lookups by the caller), answering 401/403/404 otherwise.",
        ctx.evidence(),
    )
