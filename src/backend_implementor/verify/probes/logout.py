"""Logout that does not end the session on the server (CWE-613): the credential a client had before
logging out still works after it.

A fresh session of the first probe user's account is logged in for this (never the shared one the other
probes act as) and passes a protected GET. It is then logged out the way a client would: with its session
cookie and CSRF token, or with its bearer token and the refresh token the login gave. The exact cookie
values held before the logout are then sent to the protected GET again, or the old refresh token to the
refresh operation: an answer that still lets them in means the logout only told the browser to forget the
cookie (or the client to drop the token) while the server kept the session. A bearer access token that
still works right after the logout is not reported: a short-lived stateless access token is an accepted
design; the refresh token that would renew it is what a logout must revoke."""

from __future__ import annotations

import re
from typing import Any

from ..auth import CSRF_NAME_RE
from ..openapi_doc import Operation
from .accounts import hidden_fields, is_html, text_excerpt
from .base import Context, Exchange, User, is_2xx, json_of
from .sessions import session_cookies

ID = "logout-server-side"
CWE = 613
SECONDS = 12
MAX_REQUESTS = 14

# Like auth.py's _LOGIN_RE: a path whose last segment is the logout, else an operation whose words say so.
_LOGOUT_PATH_RE = re.compile(r"(^|/)(log[-_]?out|sign[-_]?out)/?$", re.I)
_LOGOUT_WORDS = re.compile(r"\b(log|sign)[\s_-]?(out|off)\b", re.I)
_REFRESH_PATH_RE = re.compile(r"(^|/)refresh([-_]?tokens?)?/?$", re.I)
_REFRESH_KEY_RE = re.compile(r"^refresh([-_]?token)?$", re.I)
_METHOD_ORDER = {"POST": 0, "DELETE": 1, "GET": 2}


def logout_operation(ctx: Context) -> Operation | None:
    """The app's logout: the shortest POST/DELETE/GET path ending in logout/signout (no path parameters),
    else a POST or DELETE whose operationId or summary says "log out" / "sign out"."""
    ops = [o for o in ctx.ops if o.method in _METHOD_ORDER and "{" not in o.path]
    by_path = sorted((o for o in ops if _LOGOUT_PATH_RE.search(o.path)),
                     key=lambda o: (len(o.path), _METHOD_ORDER[o.method]))  # fmt: skip
    if by_path:
        return by_path[0]
    for o in ops:
        words = " ".join(str(o.op.get(k) or "") for k in ("operationId", "summary"))
        words = re.sub(r"([a-z])([A-Z])", r"\1 \2", words)  # logOut, userLogout: words of their own
        if o.method != "GET" and _LOGOUT_WORDS.search(words):
            return o
    return None


def refresh_operation(ctx: Context) -> Operation | None:
    """POST …/refresh (…/refresh-token, …/token/refresh): where a refresh token gets new tokens."""
    hits = [
        o for o in ctx.ops if o.method == "POST" and "{" not in o.path and _REFRESH_PATH_RE.search(o.path)
    ]
    return min(hits, key=lambda o: len(o.path)) if hits else None


def refresh_token_in(data: Any, depth: int = 0) -> tuple[str, str] | None:
    """(key, value) of the refresh token in a login answer: refresh_token, refreshToken, refresh, also in
    an envelope such as {"tokens": {"refresh": ...}}."""
    if not isinstance(data, dict) or depth > 3:
        return None
    for k, v in data.items():
        if _REFRESH_KEY_RE.match(str(k)) and isinstance(v, str) and len(v) >= 8:
            return str(k), v
    for v in data.values():
        found = refresh_token_in(v, depth + 1)
        if found:
            return found
    return None


def _body_key(op: Operation | None, fallback: str) -> str:
    """The name the operation's body gives the refresh token (else the key the login used)."""
    props = ((op.body_schema if op else None) or {}).get("properties") or {}
    return next((k for k in props if re.search(r"refresh", k, re.I)), fallback)


