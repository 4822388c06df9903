"""SQL injection (CWE-89) in query parameters (filters, sort, limit), path parameters and JSON bodies.

Detection only, nothing destructive: error-based (a lone quote gives a 5xx or SQL error text while the
balanced variant does not) and boolean-based (a tautology returns more rows than its contradiction, or
logs in without the password)."""

from __future__ import annotations

import re
from typing import Any

from ..openapi_doc import Operation, Param, example_value, fill_path
from .base import OIDC_FLOW_RE, Context, is_2xx, items_of, json_of

ID = "sqli"
CWE = 89
SECONDS = 25
MAX_REQUESTS = 160

SQL_ERROR_RE = re.compile(
    r"syntax error at or near|unterminated quoted (string|identifier)|SQLITE_ERROR|SqliteError|"
    r"near \"[^\"]*\": syntax error|unrecognized token|You have an error in your SQL syntax|ER_PARSE_ERROR|"
    r"PG::SyntaxError|SQLSTATE\[|QueryFailedError|ORA-\d{5}|relation \"[^\"]+\" does not exist|"
    r"column \"[^\"]+\" does not exist|invalid input syntax for (type )?integer",
    re.I,
)
FIX = "Use bound parameters ($1 / ?) for values and an allow-list for ORDER BY columns and directions."


def sql_error(resp) -> bool:
    return resp is not None and (resp.status_code >= 500 or bool(SQL_ERROR_RE.search(resp.text[:4000])))


def run(ctx: Context) -> None:
    user = ctx.user(0)
    for op in ctx.ops:
        # An OpenID callback's code and state go to the identity provider, under the login's rate limit.
        if op.method == "GET" and not OIDC_FLOW_RE.search(op.path):
            for p in op.query_params:
                if (str(op), p.name) not in ctx.code_sinks:
                    _query_param(ctx, op, p, user)
            for p in op.path_params:
                if (str(op), p.name) not in ctx.code_sinks:
                    _path_param(ctx, op, p, user)
    if ctx.auth:
        _login(ctx)
    for op in ctx.ops:
        if (
            op.method in ("POST", "PUT", "PATCH")
            and op.body_schema
            and not op.path_params
            and not ctx.is_auth_path(op.path)
        ):
            _body(ctx, op, user)


def _base(ctx: Context, p: Param) -> str:
    value = example_value(ctx.spec, p.schema, p.name)
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int | float):
        return str(value)
    if p.schema.get("enum") or p.schema.get("format"):
        return str(value)
    return "bimplzq"


def _error_based(ctx: Context, send, base: str, where: str, label: str) -> bool:
    """send(value) -> response. A quote breaks it (5xx/SQL error) while base and a balanced form do not."""
    first = send(base)
    if first is None or sql_error(first):
        return False
    broken = send(base + "'")
    if not sql_error(broken):
        return False
    broken_ex = ctx.last()
    for balanced in (base + "''", base + "--", base + "'--"):
        resp = send(balanced)
        if resp is not None and not sql_error(resp):
            ctx.add(
                f"sqli-{where}",
                CWE,
                f"SQL injection in {label}: a quote breaks the query (HTTP {broken.status_code}), its balanced form does not",
                "critical",
                FIX,
                ctx.evidence(broken_ex, ctx.last()),
            )
            return True
    return False


def _query_param(ctx: Context, op: Operation, p: Param, user) -> None:
    fixed = {
        q.name: example_value(ctx.spec, q.schema, q.name)
        for q in op.query_params
        if q.required and q is not p
    }
    path = fill_path(op.path, ctx.path_values(op))

    def send(value: str):
        return ctx.request("GET", path, params={**fixed, p.name: value}, user=user if op.secured else None)

    if _error_based(ctx, send, _base(ctx, p), "query", f"query parameter '{p.name}' of {op}"):
        return
    if p.schema.get("type") in (None, "string") and not p.schema.get("enum"):
        _boolean(ctx, send, "query", p.name)


