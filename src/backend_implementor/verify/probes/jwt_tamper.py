"""JWT tampering (CWE-347): alg "none", a wrong key, edited claims, an edited expiry, guessable secrets;
and expired tokens that are still accepted (CWE-613).

A token of a registered user is altered and sent to a protected GET that accepts the genuine token and
refuses a missing one; any altered token that is accepted proves the signature is not checked. When the
token is signed with a secret verify started the server with, the probe signs an expired copy itself:
accepting it proves the server ignores `exp`, which no unsigned edit could show."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import unquote

from ..openapi_doc import fill_path
from .base import Context, Exchange, b64url_json, is_2xx, jwt_claims

ID = "jwt-tamper"
CWE = 347
SECONDS = 10
MAX_REQUESTS = 20

# Secrets seen in tutorials, generated code and real apps; each is tried in its usual spellings
# (SuperSecret, SUPER_SECRET, super-secret, ...) offline against the HMAC of a token or session cookie.
WEAK_SECRETS = (
    "secret", "secret key", "secret token", "jwt secret", "jwt key", "jwt secret key", "jwt token secret",
    "token secret", "access token secret", "refresh token secret", "session secret", "cookie secret",
    "app secret", "api secret", "auth secret", "signing key", "private key", "change me", "change this",
    "change it", "replace me", "your secret", "your secret key", "your jwt secret", "super secret",
    "super secret key", "super secret jwt key", "my secret", "my secret key", "my jwt secret", "top secret",
    "very secret", "not secret", "dev secret", "test secret", "default secret", "password", "passw0rd",
    "123456", "12345678", "1234567890", "key", "private", "default", "development", "production", "test",
    "keyboard cat", "shhhhh", "shhhhhhared-secret", "s3cr3t", "s3cr3t key", "app_secret", "node", "express",
    "qwerty", "admin", "letmein", "abc123", "hello world", "foo", "bar", "foobar", "example",
)  # fmt: skip


def _spellings(phrase: str) -> list[str]:
    words = phrase.split()
    out = [phrase, phrase.upper(), phrase.capitalize(), phrase.title()]
    for sep in ("", "-", "_", "."):
        for cased in (words, [w.capitalize() for w in words], [w.upper() for w in words]):
            out.append(sep.join(cased))
        out.append(words[0] + "".join(w.capitalize() for w in words[1:]))  # camelCase
    out += [s + suffix for s in list(out[:4]) for suffix in ("!", "1", "123")]
    return list(dict.fromkeys(out))


CANDIDATES = tuple(dict.fromkeys(s for phrase in WEAK_SECRETS for s in _spellings(phrase)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _encode(header: dict, claims: dict) -> str:
    return (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )


OWN_RECORD = re.compile(r"/(users?|accounts?|members?|profiles?|customers?)/\{[^}]+\}$", re.I)
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _mac(signing_input: str, key: str, alg: str) -> str:
    return _b64(hmac.new(key.encode(), signing_input.encode(), _HMAC[alg]).digest())


def _sign(header: dict, claims: dict, key: str) -> str:
    signing_input = _encode(header, claims)
    return signing_input + "." + _mac(signing_input, key, header["alg"])


def _header(token: str) -> dict:
    header = b64url_json(token.split(".")[0])
    return header if isinstance(header, dict) else {}


def signing_secret(token: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    """The candidate secret that produced the token's HMAC signature, if any."""
    head, payload, sig = token.split(".")
    alg = _header(token).get("alg")
    if alg not in _HMAC:
        return None
    return next((s for s in candidates if hmac.compare_digest(_mac(f"{head}.{payload}", s, alg), sig)), None)


def weak_secret(token: str) -> str | None:
    return signing_secret(token, CANDIDATES)


def cookie_secret(value: str, candidates: tuple[str, ...] = CANDIDATES) -> str | None:
    """The secret of a signed cookie (express-session, cookie-parser: "s:<value>.<base64 HMAC-SHA256>")."""
    value = unquote(value)
    if not value.startswith("s:") or "." not in value:
        return None
    data, sig = value[2:].rsplit(".", 1)
    for key in candidates:
        mac = base64.b64encode(hmac.new(key.encode(), data.encode(), hashlib.sha256).digest()).decode()
        if hmac.compare_digest(mac.rstrip("="), sig):
            return key
    return None


def _weak_cookie_secret(ctx: Context, user) -> None:
    for name, value in user.cookies.items():
        if cookie_secret(value) is not None:
            ctx.add(
                "weak-cookie-secret",
                CWE,
                f"Session cookie '{name}' is signed with a guessable secret (found in a list of common secrets)",
                "critical",
                "Sign cookies with a long random secret from the environment: anyone who knows the secret "
                "can forge a signed session id.",
                ctx.evidence(
                    Exchange(
                        f"offline HMAC-SHA256 check of the signed cookie '{name}' against {len(CANDIDATES)} "
                        "common secrets",
                        "signature matches one of them (value withheld)",
                    )
                ),
            )
            return