def _passes(ctx: Context, resp) -> bool:
    return resp is not None and resp.status_code < 400 and not ctx.denied(resp)


def _renewed(ctx: Context, resp) -> bool:
    """A refresh answer that hands out tokens."""
    return (
        is_2xx(resp)
        and not ctx.denied(resp)
        and bool(ctx.token_from(resp) or refresh_token_in(json_of(resp)))
    )


def _fresh_session(ctx: Context, owner: User) -> User | None:
    """A new login of `owner`'s account: its own cookies or tokens, CSRF token included."""
    reason = ctx.accounts.reason  # this login's failure is not the shared users' reason
    fresh = ctx.accounts.log_in(owner.ident, owner.password)
    why, ctx.accounts.reason = ctx.accounts.reason, reason
    if fresh is None:
        ctx.blocked(f"logging in a fresh session to log out failed: {why or 'no session'}")
    return fresh


def _refresh_cookies(user: User) -> dict[str, str]:
    return {k: v for k, v in user.cookies.items() if re.search(r"refresh", k, re.I)}


def run(ctx: Context) -> None:
    if ctx.auth is None:
        return
    if ctx.user(0) is None:
        return
    op = logout_operation(ctx)
    if op is None:
        ctx.skip("no logout operation")
        return
    # The account to log in again: the first probe user's, or a registered one when that came as --token.
    owner = next((u for u in ctx.accounts.users if u.password), None)
    if owner is None:
        ctx.blocked("the probe users came with --token/--cookie: no password to log in a fresh session with")
        return
    if not owner.token and owner.cookies:
        _cookie_session(ctx, op, owner)
        return
    if not owner.token:
        ctx.blocked("the login gives neither a token nor a session cookie")
        return
    if refresh_token_in(owner.login_json) is None and not _refresh_cookies(owner):
        ctx.skip(
            "the login gives a bearer token and no refresh token: a stateless access token that outlives "
            "the logout is an accepted design"
        )
        return
    refresh = refresh_operation(ctx)
    if refresh is None:
        ctx.blocked(
            "the login gives a refresh token, but no refresh operation (POST …/refresh) to replay it at"
        )
        return
    _refresh_token(ctx, op, refresh, owner)


def _guard(ctx: Context) -> str | None:
    """A GET that refuses a request without credentials: the login's own check, else (a document that
    declares no security) the first GET without parameters that refuses an anonymous request."""
    guards = ctx.accounts.guards()
    if guards:
        return guards[0]
    ops = [o for o in ctx.get_ops(with_path_params=False) if not any(p.required for p in o.query_params)]
    ops.sort(key=lambda o: not re.search(r"/(me|profile|account|whoami|user)\b", o.path, re.I))
    for o in ops[:4]:
        if ctx.is_auth_path(o.path):
            continue
        resp = ctx.request("GET", o.path, quiet=True)
        if resp is not None and ctx.denied(resp):
            return o.path
    return None


def _page_csrf(ctx: Context, user: User, page, op: Operation) -> None:
    """The CSRF token a browser holds when it presses "log out": the hidden field of the app's own page
    (the protected page the login led to), else of its other HTML pages when the logout form wants one."""
    if _take_csrf(ctx, user, page):
        return
    wants = op.body_encoding == "form" or any(
        CSRF_NAME_RE.search(k) for k in (op.body_schema or {}).get("properties") or {}
    )
    if not wants:
        return
    seen = page.request.url.path if page is not None else ""
    pages = [o for o in ctx.get_ops(with_path_params=False) if o.html and not ctx.is_auth_path(o.path)]
    for o in [o for o in pages if o.path != seen][:2]:
        if _take_csrf(ctx, user, ctx.request("GET", o.path, user=user, quiet=True)):
            return


