"""Cross-site request forgery (CWE-352): a cookie-authenticated write accepted from another site.

With a cookie session, each unsafe operation the session may call (a write verify can aim at its own
user or at a record it creates) is sent twice: as the app's own pages would (with its CSRF token, if it
has one), and as a forged cross-site form would (the cookie only, no CSRF header or field, an `Origin`
and `Referer` of another site, urlencoded as an HTML form sends it). When the first is accepted and the forged one too, and the session cookie
does not keep browsers from sending it cross-site (SameSite=Lax or Strict), the write is forgeable."""

from __future__ import annotations

from .base import Context
from .sessions import same_site, session_cookies, without_csrf

ID = "csrf"
CWE = 352
SECONDS = 10
MAX_REQUESTS = 16
FOREIGN = "https://bimpl-csrf.invalid"


def _accepted(ctx: Context, resp) -> bool:
    return resp is not None and resp.status_code < 400 and not ctx.denied(resp)


def run(ctx: Context) -> None:
    user = ctx.user(0)
    if user is None:
        return
    if user.token or not user.cookies:
        ctx.skip("the login gives a token sent in a header: a forged cross-site request carries none")
        return
    names = session_cookies(user)
    if names and all(same_site(user, n) in ("lax", "strict") for n in names):
        ctx.skip(f"the session cookie is SameSite={same_site(user, names[0]).capitalize()}")
        return
    forged_user = without_csrf(user)
    tried = 0
    for op in ctx.ops:
        if op.method != "POST" or op.path_params or ctx.is_auth_path(op.path):  # what a form can send
            continue
        if op.body_schema is None:
            continue
        body = ctx.example_body(op)
        genuine = ctx.request(op.method, op.path, json_body=body, user=user)
        if not _accepted(ctx, genuine):
            continue
        tried += 1
        # A cross-site page can only send what a form sends: urlencoded fields (JSON needs a preflight).
        forged = ctx.request(op.method, op.path, form=body if isinstance(body, dict) else {}, user=forged_user,
                             headers={"Origin": FOREIGN, "Referer": FOREIGN + "/page"})  # fmt: skip
        if _accepted(ctx, forged):
            ctx.add(
                ID,
                CWE,
                f"Cross-site request forgery: {op} accepts a cookie-authenticated request from another site "
                "(no CSRF token, foreign Origin)",
                "high",
                "Require a CSRF token on cookie-authenticated writes (csrf-csrf, or a synchronizer token) or "
                "check Origin against this site; set the session cookie SameSite=Lax.",
                ctx.evidence(),
            )
            return
        if tried >= 4:
            return
    if tried == 0:
        ctx.skip("no write the session could make was accepted to compare with")
