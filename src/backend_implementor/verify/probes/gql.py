"""GraphQL over the probes' client: finding the endpoint and sending operations as a given user.

Shared by the graphql_* probes. Every operation goes through Context.request, so it is bounded, counted,
kept as evidence and seen by the passive checks (a password hash in a GraphQL answer is caught like one in
a REST answer)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from graphql import get_named_type, is_input_object_type

from .. import graphql_api as g
from .base import JWT_RE, Context, Exchange, User, find_key, json_of, rand


@dataclass
class Answer:
    resp: httpx.Response | None
    data: Any = None
    errors: list[dict] = field(default_factory=list)
    graphql: bool = False  # the body was a GraphQL response at all
    exchange: Exchange | None = None

    @property
    def ok(self) -> bool:
        """Executed without an error."""
        return self.graphql and not self.errors and self.data is not None

    @property
    def status(self) -> int:
        return self.resp.status_code if self.resp is not None else 0

    def text(self) -> str:
        return self.resp.text if self.resp is not None else ""

    def why(self) -> str:
        """Why it was not executed: the errors, else the status."""
        if self.errors:
            return g.error_text(self.errors)[:160]
        return f"HTTP {self.status}" if self.resp is not None else "no answer"


def ask(
    ctx: Context,
    query: str,
    variables: dict | None = None,
    *,
    user: User | None = None,
    path: str | None = None,
    body: Any = None,
    timeout: float | None = None,
    quiet: bool = False,
) -> Answer:
    """POST one operation (or a raw `body`, e.g. a batch) to the endpoint as `user`."""
    ep = ctx.graphql
    target = path or (ep.path if ep else "/graphql")
    payload = (
        body if body is not None else {"query": query, **({"variables": variables} if variables else {})}
    )
    resp = ctx.request("POST", target, json_body=payload, user=user, timeout=timeout, quiet=quiet)
    exchange = None if quiet else ctx.last()
    parsed = g.answer_of(json_of(resp))
    if parsed is None:
        return Answer(resp, exchange=exchange)
    data, errors = parsed
    return Answer(resp, data, errors, True, exchange)


def run_call(ctx: Context, c: g.Call, *, user: User | None = None, quiet: bool = False) -> Answer:
    return ask(ctx, c.text(), c.values or None, user=user, quiet=quiet)


def discover(ctx: Context) -> g.Endpoint | None:
    """The endpoint that answers a GraphQL query (anonymously, else as the first probe user), with its
    schema. None when no candidate path answers one."""
    target = ctx.target
    users = [None, *ctx.accounts.users[:1]]
    for path in g.candidate_paths(target.graphql_path, ctx.spec):
        for user in users:
            a = ask(ctx, g.PROBE_QUERY, user=user, path=path, quiet=True)
            if a.graphql and (a.errors or (isinstance(a.data, dict) and "__typename" in a.data)):
                return _schema(ctx, g.Endpoint(path, needs_login=user is not None), user)
    return None


def _schema(ctx: Context, ep: g.Endpoint, user: User | None) -> g.Endpoint:
    whom = [user] + [u for u in ctx.accounts.users[:1] if u is not user]
    for who in whom:
        schema, _ = introspect(ctx, who, ep.path, quiet=True)
        if schema is not None:
            ep.schema, ep.schema_source, ep.introspection = schema, "introspection", True
            return ep
    if ctx.target.project_root is not None:
        ep.schema, ep.schema_source = g.schema_from_files(ctx.target.project_root)
    if ep.schema is None:
        ep.notes.append("introspection is off and no SDL file (schema.graphql, *.gql) describes the schema")
    return ep


def signed_in(ctx: Context) -> User | None:
    """The first probe user, logged in when the session opened; None (anonymous) when the API has no login
    verify could use: GraphQL limits and injection are tested either way."""
    return ctx.accounts.users[0] if ctx.accounts.users else None


def introspect(ctx: Context, user: User | None, path: str, *, quiet: bool = False) -> tuple[Any, Answer]:
    """(schema or None, the answer that showed it, else the first refusal): the full introspection query,
    else its shallow form, else type by type (for depth limits that count introspection too)."""
    first = None
    for query in (g.INTROSPECTION, g.SHALLOW_INTROSPECTION):
        a = ask(ctx, query, user=user, path=path, quiet=quiet)
        first = first or a
        schema = g.schema_from_introspection(a.data) if a.ok else None
        if schema is not None:
            return schema, a
    head = ask(ctx, g.TYPE_NAMES_QUERY, user=user, path=path, quiet=quiet)
    names = g.type_names(head.data) if head.ok else None
    if not names:
        return None, first
    details = []
    for i in range(0, min(len(names), 400), g.TYPES_PER_QUERY):
        part = ask(ctx, g.types_query(names[i : i + g.TYPES_PER_QUERY]), user=user, path=path, quiet=quiet)
        if not part.ok or not isinstance(part.data, dict):
            return None, first
        details.append(part.data)
    schema = g.schema_from_steps(head.data, details)
    return (schema, head) if schema is not None else (None, first)


def need(ctx: Context, *, schema: bool = True) -> g.Endpoint | None:
    """The endpoint for a probe, or None after saying why it does not apply or could not run."""
    ep = ctx.graphql
    if ep is None:
        if ctx.graphql_error:
            ctx.blocked(ctx.graphql_error)
        elif ctx.target.graphql_path:
            ctx.blocked(f"--graphql {ctx.target.graphql_path} did not answer a GraphQL query")
        else:
            ctx.skip("no GraphQL endpoint (/graphql, /api/graphql; or name it with --graphql PATH)")
        return None
    if schema and ep.schema is None:
        ctx.blocked(f"the schema of {ep.path} is unknown: {'; '.join(ep.notes) or 'introspection failed'}")
        return None
    return ep


def items_in(data: Any, depth: int = 0) -> list | None:
    """The first list of objects in an answer's data: a list field itself or its envelope's rows."""
    if depth > 4:
        return None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for v in data.values():
            if isinstance(v, list):
                return v
        for v in data.values():
            if isinstance(v, dict) and (found := items_in(v, depth + 1)) is not None:
                return found
    return None


@dataclass
class Reader:
    """A root query field that reads one row by id (`note(id: $id)`), found to show a given row."""

    call: g.Call
    answer: Answer  # what the row's owner read through it

    def __str__(self) -> str:
        arg = next(iter(self.call.values), "id")
        return f"query {self.call.field}({arg})"


def reader_of(ctx: Context, ep: g.Endpoint, rid: Any, owner: User | None, marker: str) -> Reader | None:
    """The by-id query field whose answer, asked by the row's owner, carries the row's marker."""
    assert ep.schema is not None
    for name, arg in g.by_id_fields(ep.schema)[:8]:
        f = ep.schema.query_type.fields[name]  # type: ignore[union-attr]
        value = g.id_value(f.args[arg], rid)
        if value is None:
            continue
        c = g.call(ep.schema, "query", name, {arg: value})
        a = run_call(ctx, c, user=owner)
        if a.graphql and marker in a.text():
            return Reader(c, a)
    return None


# ---------------------------------------------------------------- accounts through GraphQL

_SIGNUP = re.compile(r"^(sign_?up|register(_?user)?|create_?(user|account)|add_?user|join)$", re.I)
_LOGIN = re.compile(
    r"^(log_?in|sign_?in|authenticate|token_?auth|(create|obtain|get)_?(session|token|auth_?token))$", re.I
)
_TOKEN_KEY = re.compile(r"^(token|jwt|access_?token|auth_?token|id_?token|session_?token)$", re.I)


def is_signup(name: str) -> bool:
    return bool(_SIGNUP.match(name))


def graphql_accounts(ctx: Context, ep: g.Endpoint) -> None:
    """An API whose signup and login are GraphQL mutations (`signup`/`register`, `login`), with no REST login
    verify could use: the two probe users are registered and logged in through them."""
    schema = ep.schema
    if ctx.accounts.users or schema is None or schema.mutation_type is None:
        return
    if ctx.ops and ctx.auth is not None:
        return  # the document's own login failed: that reason stands
    fields = schema.mutation_type.fields
    signup = next((n for n in fields if is_signup(n)), None)
    login = next((n for n in fields if _LOGIN.match(n)), None)
    if signup is None:
        if login is not None:
            ctx.accounts.reason = (
                f"GraphQL mutation {login} logs in, but no signup mutation: give accounts with --user"
            )
        return
    for _ in range(2):
        user = _graphql_user(ctx, schema, signup, login)
        if user is None:
            return
        ctx.accounts.users.append(user)
        ctx.accounts.created.append(user.ident)
    ctx.accounts.signup_mutation, ctx.accounts.login_mutation = signup, login
    # Without a document the REST login was a guess (bimpl's /auth/login) that did not answer: forget it, so
    # the login probes say they do not apply instead of failing on it.
    ctx.auth = ctx.accounts.cfg = None
    ctx.accounts.reason = None


def _graphql_user(ctx: Context, schema, signup: str, login: str | None) -> User | None:
    ident = f"bimpl{rand(8)}"
    password = f"Bimpl-{secrets.token_urlsafe(12)}"
    ctx.remember_secret(password)
    made = run_call(ctx, credentials_call(schema, signup, ident, password), quiet=True)
    if not made.ok:
        ctx.accounts.reason = f"GraphQL mutation {signup} failed: {made.why()}"
        return None
    answer = made
    if login is not None:
        answer = run_call(ctx, credentials_call(schema, login, ident, password), quiet=True)
        if not answer.ok:
            ctx.accounts.reason = f"GraphQL mutation {login} failed: {answer.why()}"
            return None
    token = token_in(answer.data)
    cookies = dict(answer.resp.cookies) if answer.resp is not None else {}
    if not token and not cookies:
        ctx.accounts.reason = f"GraphQL mutation {login or signup} answered without a token or a cookie"
        return None
    if token:
        ctx.remember_secret(token)
    uid = find_key(made.data, ("id", "_id", "uuid"))
    return User(ident, password, token=token, cookies=cookies, id=uid, fields={"username": ident})


def credentials_call(schema, name: str, ident: str, password: str) -> g.Call:
    """`name`'s arguments (and input fields) named like a password, an email or a user name filled with the
    new account's; anything else required gets an example."""
    f = schema.mutation_type.fields[name]

    def value_for(field_name: str, t) -> object | None:
        if get_named_type(t).name not in ("String", "ID"):
            return None
        low = field_name.lower()
        if "pass" in low:
            return password
        if "mail" in low:
            return f"{ident}@example.com"
        if re.search(r"user|name|login|handle|nick|ident", low):
            return ident
        return None

    values: dict[str, object] = {}
    for n, a in f.args.items():
        named = get_named_type(a.type)
        direct = value_for(n, a.type)
        if direct is not None:
            values[n] = direct
        elif is_input_object_type(named):
            obj = g.example_value(schema, a.type, n)
            for k, sub in named.fields.items():
                v = value_for(k, sub.type)
                if v is not None:
                    obj[k] = v
            values[n] = obj
    return g.call(schema, "mutation", name, values, depth=2)


def token_in(data: Any, depth: int = 0) -> str | None:
    """A token in a login answer: under a token-like key, or a bare JWT anywhere (`login: "eyJ…"`)."""
    if depth > 4:
        return None
    if isinstance(data, str):
        return data if JWT_RE.fullmatch(data) else None
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, str) and _TOKEN_KEY.match(k) and len(v) >= 16:
                return v
        for v in data.values():
            if (found := token_in(v, depth + 1)) is not None:
                return found
    return None
