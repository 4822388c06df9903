"""Oversized JSON body accepted (CWE-770): a 5 MB body answered with 2xx."""

from __future__ import annotations

from .base import Context, is_2xx

ID = "body-size"
CWE = 770
SECONDS = 20
MAX_REQUESTS = 4
SIZE = 5 * 1024 * 1024


def run(ctx: Context) -> None:
    user = ctx.user(0)
    ops = [op for op in ctx.ops if op.method == "POST" and op.body_schema is not None and not op.path_params]
    ops.sort(key=lambda op: ctx.is_auth_path(op.path))  # prefer ordinary create operations
    for op in ops[:2]:
        body = ctx.example_body(op)
        if not isinstance(body, dict):
            continue
        resp = ctx.request(
            op.method,
            op.path,
            json_body={**body, "bimpl_padding": "A" * SIZE},
            user=user if op.secured else None,
            timeout=15,
            retry_429=not ctx.is_auth_path(op.path),  # a rate limit answering first is no gap
        )
        if is_2xx(resp):
            ctx.add(
                ID,
                CWE,
                f"{op} accepted a {SIZE // (1024 * 1024)} MB JSON body (HTTP {resp.status_code})",
                "medium",
                "Cap request bodies (express.json({ limit: '100kb' })) and answer 413 beyond.",
                ctx.evidence(),
            )
            return
