"""Session cookies a script can read (CWE-1004): the login's Set-Cookie without HttpOnly.

Only cookies that carry the session count (named like one, or the only cookies the login set; never a CSRF
cookie, which a page's script must read). Secure is not asked for: verify talks to the server over plain
HTTP on this machine, where a Secure cookie would not be sent back."""

from __future__ import annotations

from .base import Context, Exchange
from .sessions import attributes, session_cookies

ID = "cookie-flags"
CWE = 1004
SECONDS = 5
MAX_REQUESTS = 2


def run(ctx: Context) -> None:
    user = ctx.user(0)
    if user is None:
        return
    names = session_cookies(user)
    if not names:
        ctx.skip("the login sets no cookie")
        return
    attrs = attributes(user.set_cookies)
    readable = [n for n in names if not attrs[n].get("httponly")]
    flags = ", ".join(f"{n}: {'; '.join(_flags(attrs[n])) or 'no flags'}" for n in names)
    ctx.checked = f"the login's Set-Cookie ({flags})"
    if readable:
        header = next(h for h in user.set_cookies if h.startswith(readable[0] + "="))
        shown = readable[0] + "=<session>; " + header.partition(";")[2].strip()
        ctx.add(
            ID,
            CWE,
            f"Session cookie '{readable[0]}' is readable by scripts (no HttpOnly)",
            "medium",
            "Set the session cookie with HttpOnly (and SameSite=Lax, Secure behind HTTPS): an XSS must not be "
            "able to steal the session.",
            ctx.evidence(
                Exchange(f"POST {ctx.auth.login_path if ctx.auth else '(login)'}", f"Set-Cookie: {shown}")
            ),
        )


def _flags(attrs: dict[str, str | bool]) -> list[str]:
    shown = {"httponly": "HttpOnly", "secure": "Secure", "samesite": "SameSite"}
    return [
        f"{label}={attrs[k]}" if isinstance(attrs[k], str) else label
        for k, label in shown.items()
        if k in attrs
    ]
