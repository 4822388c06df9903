"""An OpenID Connect / OAuth 2 login whose callback accepts a wrong `state` (CWE-352).

The `state` parameter is the code flow's CSRF protection: the login stores it with the browser (a cookie,
or the session that cookie names) and the callback must refuse any other. A callback that ignores it, or
accepts any state it once issued whoever presents it, lets an attacker finish their own login in a
victim's browser (login CSRF): the victim then works in the attacker's account.

The login operations are GETs like `/auth/oidc/{provider}/login`, `/auth/{provider}/login` or
`…/oauth/…/authorize|login|start` answering a redirect to an authorization URL (`client_id`, `state`); the
callback is that URL's `redirect_uri`. When the redirect goes to the OpenID provider verify runs (see
verify/oidc_provider.py; verify configures the app with it when it boots the project), the flow is run for
real, each time as a new account of the provider:

(a) genuine: the login (its cookies kept), the provider's authorization (a code for the login's state),
    the callback with that code, that state and the login's cookies: it must log in (tokens in a 2xx
    answer, or cookies that pass a protected GET, or without one a session cookie), else the probe is
    inconclusive: nothing below could be told apart.
(b) forged state: a second login, a code for its state, and the callback with that code, the login's
    cookies and a made-up state: a login is the finding (high; medium when an attacker's own code and
    state, sent by a browser that started a login of its own, are still refused: PKCE or the nonce bind
    the code to the browser); so is the provider seeing the code redeemed (medium).
(c) another browser: a third login, a code for its state, and the callback with that code and state but
    none of the login's cookies: a login means the state is not bound to the browser that asked for it.

A redirect to any other provider, or a redirect_uri on another server, is not applicable (the reason says
how to hand the app verify's provider: --oidc-env).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ..findings import Evidence
from ..openapi_doc import Operation, example_value, fill_path
from .base import BudgetExceeded, Context, Exchange, find_key, is_2xx, json_of
from .sessions import SESSION_NAME

ID = "oidc-state"
CWE = 352
SECONDS = 20
MAX_REQUESTS = 24

_LOGIN_END = re.compile(r"/(log-?in|sign-?in|authori[sz]e|start|begin|initiate|redirect)/?$", re.I)
_OIDC_WORD = re.compile(r"(^|[/_.-])(oidc|oauth2?|openid|sso|social|idp)([/_.-]|$)", re.I)
_PROVIDER_PARAM = re.compile(r"^(provider|provider_?id|provider_?name|idp|issuer|connection|strategy)$", re.I)
_FLOW_COOKIE = re.compile(r"state|nonce|pkce|verifier|csrf|xsrf|oidc|oauth|flow|tx|return", re.I)
_ME = re.compile(r"/(me|profile|account|whoami|user|session)s?\b", re.I)
_REDIRECT = (301, 302, 303, 307, 308)
_FIX = (
    "Bind the state to the browser that started the login: store a random state (with the nonce and the "
    "PKCE verifier) in an HttpOnly, SameSite=Lax cookie or the pre-login session, and have the callback "
    "refuse, before redeeming the code, any state that is missing or differs from it (openid-client: "
    "expectedState set to the stored value, never skipStateCheck); use each state once."
)


@dataclass
class Login:
    """One start of the login: what the app answered and the authorization request it redirects to."""

    path: str
    exchange: Exchange
    url: str  # the authorization URL (Location)
    query: dict[str, str]
    cookies: dict[str, str]
    callback: str  # the path the redirect_uri names on the app
    callback_query: dict[str, str] = field(default_factory=dict)


def run(ctx: Context) -> None:
    candidates = login_operations(ctx)
    if not candidates:
        ctx.skip(
            "no OpenID Connect / OAuth login in the API (GET …/oidc/{provider}/login, …/oauth/…/authorize)"
        )
        return
    provider = ctx.target.oidc
    login, elsewhere, answers = None, [], []
    for op in candidates[:4]:
        for values in _path_values(ctx, op)[:3]:
            path = fill_path(op.path, values)
            got = _start(ctx, op, path)
            if isinstance(got, str):
                answers.append(got)
                continue
            if provider is not None and provider.owns(got.url):
                login = (op, path, got)
                break
            elsewhere.append(got)
        if login is not None:
            break
    if login is None:
        if elsewhere:
            where = urlsplit(elsewhere[0].url)
            ctx.skip(
                f"the OpenID login GET {elsewhere[0].path} redirects to {where.scheme}://{where.netloc}, not to "
                "a provider verify runs (verify plays the provider when it boots the project: its .env.example "
                "lists OIDC_<NAME>_ISSUER, or --oidc-env names the variables it reads its issuer from)"
            )
        elif provider is not None:
            ctx.blocked(f"no OpenID login redirected to verify's provider: {'; '.join(answers[:3])}")
        else:
            ctx.skip(
                f"no login operation redirected to an authorization URL ({'; '.join(answers[:2])}); verify runs "
                "an OpenID provider for the app when its .env.example lists OIDC_<NAME>_ISSUER, or with "
                "--oidc-env"
            )
        return
    op, path, first = login
    redirect = first.query.get("redirect_uri")
    if redirect and not _on_this_server(ctx, redirect):
        ctx.skip(
            f"the OpenID login GET {path} names the redirect_uri {redirect[:120]}, not this server: another app "
            "(a front end) finishes the login"
        )
        return
    _attack(ctx, provider, op, path, first)


def _on_this_server(ctx: Context, url: str) -> bool:
    """Whether a URL names the server under test (localhost and 127.0.0.1 are the same host)."""
    mine, theirs = urlsplit(ctx.base_url), urlsplit(url)
    loopback = ("127.0.0.1", "localhost", "::1")

    def port(parts) -> int | None:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)

    same_host = mine.hostname == theirs.hostname or (
        mine.hostname in loopback and theirs.hostname in loopback
    )
    return same_host and port(mine) == port(theirs)


def login_operations(ctx: Context) -> list[Operation]:
    """GETs that may start an OpenID / OAuth login: a path ending in login/authorize/start/… that names
    OIDC or OAuth, takes the provider as a parameter, or has a …/callback beside it."""
    gets = {o.path.rstrip("/") for o in ctx.get_ops()}
    found = []
    for op in ctx.get_ops():
        if not _LOGIN_END.search(op.path):
            continue
        prefix = op.path.rstrip("/").rsplit("/", 1)[0]
        beside = prefix + "/callback" in gets
        provider = any(_PROVIDER_PARAM.match(p.name) for p in op.path_params)
        if _OIDC_WORD.search(op.path) or beside or provider:
            found.append(op)
    found.sort(key=lambda o: (not _OIDC_WORD.search(o.path), len(o.path)))
    return found


def _path_values(ctx: Context, op: Operation) -> list[dict[str, Any]]:
    """Values for the path parameters: for the provider, its documented enum or examples, else the names
    of the app's OpenID logins verify configured (OIDC_MAIN_ISSUER: main)."""
    base = ctx.path_values(op)
    provider = next((p for p in op.path_params if _PROVIDER_PARAM.match(p.name)), None)
    if provider is None:
        return [base]
    raw = next(
        (p for p in op.op.get("parameters") or [] if isinstance(p, dict) and p.get("name") == provider.name),
        {},
    )
    names: list[Any] = list(provider.schema.get("enum") or [])
    names += [v for v in (raw.get("example"), provider.schema.get("example")) if v is not None]
    names += [e.get("value") for e in (raw.get("examples") or {}).values() if isinstance(e, dict)]
    for name in ctx.target.oidc_names:
        names += [name, name.replace("_", "-")]
    if not names:
        names.append(example_value(ctx.spec, provider.schema, provider.name))
    unique = [n for n in dict.fromkeys(str(n) for n in names if n not in (None, ""))]
    return [{**base, provider.name: n} for n in unique]