def _take_csrf(ctx: Context, user: User, resp) -> bool:
    found = (
        {k: v for k, v in hidden_fields(resp.text).items() if CSRF_NAME_RE.search(k) and v}
        if is_html(resp)
        else {}
    )
    if not found:
        return False
    name, value = next(iter(found.items()))
    ctx.remember_secret(value)
    user.form_extra = {name: value}
    header = next((h for h in user.extra_headers if CSRF_NAME_RE.search(h)), "X-CSRF-Token")
    user.extra_headers = {**user.extra_headers, header: value}
    return True


def _logout(ctx: Context, op: Operation, user: User, refresh: tuple[str, str] | None) -> Exchange | None:
    """Log `user` out as a client would; the exchange, or None (blocked) when the logout was refused."""
    body = ctx.example_body(op)
    if refresh is not None:
        key, value = refresh
        body = {**(body if isinstance(body, dict) else {}), _body_key(op, key): value}
    params = ctx.query_values(op, user)
    if op.method == "GET":
        resp = ctx.request("GET", op.path, params=params, user=user)
    elif body is None and user.form_extra and not user.token:
        # An undocumented body: the logout button of the app's pages posts the form's hidden CSRF field.
        resp = ctx.request(op.method, op.path, form={}, params=params, user=user)
    else:
        resp = ctx.request(op.method, op.path, json_body=body, params=params, user=user)
    if resp is None or resp.status_code >= 400:
        status = "no answer" if resp is None else f"HTTP {resp.status_code} {text_excerpt(resp, 120)}".strip()
        ctx.blocked(f"{op} refused to log out a fresh session: {status}")
        return None
    return ctx.last()


def _cookie_session(ctx: Context, op: Operation, owner: User) -> None:
    guard = _guard(ctx)
    if guard is None:
        ctx.blocked("no protected GET refuses a request without a session, to check the logout on")
        return
    fresh = _fresh_session(ctx, owner)
    if fresh is None:
        return
    if not fresh.cookies or fresh.token:
        ctx.blocked("the fresh login gave no session cookie")
        return
    page = ctx.request("GET", guard, user=fresh)
    if not _passes(ctx, page):
        ctx.blocked(f"GET {guard} refused the fresh session before the logout")
        return
    if op.method != "GET":
        _page_csrf(ctx, fresh, page, op)
    old = dict(fresh.cookies)  # exactly what the browser held before logging out
    logout = _logout(ctx, op, fresh, None)
    if logout is None:
        return
    replay = ctx.request("GET", guard, cookies=old)
    replayed = ctx.last()
    try:
        if _passes(ctx, replay):
            _report_cookie(ctx, op, fresh, old, logout, replayed)
    finally:
        _restore_shared_users(ctx, guard)


def _report_cookie(
    ctx: Context, op: Operation, fresh: User, old: dict, logout: Exchange, replayed: Exchange
) -> None:
    names = session_cookies(fresh) or sorted(old)
    quoted = ", ".join(f"'{n}'" for n in names)
    what = (
        f"the session cookie {quoted} still works"
        if len(names) == 1
        else f"the session cookies {quoted} still work"
    )
    ctx.add(
        ID,
        CWE,
        f"Logout does not end the session on the server: {what} after {op}",
        "medium",
        "Destroy the session on the server at logout (req.session.destroy in express-session, delete it "
        "from the session store) so the old id is refused; clearing the cookie in the browser is not enough: "
        "anyone who copied it stays logged in.",
        ctx.evidence(logout, replayed),
    )