def _boolean(ctx: Context, send, where: str, name: str) -> bool:
    """More rows for a tautology than for the matching contradiction (both built to survive a suffix)."""
    for true_v, false_v in (("bimplzq' OR 'a'<>'b", "bimplzq' AND 'a'='b"), ("0 OR 1=1", "0 AND 1=2")):
        t = send(true_v)
        t_ex = ctx.last()
        f = send(false_v)
        f_ex = ctx.last()
        tn, fn = _count(t), _count(f)
        if tn is not None and fn is not None and tn > fn and tn > 0:
            ctx.add(
                f"sqli-{where}",
                CWE,
                f"SQL injection (boolean) in {where} parameter '{name}': a tautology returns {tn} rows, its contradiction {fn}",
                "critical",
                FIX,
                ctx.evidence(t_ex, f_ex),
            )
            return True
    return False


def _count(resp) -> int | None:
    if not is_2xx(resp):
        return 0 if resp is not None and resp.status_code in (400, 404, 422) else None
    items = items_of(json_of(resp))
    if items is not None:
        return len(items)
    return 1 if json_of(resp) is not None else None


def _path_param(ctx: Context, op: Operation, p: Param, user) -> None:
    # The other segments name records that exist (/shops/acme/products/{id}): an example shop would make
    # every answer the same 404, whatever the parameter under test does.
    real = ctx.real_path_values(op, user)
    others = {**ctx.path_values(op), **real}
    others.pop(p.name, None)

    def send(value: str):
        return ctx.request(
            "GET", fill_path(op.path, {**others, p.name: value}), user=user if op.secured else None
        )

    if _error_based(
        ctx,
        send,
        str(real[p.name] if p.name in real else example_value(ctx.spec, p.schema, p.name)),
        "path",
        f"path parameter '{p.name}' of {op}",
    ):
        return
    # Boolean: "0 OR 1=1" finds a row where "0" and "0 AND 1=2" do not.
    none = send("0")
    if none is None or is_2xx(none) or sql_error(none):
        return
    t = send("0 OR 1=1")
    if not is_2xx(t):
        return
    t_ex = ctx.last()
    f = send("0 AND 1=2")
    if f is not None and not is_2xx(f):
        ctx.add(
            "sqli-path",
            CWE,
            f"SQL injection (boolean) in path parameter '{p.name}' of {op}: '0 OR 1=1' finds a row, '0' does not",
            "critical",
            FIX,
            ctx.evidence(t_ex, ctx.last()),
        )


def _login(ctx: Context) -> None:
    cfg = ctx.auth
    assert cfg is not None
    victim = ctx.user(0)

    def send(value: str):
        return ctx.login(value, "bimpl-wrong-Pw9!")

    # Boolean: log in as an existing user without the password.
    if victim is not None and victim.password:
        for payload in (f"{victim.ident}'--", "' OR '1'='1'--", f"{victim.ident}' OR '1'='1"):
            resp = send(payload)
            if ctx.logged_in(resp):
                ctx.add(
                    "sqli-body",
                    CWE,
                    f"SQL injection in {cfg.login_path}: logged in without the password using {payload!r}",
                    "critical",
                    FIX,
                    ctx.evidence(),
                )
                return
    _error_based(
        ctx,
        send,
        f"bimpl{victim.ident if victim else 'zq@example.com'}x",
        "body",
        f"field '{cfg.user_field}' of POST {cfg.login_path}",
    )


def _body(ctx: Context, op: Operation, user) -> None:
    body = ctx.example_body(op)
    if not isinstance(body, dict):
        return
    props = (op.body_schema or {}).get("properties") or {}
    for name, value in list(body.items())[:4]:
        schema = props.get(name) or {}
        if not isinstance(value, str) or schema.get("enum") or schema.get("format"):
            continue
        if (str(op), name) in ctx.code_sinks:
            continue

        def send(v: str, name: str = name) -> Any:
            return ctx.request(
                op.method, op.path, json_body={**body, name: v}, user=user if op.secured else None
            )

        if _error_based(ctx, send, value, "body", f"field '{name}' of {op}"):
            return
