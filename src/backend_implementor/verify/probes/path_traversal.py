"""Path traversal on routes that take file names (CWE-22): ../ sequences reach /etc/passwd."""

from __future__ import annotations

import re

from ..openapi_doc import fill_path
from .base import Context, is_2xx

ID = "path-traversal"
CWE = 22
SECONDS = 10
MAX_REQUESTS = 40

FILE_PARAM = re.compile(
    r"file|name|path|doc|template|page|image|img|pic|avatar|photo|icon|logo|download|attachment|asset|key|dir",
    re.I,
)
FILE_ROUTE = re.compile(r"file|download|upload|static|asset|image|doc|attachment|media|template", re.I)
PASSWD = re.compile(r"root:[^:\n]*:0:0:")
PAYLOADS = (
    "../" * 8 + "etc/passwd",
    "..%2f" * 8 + "etc%2fpasswd",
    "/etc/passwd",
    "....//" * 8 + "etc/passwd",
)


def run(ctx: Context) -> None:
    user = ctx.user(0)
    for op in ctx.get_ops():
        route_hint = bool(FILE_ROUTE.search(op.path))
        for p in [*op.path_params, *op.query_params]:
            if not (FILE_PARAM.search(p.name) or route_hint) or p.schema.get("type") not in (None, "string"):
                continue
            for payload in PAYLOADS:
                if p.where == "path":
                    # fill_path percent-encodes "/" so the payload stays one segment; the pre-encoded form
                    # is substituted raw so "%2f" reaches the server as sent.
                    path = fill_path(op.path, ctx.path_values(op, **{p.name: "BIMPLSLOT"})).replace(
                        "BIMPLSLOT", payload.replace("/", "%2F")
                    )
                    resp = ctx.request(
                        "GET", path, params=ctx.query_values(op), user=user if op.secured else None
                    )
                else:
                    params = {**ctx.query_values(op), p.name: payload}
                    resp = ctx.request("GET", op.path, params=params, user=user if op.secured else None)
                if is_2xx(resp) and PASSWD.search(resp.text):
                    ctx.add(
                        ID,
                        CWE,
                        f"Path traversal: parameter '{p.name}' of {op} reads /etc/passwd",
                        "critical",
                        "Resolve the path and reject it unless it stays inside the allowed directory (or use basename).",
                        ctx.evidence(),
                    )
                    return
