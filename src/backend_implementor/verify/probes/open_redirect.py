"""Open redirect (CWE-601): a parameter that names where to go next sends the browser off-site.

Every GET whose query names a destination (`next`, `returnurl`, `redirect`, `url`, ...) and every form or
JSON POST with such a field is sent an absolute URL of a host that cannot exist, and the forms browsers
treat as absolute (`//host`, `/\\host`); a redirect whose Location resolves to that host is the finding.
Logins are also tried with the field, since that is where `?next=` usually ends up."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from ..openapi_doc import Operation, fill_path
from .base import Context, User

ID = "open-redirect"
CWE = 601
SECONDS = 10
MAX_REQUESTS = 40

DEST = re.compile(
    r"^(next|return|returnurl|return_url|returnto|return_to|redirect|redirect_url|redirect_uri|redirectto|"
    r"redirect_to|continue|dest|destination|goto|go|target|url|to|forward|back|backurl|back_url|r|u|out|"
    r"link|callback_url|success_url|cancel_url)$",
    re.I,
)
HOST = "bimpl-redirect.invalid"
PAYLOADS = (f"https://{HOST}/landing", f"//{HOST}/landing", f"/\\{HOST}/landing")


def _off_site(ctx: Context, resp) -> bool:
    if resp is None or not 300 <= resp.status_code < 400:
        return False
    location = resp.headers.get("location", "").replace("\\", "/")
    return urlsplit(urljoin(ctx.base_url + "/", location)).hostname == HOST


def run(ctx: Context) -> None:
    slots = []
    for op in ctx.ops:
        names = [p.name for p in op.query_params if DEST.match(p.name)]
        if op.method in ("POST", "PUT") and not op.path_params:
            props = (op.body_schema or {}).get("properties") or {}
            names += [n for n in props if DEST.match(n)]
        slots += [(op, n) for n in names]
    if not slots:
        ctx.skip("no parameter names a destination")
        return
    user = ctx.user(0)
    for op, name in slots[:10]:
        for payload in PAYLOADS:
            resp = _send(ctx, op, name, payload, user)
            if _off_site(ctx, resp):
                ctx.add(
                    ID,
                    CWE,
                    f"Open redirect: '{name}' of {op} sends the browser to any site",
                    "medium",
                    "Redirect only to relative paths of this site (one leading '/', no '//' or '/\\\\') or to an "
                    "allow-list of hosts.",
                    ctx.evidence(),
                )
                return


def _send(ctx: Context, op: Operation, name: str, payload: str, user: User | None):
    path = fill_path(op.path, ctx.path_values(op))
    who = user if op.secured else None
    if any(p.name == name for p in op.query_params):
        params = {**ctx.query_values(op, who), name: payload}
        if op.method == "GET":
            return ctx.request("GET", path, params=params, user=who)
        return ctx.request(op.method, path, params=params, json_body=ctx.example_body(op), user=who)
    if ctx.auth is not None and op.path == ctx.auth.login_path and user is not None:
        resp, _ = ctx.accounts.login_request(user.ident, user.password, extra={name: payload})
        return resp
    body = ctx.example_body(op)
    body = {**body, name: payload} if isinstance(body, dict) else {name: payload}
    return ctx.request(op.method, path, json_body=body, user=who)