def _start(ctx: Context, op: Operation, path: str) -> Login | str:
    """Start the login as a new browser: the redirect to the authorization URL and the cookies it set,
    or (a string) why the answer was not one."""
    resp = ctx.request("GET", path, params=ctx.query_values(op))
    if resp is None:
        return f"GET {path}: no answer"
    exchange = ctx.last()
    location = resp.headers.get("location", "")
    status = f"GET {path} -> HTTP {resp.status_code}"
    if resp.status_code not in _REDIRECT or not location:
        return status + (f" {resp.text[:120]!r}" if resp.content else "")
    query = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
    if not {"client_id", "state"} <= query.keys() or not location.startswith(("http://", "https://")):
        return f"{status} to {location[:120]}: not an authorization URL (client_id and state)"
    exchange = Exchange(exchange.request, f"HTTP {resp.status_code}\nLocation: {location[:300]}")
    callback, callback_query = _callback_path(ctx, path, query.get("redirect_uri"))
    return Login(path, exchange, location, query, set_cookies(resp), callback, callback_query)


def _callback_path(ctx: Context, login_path: str, redirect_uri: str | None) -> tuple[str, dict[str, str]]:
    """The app's path the redirect_uri names (relative to the probes' base URL), else the …/callback
    beside the login."""
    if not redirect_uri:
        return login_path.rstrip("/").rsplit("/", 1)[0] + "/callback", {}
    parts = urlsplit(redirect_uri)
    path = parts.path or "/"
    base = urlsplit(ctx.base_url).path.rstrip("/")
    if base and path.startswith(base + "/"):
        path = path[len(base) :]
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def set_cookies(resp: httpx.Response) -> dict[str, str]:
    """The cookies an answer sets (name -> value); not those it clears (empty, Max-Age<=0, expired)."""
    out: dict[str, str] = {}
    for header in resp.headers.get_list("set-cookie"):
        pair, *attrs = header.split(";")
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            continue
        value = value.strip().strip('"')
        cleared = not value
        for attr in attrs:
            key, _, val = attr.strip().partition("=")
            if key.lower() == "max-age" and val.strip().lstrip("-").isdigit() and int(val) <= 0:
                cleared = True
            elif key.lower() == "expires":
                with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
                    cleared = cleared or parsedate_to_datetime(val.strip()).timestamp() < time.time()
        if cleared:
            out.pop(name.strip(), None)
        else:
            out[name.strip()] = value
    return out