def _refresh_token(ctx: Context, op: Operation, refresh: Operation, owner: User) -> None:
    fresh = _fresh_session(ctx, owner)
    if fresh is None:
        return
    found = refresh_token_in(fresh.login_json)
    cookies = _refresh_cookies(fresh)
    if found is None and not cookies:
        ctx.blocked("the fresh login gave no refresh token")
        return
    if found is not None:
        ctx.remember_secret(found[1])
    guard = _guard(ctx)
    if guard is not None and not _passes(ctx, ctx.request("GET", guard, user=fresh)):
        ctx.blocked(f"GET {guard} refused the fresh login's token before the logout")
        return
    logout = _logout(ctx, op, fresh, found)
    if logout is None:
        return
    replay = _send_refresh(ctx, refresh, fresh, found, cookies)
    replayed = ctx.last()
    try:
        if _renewed(ctx, replay):
            minted = refresh_token_in(json_of(replay))  # the new tokens stay out of the evidence
            ctx.remember_secret(minted[1] if minted else "")
            ctx.remember_secret(ctx.token_from(replay) or "")
            replayed = Exchange(replayed.request, ctx.redacted(replayed.response))
            _report_refresh(ctx, op, refresh, found, cookies, (logout, replayed))
        elif replay is None or replay.status_code not in (401, 403):  # 401/403: refused as a credential
            _control(ctx, op, refresh, owner)
    finally:
        if guard is not None:
            _restore_shared_users(ctx, guard)


def _report_refresh(
    ctx: Context,
    op: Operation,
    refresh: Operation,
    found: tuple[str, str] | None,
    cookies: dict[str, str],
    exchanges: tuple[Exchange, Exchange],
) -> None:
    carrier = f"the refresh token ('{found[0]}')" if found else f"the refresh cookie '{sorted(cookies)[0]}'"
    ctx.add(
        ID,
        CWE,
        f"Logout does not end the session on the server: {carrier} still gets new tokens from {refresh} "
        f"after {op}",
        "medium",
        "Revoke the refresh token at logout (mark it and its whole rotation family revoked in the store, "
        "and refuse revoked ones at refresh); dropping the tokens in the client is not enough: a copied "
        "refresh token keeps minting access tokens.",
        ctx.evidence(*exchanges),
    )


def _control(ctx: Context, op: Operation, refresh: Operation, owner: User) -> None:
    """The old refresh token was refused, but not as a credential (400, 404, 422): make sure the refresh
    operation takes a fresh one sent the same way, or the refusal says nothing about the logout."""
    control = _fresh_session(ctx, owner)
    if control is None:
        return
    found = refresh_token_in(control.login_json)
    if found is not None:
        ctx.remember_secret(found[1])
    check = _send_refresh(ctx, refresh, control, found, _refresh_cookies(control))
    if not _renewed(ctx, check):
        status = "no answer" if check is None else f"HTTP {check.status_code}"
        ctx.blocked(
            f"{refresh} refused a fresh refresh token too ({status}): could not tell whether {op} revoked "
            "the old one"
        )


def _send_refresh(
    ctx: Context, refresh: Operation, user: User, found: tuple[str, str] | None, cookies: dict[str, str]
):
    """Replay a refresh as its client would: the refresh token in the body (or its cookie), the access
    token it held alongside."""
    body = ctx.example_body(refresh)
    if found is not None:
        body = {**(body if isinstance(body, dict) else {}), _body_key(refresh, found[0]): found[1]}
    return ctx.request("POST", refresh.path, json_body=body, headers=user.headers, cookies=cookies)


def _restore_shared_users(ctx: Context, guard: str) -> None:
    """A logout may end every session of the account (a per-user session version): the shared probe users
    are logged in again, in place, if theirs no longer pass."""
    for user in list(ctx.accounts.users[:2]):
        if not user.password:
            continue
        resp = ctx.request("GET", guard, user=user, quiet=True)
        if _passes(ctx, resp):
            continue
        reason = ctx.accounts.reason
        again = ctx.accounts.log_in(user.ident, user.password)
        ctx.accounts.reason = reason
        if again is None:
            continue
        for name in ("token", "cookies", "header_name", "prefix", "extra_headers", "form_extra",
                     "login_json", "set_cookies"):  # fmt: skip
            setattr(user, name, getattr(again, name))
        ctx.changed(
            "logging out one session ended the account's other sessions too: the probe user logged in again"
        )
