"""Stack traces, file paths or SQL in error responses (CWE-209).

Actively sends malformed JSON and malformed URLs; every response seen by any probe is also checked
(see leak_in)."""

from __future__ import annotations

import re

from .base import Context
from .sqli import SQL_ERROR_RE

ID = "error-leak"
CWE = 209
SECONDS = 8
MAX_REQUESTS = 12

STACK_RE = re.compile(
    r"\bat (?:[\w$.<>\[\] ]+ )?\(?(?:/|[A-Za-z]:\\|node:|file:)[^\s)]*:\d+:\d+\)?|"
    r"Traceback \(most recent call last\)|/node_modules/|\"stack\"\s*:\s*\"",
)
FIX = "Answer errors with a generic message; log details server-side only (an Express error handler)."


def leak_in(text: str) -> str | None:
    m = STACK_RE.search(text) or SQL_ERROR_RE.search(text)
    return m.group(0) if m else None


def report(ctx: Context, what: str, exchange=None) -> None:
    ctx.add(
        ID,
        CWE,
        f"Error response leaks internals ({what})",
        "medium",
        FIX,
        ctx.evidence(exchange) if exchange else ctx.evidence(),
    )


def run(ctx: Context) -> None:
    targets = [op.path for op in ctx.ops if op.method == "POST" and not op.path_params][:4]
    if ctx.auth and ctx.auth.login_path not in targets:
        targets.append(ctx.auth.login_path)
    for path in targets:
        resp = ctx.request(
            "POST",
            path,
            content='{"bimpl": ',
            headers={"Content-Type": "application/json"},
            retry_429=not ctx.is_auth_path(path),  # a rate-limited login answers before any parser
        )
        if resp is not None and (hit := leak_in(resp.text)):
            return report(ctx, f"stack trace or SQL: {hit[:60]!r}")
    for path in ("/bimpl-%E0%A4%A", "/%c0"):
        resp = ctx.request("GET", path)
        if resp is not None and (hit := leak_in(resp.text)):
            return report(ctx, f"stack trace or SQL: {hit[:60]!r}")
    return None
