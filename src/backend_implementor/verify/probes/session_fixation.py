"""Session fixation (CWE-384): the session id a visitor had before logging in is still valid after it.

A session cookie handed out before the login (by the login page, or the home page) is sent with a real
login; when the login answer does not replace it and that old cookie alone now passes a protected
operation, whoever planted the id in a victim's browser shares their session."""

from __future__ import annotations

import re

from .base import Context

ID = "session-fixation"
CWE = 384
SECONDS = 8
MAX_REQUESTS = 10


def run(ctx: Context) -> None:
    user = ctx.user(0)
    if user is None or ctx.auth is None:
        return
    if user.token or not user.cookies:
        ctx.skip("the login gives a token, not a session cookie")
        return
    pre: dict[str, str] = {}
    for path in dict.fromkeys((ctx.auth.login_path, "/")):
        page = ctx.request("GET", path, quiet=True)
        pre = {
            k: v
            for k, v in (page.cookies.items() if page is not None else ())
            if not re.search(r"csrf|xsrf", k, re.I)
        }
        if pre:
            break
    if not pre:
        ctx.skip("no cookie is handed out before the login")
        return
    resp, _ = ctx.accounts.login_request(user.ident, user.password, cookies=pre)
    if not ctx.logged_in(resp):
        ctx.blocked("logging in again with the pre-login cookie failed")
        return
    assert resp is not None
    kept = {k: v for k, v in pre.items() if resp.cookies.get(k, v) == v}
    if not kept:
        return  # the login replaced the session id
    guards = ctx.accounts.guards()
    if not guards:
        ctx.blocked(
            "the login kept the pre-login cookie, but no protected GET refuses a request without a session, to try it on"
        )
        return
    check = ctx.request("GET", guards[0], cookies=kept)
    if check is not None and check.status_code < 400 and not ctx.denied(check):
        ctx.add(
            ID,
            CWE,
            f"Session fixation: the session id given before the login ({', '.join(sorted(kept))}) is "
            "logged in after it",
            "high",
            "Issue a new session id at login (req.session.regenerate in express-session) and drop the old one.",
            ctx.evidence(),
        )