def _cleared(resp: httpx.Response) -> set[str]:
    names = {h.split("=", 1)[0].strip() for h in resp.headers.get_list("set-cookie") if "=" in h}
    return names - set(set_cookies(resp))


def _authorize(ctx: Context, provider: Any, login: Login) -> tuple[str, str | None, Exchange] | str:
    """Follow the login's redirect to verify's provider as a browser would: (code, state, exchange), or
    why the provider refused the authorization request."""
    provider.set_account()  # each flow logs in a new account of the provider
    limit = ctx.remaining()
    if limit <= 0:
        raise BudgetExceeded(ctx.probe_id)
    try:
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=min(5.0, limit)) as client:
            resp = client.get(login.url)
    except httpx.HTTPError as exc:
        return f"verify's provider did not answer the authorization request ({type(exc).__name__})"
    location = resp.headers.get("location", "")
    query = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
    if resp.status_code != 302 or "code" not in query:
        why = query.get("error_description") or query.get("error") or resp.text[:160]
        return (
            f"verify's provider refused the authorization request of GET {login.path} "
            f"(HTTP {resp.status_code}: {why})"
        )
    shown = re.sub(r"([?&]code=)[^&]+", r"\1<code>", location)
    exchange = Exchange(
        "GET <that Location>  (verify's OpenID provider, which logs a new account in)",
        f"HTTP 302\nLocation: {shown[:300]}",
    )
    return query["code"], query.get("state"), exchange


def _callback(ctx: Context, login: Login, code: str, state: str | None, cookies: dict[str, str]):
    params = {**login.callback_query, "code": code}
    if state is not None:
        params["state"] = state
    resp = ctx.request("GET", login.callback, params=params, cookies=cookies)
    exchange = ctx.last()
    if resp is not None:
        shown = [f"HTTP {resp.status_code}"]
        if resp.headers.get("location"):
            shown.append(f"Location: {resp.headers['location'][:200]}")
        shown += [f"Set-Cookie: {name}=<value>" for name in set_cookies(resp)]
        body = exchange.response.split("\n", 1)[1] if "\n" in exchange.response else ""
        exchange = Exchange(exchange.request, "\n".join(shown) + (f"\n{body}" if body else ""))
    return resp, exchange


