"""Missing security headers (CWE-693) and CORS that lets any origin read with credentials (CWE-942)."""

from __future__ import annotations

from .base import Context, Exchange

ID = "security-headers"
CWE = 693
SECONDS = 5
MAX_REQUESTS = 6

EVIL_ORIGIN = "http://bimpl-evil.example"


def _probe_path(ctx: Context) -> str:
    for op in ctx.get_ops(with_path_params=False):
        if not op.secured and not op.query_params:
            return op.path
    return "/health" if any(op.path == "/health" for op in ctx.ops) or not ctx.ops else "/"


def run(ctx: Context) -> None:
    path = _probe_path(ctx)
    resp = ctx.request("GET", path)
    if resp is None:
        return
    h = resp.headers
    problems = []
    if h.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("X-Content-Type-Options: nosniff missing")
    csp = h.get("content-security-policy", "").lower()
    if not h.get("x-frame-options") and "frame-ancestors" not in csp:
        problems.append("no X-Frame-Options or CSP frame-ancestors (clickjacking)")
    if h.get("x-powered-by"):
        problems.append(f"X-Powered-By: {h['x-powered-by']} discloses the framework")
    if problems:
        shown = "\n".join(
            f"{k}: {v}" for k, v in h.items() if k.lower() not in ("set-cookie", "etag", "date")
        )
        ctx.add(
            ID,
            CWE,
            "Missing security headers: " + "; ".join(problems),
            "low",
            "Set nosniff, X-Frame-Options/CSP frame-ancestors (e.g. helmet()) and app.disable('x-powered-by').",
            ctx.evidence(Exchange(ctx.last().request, f"HTTP {resp.status_code}\n{shown}")),
        )
    _cors(ctx, path)


def _cors(ctx: Context, path: str) -> None:
    for method, headers in (
        ("GET", {"Origin": EVIL_ORIGIN}),
        (
            "OPTIONS",
            {
                "Origin": EVIL_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        ),
    ):
        resp = ctx.request(method, path, headers=headers)
        if resp is None:
            continue
        allow = resp.headers.get("access-control-allow-origin", "")
        creds = resp.headers.get("access-control-allow-credentials", "").lower() == "true"
        if creds and allow in (EVIL_ORIGIN, "*", "null"):
            shown = "\n".join(
                f"{k}: {v}" for k, v in resp.headers.items() if k.lower().startswith("access-control")
            )
            ctx.add(
                "cors",
                942,
                f"CORS allows any origin ({allow}) with credentials",
                "high",
                "Allow credentials only for an explicit list of trusted origins.",
                ctx.evidence(Exchange(ctx.last().request, f"HTTP {resp.status_code}\n{shown}")),
            )
            return