def _check_op(ctx: Context, token_user):
    """A GET that accepts the genuine token and refuses no token, the path to send it to, and the status the
    genuine token gets (a 404 "nothing stored yet" still shows the token was accepted, where no token gets a
    401). Parameterless GETs first, then the caller's own record (/users/{their id})."""
    cands = [(op, op.path) for op in ctx.get_ops(with_path_params=False) if op.secured]
    cands.sort(key=lambda c: ("me" not in c[1].lower() and "profile" not in c[1].lower(), len(c[1])))
    if token_user.id is not None:
        cands += [
            (op, fill_path(op.path, {op.path_params[0].name: token_user.id}))
            for op in ctx.get_ops(with_path_params=True)
            if op.secured and len(op.path_params) == 1 and OWN_RECORD.search(op.path)
        ]
    for op, path in cands[:5]:
        params = ctx.query_values(op, token_user)
        with_token = ctx.request("GET", path, params=params, user=token_user)
        without = ctx.request("GET", path, params=params)
        if (
            with_token is not None
            and with_token.status_code < 500
            and not ctx.denied(with_token)
            and without is not None
            and ctx.denied(without)
        ):
            return op, path, with_token.status_code
    return None, None, None


def _accepted(ctx: Context, resp, genuine: int | None) -> bool:
    return resp is not None and not ctx.denied(resp) and (is_2xx(resp) or resp.status_code == genuine)


def _send(ctx: Context, op, path: str, user, token: str, shown: str):
    header = {user.header_name: f"{user.prefix} {token}".strip()}
    return ctx.request(
        "GET",
        path,
        params=ctx.query_values(op, user),
        headers=header,
        show_auth=f"{user.prefix} <{shown}>".strip(),
    )


def run(ctx: Context) -> None:
    user = ctx.user(0)
    if user is not None:
        _weak_cookie_secret(ctx, user)
    claims = jwt_claims(user.token if user else None)
    if user is not None and claims is None:
        ctx.skip(
            "the login gives no JWT" + (" (a session cookie)" if not user.token else " (an opaque token)")
        )
    if user is None or claims is None or not user.token:
        return
    header, sig = _header(user.token), user.token.split(".")[2]
    secret = weak_secret(user.token)
    if secret is not None:
        ctx.add(
            ID,
            CWE,
            "JWT is signed with a guessable secret (found in a list of common secrets)",
            "critical",
            "Sign tokens with a long random secret from the environment (e.g. 32 random bytes).",
            ctx.evidence(
                Exchange(
                    f"offline HMAC check of the login token's signature against {len(CANDIDATES)} common secrets",
                    "signature matches one of them (value withheld)",
                )
            ),
        )
    if not any(o.secured for o in ctx.ops):
        ctx.skip("no operation in the document requires a token")
        return
    op, path, genuine = _check_op(ctx, user)
    if op is None:
        ctx.blocked("no protected GET operation accepts the login token and refuses a request without it")
        return
    now = int(time.time())
    forged = {
        'alg "none"': _encode({"alg": "none", "typ": "JWT"}, claims) + ".",
        "signed with a wrong key": _sign(
            {"alg": "HS256", "typ": "JWT"}, claims, "bimpl-wrong-key-1234567890"
        ),
        "edited claims, original signature": (
            _encode(header, {**claims, "role": "admin", "admin": True}) + "." + sig
        ),
        "expired (exp in the past), original signature": (
            _encode(header, {**claims, "iat": now - 7200, "exp": now - 3600}) + "." + sig
        ),
    }
    accepted = []
    first = None
    for name, token in forged.items():
        resp = _send(ctx, op, path, user, token, f"forged: {name}")
        if _accepted(ctx, resp, genuine):
            accepted.append(name)
            first = first or ctx.last()
    if accepted:
        ctx.add(
            ID,
            CWE,
            f"Tampered JWT accepted by {op}: " + ", ".join(accepted),
            "critical",
            "Verify every token with jwt.verify(token, secret, { algorithms: ['HS256'] }) (never jwt.decode).",
            ctx.evidence(first),
        )
        return  # signatures are not checked at all: an expiry test would say nothing more
    secret = signing_secret(user.token, ctx.target.signing_secrets)
    if secret is None:
        return
    expired = {**claims, "iat": now - 7200, "exp": now - 3600}
    if "nbf" in claims:
        expired["nbf"] = now - 7200
    resp = _send(ctx, op, path, user, _sign(header, expired, secret), "validly signed, expired an hour ago")
    if _accepted(ctx, resp, genuine):
        ctx.add(
            "jwt-expiry",
            613,
            f"Expired JWT accepted by {op}: validly signed, but its exp is an hour in the past",
            "high",
            "Keep the expiry check (no ignoreExpiration / clockTolerance of hours) and issue short-lived tokens.",
            ctx.evidence(ctx.last()),
        )
