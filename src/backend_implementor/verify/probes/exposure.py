"""Sensitive data in responses (CWE-200): password fields and hashes, other accounts' tokens and keys, the
server's environment or its own secrets.

Every JSON answer any probe receives is checked (`Watch`, registered for the whole run), and this probe adds
what a user would read anyway: the register and login answers, every GET without path parameters as
anonymous and as a user, and each created resource read back. Flagged:
- a password-like key (`password`, `password_hash`, `salt`, ...) with a string value, anywhere;
- a token-like key (`api_key`, `reset_token`, `refresh_token`, ...) on an object that names an account
  other than the caller's (a directory or user list that hands out other people's credentials);
- an object that is an environment dump (`PATH`, `HOME`, `NODE_ENV`, `*_SECRET`, ... as keys), or a secret
  verify started the server with appearing verbatim in any answer.
An OpenAPI document (which names such fields in schemas and examples) is never checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..openapi_doc import fill_path
from .base import Context, Exchange, User, json_of

ID = "exposure"
CWE = 200
SECONDS = 10
MAX_REQUESTS = 30

PASSWORD_KEY = re.compile(
    r"^(password|passwd|pwd|pass|password_?hash|hashed_?password|pass_?hash|password_?digest|"
    r"encrypted_?password|crypted_?password|password_?salt|salt)$",
    re.I,
)
TOKEN_KEY = re.compile(
    r"^(api_?key|api_?token|api_?secret|secret|client_?secret|reset_?token|password_?reset_?token|"
    r"verification_?token|verify_?token|confirm(ation)?_?token|refresh_?token|access_?token|auth_?token|"
    r"token|session_?id|sid|otp_?secret|totp_?secret|mfa_?secret|two_?factor_?secret|private_?key)$",
    re.I,
)
ACCOUNT_KEY = re.compile(r"^(email|e_?mail|username|user_?name|login|handle)$", re.I)
ENV_HINT = re.compile(
    r"^(PATH|HOME|NODE_ENV|PWD|HOSTNAME|SHELL|USER|NODE_OPTIONS)$|_(SECRET|PASSWORD|KEY|TOKEN)$"
)
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,}$")
_MASKED = re.compile(r"^[*•xX.\-\s]*$")


@dataclass
class Watch:
    """The passive check: called with every exchange of the run (Context.observers)."""

    ctx: Context
    hits: list[tuple[str, Exchange]] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)

    def __call__(self, exchange: Exchange, resp) -> None:
        if resp.status_code >= 400 or "json" not in resp.headers.get("content-type", "").lower():
            return
        path = resp.request.url.path
        # Tokens in a login or register answer are the caller's own.
        caller = None if self.ctx.is_auth_path(path) else identities(self.ctx.last_user)
        found = leaks(json_of(resp), caller=caller, secrets=self.ctx.target.signing_secrets, text=resp.text)
        self.note(found, exchange)

    def note(self, found: tuple[str, str] | None, exchange: Exchange) -> None:
        if found and found[0] not in self.kinds:
            self.kinds.add(found[0])
            self.hits.append((found[1], exchange))


def identities(user: User | None) -> set[str]:
    """The values naming an account: a caller's own record may carry its tokens."""
    if user is None:
        return set()
    return {user.ident, *(str(v) for v in user.fields.values())}


def leaks(
    data: Any, *, caller: set[str] | None, secrets: tuple[str, ...] = (), text: str = ""
) -> tuple[str, str] | None:
    """(kind, description) of the first sensitive item in a JSON answer, or None. `caller`: the
    identities of whoever asked (empty: anonymous; None: tokens are the caller's own, not checked)."""
    if isinstance(data, dict) and ("openapi" in data or "swagger" in data):
        return None
    for s in secrets:
        if s and len(s) >= 8 and s in text:
            return "secret", "a secret the server was started with appears in the answer"
    return _walk(data, caller, 0)


def _walk(data: Any, caller: set[str] | None, depth: int) -> tuple[str, str] | None:
    if depth > 5:
        return None
    if isinstance(data, list):
        for item in data[:50]:
            if hit := _walk(item, caller, depth + 1):
                return hit
        return None
    if not isinstance(data, dict):
        return None
    names = [k for k in data if isinstance(k, str)]
    env = [k for k in names if ENV_NAME.match(k)]
    if len(env) >= 5 and any(ENV_HINT.search(k) for k in env):
        return "env", f"an environment dump ({', '.join(sorted(env)[:6])}, ...)"
    for k, v in data.items():
        if isinstance(v, str) and v and not _MASKED.match(v) and PASSWORD_KEY.match(k):
            return "password", f"a password field '{k}'"
    accounts = {str(v) for k, v in data.items() if ACCOUNT_KEY.match(k) and isinstance(v, str) and v}
    if caller is not None and accounts and not accounts & caller:
        for k, v in data.items():
            if isinstance(v, str) and len(v) >= 8 and TOKEN_KEY.match(k):
                return "token", f"another account's '{k}'"
    for v in data.values():
        if isinstance(v, dict | list) and (hit := _walk(v, caller, depth + 1)):
            return hit
    return None


def run(ctx: Context) -> None:
    users = [u for u in (ctx.user(0), ctx.user(1)) if u is not None]
    watch = next((o for o in ctx.observers if isinstance(o, Watch)), None)
    auth = ctx.auth
    for u in users if watch is not None and auth is not None else ():
        # What registering and logging in answered: sent before the watch started.
        for path, data in ((auth.register_path, u.register_json), (auth.login_path, u.login_json)):
            hit = leaks(data, caller=None, secrets=ctx.target.signing_secrets, text=str(data or ""))
            watch.note(hit, Exchange(f"POST {path}", ctx.redacted(str(data))[:400]))
    for op in ctx.get_ops(with_path_params=False)[:10]:
        if ctx.is_auth_path(op.path) or re.search(r"openapi|swagger|api-docs", op.path, re.I):
            continue
        path = fill_path(op.path, {})
        ctx.request("GET", path, params=ctx.query_values(op))
        for u in users[:1]:
            ctx.request("GET", path, params=ctx.query_values(op, u), user=u)
    for kind in ctx.resource_kinds()[:3]:
        get = next((o for o in kind.items if o.method == "GET"), None)
        owner: User | None = users[0] if users else None
        res = ctx.create(kind, owner if kind.create.secured else None, required=False)
        if get is not None and res is not None and res.id is not None:
            ctx.request("GET", ctx.item_path(get, res), user=owner)


def report(ctx: Context, watch: Watch) -> bool:
    """Report what the Watch saw; False when nothing new (what a probe already reported, e.g. the password
    field graphql-exposure found, is that probe's finding)."""
    added = False
    for what, exchange in watch.hits:
        if any(
            f.cwe == CWE and (f.evidence.request == exchange.request or what in f.title) for f in ctx.findings
        ):
            continue
        added = True
        ctx.add(
            ID,
            CWE,
            f"Sensitive data in a response: {what}",
            "high",
            "Return an explicit allow-list of fields (a response DTO): never password hashes, other users' "
            "tokens or keys, or configuration and environment.",
            ctx.evidence(exchange),
        )
    return added
