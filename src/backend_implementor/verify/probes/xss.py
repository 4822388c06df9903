"""Reflected and stored XSS in HTML responses (CWE-79).

A unique marker tag is sent in query parameters (reflected) and stored through JSON create operations
(stored); a finding needs the marker back unescaped in a text/html response."""

from __future__ import annotations

from ..openapi_doc import fill_path
from .base import Context, is_2xx, rand

ID = "xss"
CWE = 79
SECONDS = 12
# Up to four string query parameters of each list, then four creates with up to eight reads each.
MAX_REQUESTS = 120
FIX = "Escape user data when rendering HTML (or use a template engine that does) and serve data as JSON."


def _payload() -> str:
    return f"<img src=x onerror=alert('bimpl{rand(6)}')>"


def _html(resp) -> bool:
    return resp is not None and "text/html" in resp.headers.get("content-type", "").lower()


def run(ctx: Context) -> None:
    user = ctx.user(0)
    # Reflected: every GET with query parameters whose response is (or is documented as) HTML.
    for op in ctx.get_ops():
        if op.path_params or not op.query_params:
            continue
        for p in op.query_params[:4]:
            if p.schema.get("enum") or p.schema.get("type") not in (None, "string"):
                continue
            payload = _payload()
            params = {**ctx.query_values(op), p.name: payload}
            resp = ctx.request("GET", op.path, params=params, user=user if op.secured else None)
            if _html(resp) and payload in resp.text:
                ctx.add(
                    "xss-reflected",
                    79,
                    f"Reflected XSS: query parameter '{p.name}' of {op} is echoed unescaped into HTML",
                    "high",
                    FIX,
                    ctx.evidence(),
                )
                break
    # Stored: create with the marker in every free-text field, then read every parameterless HTML GET and
    # the created item.
    for kind in ctx.resource_kinds()[:4]:
        payload = _payload()
        res = ctx.create(kind, user if kind.create.secured else None, marker=payload, required=False)
        if res is None:
            continue
        pages = [op for op in ctx.get_ops(with_path_params=False)]
        pages += [op for op in kind.items if op.method == "GET"]
        for op in pages[:8]:
            path = ctx.item_path(op, res) if op.path_params else fill_path(op.path, {})
            resp = ctx.request("GET", path, params=ctx.query_values(op), user=user if op.secured else None)
            if is_2xx(resp) and _html(resp) and payload in resp.text:
                ctx.add(
                    "xss-stored",
                    79,
                    f"Stored XSS: data posted to {kind.create} is rendered unescaped by {op}",
                    "high",
                    FIX,
                    ctx.evidence(),
                )
                return