class _Judge:
    """Whether a callback answer logged the browser in: tokens in a 2xx answer; else the cookies the
    browser then holds passing a protected GET (found once, the genuine login's cookies passing it); else,
    without one, a session cookie set by a 2xx or 3xx answer."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.guard: str | None = None
        self._candidates: list[str] | None = None

    def candidates(self) -> list[str]:
        if self._candidates is None:
            ctx = self.ctx
            found = list(ctx.accounts.guards())
            ops = [
                o for o in ctx.get_ops(with_path_params=False) if not any(p.required for p in o.query_params)
            ]
            ops.sort(key=lambda o: (not o.secured, not _ME.search(o.path)))
            for o in ops[:5]:
                if (
                    len(found) >= 3
                    or o.path in found
                    or _LOGIN_END.search(o.path)
                    or o.path.endswith("callback")
                ):
                    continue
                resp = ctx.request("GET", o.path, quiet=True)
                if resp is not None and ctx.denied(resp):
                    found.append(o.path)
            self._candidates = found
        return self._candidates

    def logged_in(self, resp, before: dict[str, str], *, learn: bool = False) -> str | None:
        ctx = self.ctx
        if resp is None or resp.status_code >= 400:
            return None
        data = json_of(resp)
        token = ctx.token_from(resp) or find_key(data, ("access_token", "accessToken", "id_token", "token"))
        if is_2xx(resp) and isinstance(token, str) and len(token) >= 8:
            ctx.remember_secret(token)
            return "it answered tokens"
        jar = {k: v for k, v in before.items() if k not in _cleared(resp)}
        new = set_cookies(resp)
        jar.update(new)
        guards = ([self.guard] if self.guard else []) if not learn else self.candidates()
        for guard in guards:
            check = ctx.request("GET", guard, cookies=jar, quiet=True)
            if check is not None and check.status_code < 400 and not ctx.denied(check):
                self.guard = guard
                return f"the browser's cookies then passed GET {guard}"
        if guards or self.guard:
            return None
        session = [n for n in new if n not in before or before[n] != new[n]]
        session = [n for n in session if SESSION_NAME.search(n) and not _FLOW_COOKIE.search(n)] or [
            n for n in session if not _FLOW_COOKIE.search(n)
        ]
        if session and (is_2xx(resp) or resp.status_code in _REDIRECT):
            return f"it set the session cookie {', '.join(session)}"
        return None


def _attack(ctx: Context, provider: Any, op: Operation, path: str, first: Login) -> None:
    judge = _Judge(ctx)

    def flow(label: str, got: Login | str | None = None) -> tuple[Login, str, str | None, Exchange] | None:
        got = got or _start(ctx, op, path)
        if isinstance(got, str):
            ctx.blocked(f"starting the {label} login failed: {got}")
            return None
        auth = _authorize(ctx, provider, got)
        if isinstance(auth, str):
            ctx.blocked(auth)
            return None
        return (got, *auth)

    # (a) the genuine login: the callback must let the browser in, or nothing below can be told apart.
    started = flow("genuine", first)  # the login that showed the redirect to verify's provider
    if started is None:
        return
    login, code, state, granted = started
    resp, answer = _callback(ctx, login, code, state, login.cookies)
    how = judge.logged_in(resp, login.cookies, learn=True)
    if how is None:
        redeemed = provider.redeemed(code)
        status = "no answer" if resp is None else f"HTTP {resp.status_code} {resp.text[:140]!r}"
        ctx.blocked(
            f"the genuine OpenID login did not log in: GET {login.callback} with the code and state verify's "
            f"provider gave and the login's cookies answered {status}"
            + ("" if redeemed else "; the app never redeemed the code at verify's provider")
            + (
                ""
                if resp is None or resp.status_code >= 400 or judge.candidates()
                else "; no protected GET to check"
            )
        )
        return
    # (b) a made-up state, with the login's own cookies.
    started = flow("second")
    if started is None:
        return
    login, code, _, granted = started
    forged = "bimpl-forged-" + secrets.token_hex(8)
    resp, answer = _callback(ctx, login, code, forged, login.cookies)
    how = judge.logged_in(resp, login.cookies)
    redeemed = provider.redeemed(code)
    if how is not None or redeemed:
        injected = _inject(ctx, judge, flow) if how else None
        if how:
            what = f"logged in with state={forged}"
            seen = f"the callback logged the browser in: {how}"
        else:
            what = f"redeemed the code at the provider with state={forged}"
            seen = "verify's provider received the token request for its code; the callback then refused it"
        if injected:
            seen += f"; a code and state from another browser's login also logged in a browser that had started its own login ({injected})"
        elif how:
            seen += "; a code from another browser's login was refused (PKCE or the nonce still bind the code to the browser)"
        ctx.add(
            ID,
            CWE,
            f"OIDC callback accepts a wrong state: GET {login.callback} {what}",
            "high" if injected or (how and injected is None) else "medium",
            _FIX,
            _evidence(ctx, [login.exchange, granted, answer], f"login started by GET {login.path}; {seen}"),
        )
        return

    # (c) the right state, from a browser that did not start the login (none of its cookies).
    started = flow("third")
    if started is None:
        return
    login, code, state, granted = started
    resp, answer = _callback(ctx, login, code, state, {})
    how = judge.logged_in(resp, {})
    if how is not None:
        ctx.add(
            ID,
            CWE,
            f"OIDC callback does not bind the state to the browser: GET {login.callback} logged in a browser "
            f"without the cookies of GET {login.path}",
            "high",
            _FIX,
            _evidence(
                ctx,
                [login.exchange, granted, answer],
                f"sent without the login's cookies, the callback logged the browser in: {how}",
            ),
        )


def _inject(ctx: Context, judge: _Judge, flow) -> str | bool | None:
    """Login CSRF as an attacker runs it: the code and state of the attacker's own login, sent to the
    callback by a victim's browser that has started a login of its own (its cookies). How it logged the
    victim in; False when it did not; None when it could not be tried."""
    attacker = flow("attacker's")
    victim = flow("victim's") if attacker is not None else None
    if attacker is None or victim is None:
        return None
    login, code, state, _ = attacker
    resp, _ = _callback(ctx, login, code, state, victim[0].cookies)
    return judge.logged_in(resp, victim[0].cookies) or False


def _evidence(ctx: Context, exchanges: list[Exchange], note: str) -> Evidence:
    """The login, the provider's redirect and the callback, each answer cut short (tokens it handed out
    redacted), and what showed the flaw."""
    return Evidence(
        request="\n\n".join(e.request for e in exchanges),
        response="\n\n".join(ctx.redacted(e.response[:300]) for e in exchanges) + f"\n({note})",
    )
