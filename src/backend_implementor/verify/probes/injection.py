"""OS command injection (CWE-78), code injection (CWE-94) and server-side template injection (CWE-1336)
in query, path and JSON body values.

Each payload makes a shell, the JavaScript engine or a template engine (EJS, nunjucks, Handlebars-likes,
pug, JS template literals) compute 41*1021 = 41861; only the computed number in
a response counts, never the payload echoed back (which still reads `41*1021`). A safe arithmetic parser
rejects the JavaScript function syntax, so calculators done right stay clean. Blind injection (output not
returned) is out of reach without timing tricks, which are too flaky for a gate."""

from __future__ import annotations

import re
from typing import Any

from ..openapi_doc import Operation, Param, example_value, fill_path
from .base import Context

ID = "injection"
CWE = 78  # and 94 for code injection
SECONDS = 15
MAX_REQUESTS = 120
MARKER = "41861"
SHELL = (
    ";echo $((41*1021))",
    "|echo $((41*1021))",
    "$(echo $((41*1021)))",
    "`echo $((41*1021))`",
    "&&echo $((41*1021))",
)
CODE = ("(function(){return 41*1021})()", "${(function(){return 41*1021})()}")
TEMPLATE = ("{{41*1021}}", "<%= 41*1021 %>", "${41*1021}", "#{41*1021}")
# Names that suggest the value reaches a command line or an evaluator; other strings are tried last.
HINT = re.compile(
    r"cmd|command|exec|host|ip|addr|domain|url|file|path|dir|name|arg|target|expr|formula|code|script|query|input|q$",
    re.I,
)
MAX_FIELDS = 10  # x 11 payloads, within MAX_REQUESTS


def run(ctx: Context) -> None:
    user = ctx.user(0)
    slots = []  # (operation, input name, send(payload) -> response)
    for op in ctx.ops:
        if ctx.is_auth_path(op.path):
            continue
        who = user if op.secured else None
        # GET parameters and POST bodies only: probes never change or delete rows they did not create.
        for p in op.params if op.method == "GET" else ():
            if p.schema.get("type") in (None, "string") and not p.schema.get("enum"):
                slots.append((op, p.name, _param_sender(ctx, op, p, who)))
        body = ctx.example_body(op) if op.method == "POST" and not op.path_params else None
        if isinstance(body, dict):
            props = (op.body_schema or {}).get("properties") or {}
            for name, value in body.items():
                schema = props.get(name) or {}
                if isinstance(value, str) and not schema.get("enum") and not schema.get("format"):
                    slots.append((op, name, _body_sender(ctx, op, body, name, who)))
    slots.sort(key=lambda slot: not HINT.search(slot[1]))  # names that hint at a command or code first
    for op, name, send in slots[:MAX_FIELDS]:
        for payloads, report in ((SHELL, _shell), (CODE, _code), (TEMPLATE, _template)):
            for payload in payloads:
                resp = send(payload)
                if resp is not None and MARKER in resp.text:
                    ctx.code_sinks.add((str(op), name))
                    report(ctx, f"'{name}' of {op}", payload)
                    return


def _shell(ctx: Context, label: str, payload: str) -> None:
    ctx.add(
        "cmd-injection",
        78,
        f"OS command injection: {label} runs shell syntax ({payload!r} came back computed)",
        "critical",
        "Never build a shell command from input: use execFile/spawn with an argument array, and allow-list values.",
        ctx.evidence(),
    )


def _code(ctx: Context, label: str, payload: str) -> None:
    ctx.add(
        "code-injection",
        94,
        f"Code injection: {label} is evaluated as JavaScript ({payload!r} came back computed)",
        "critical",
        "Never eval/new Function/vm input: parse it (e.g. a small expression parser) against an allow-list.",
        ctx.evidence(),
    )


def _template(ctx: Context, label: str, payload: str) -> None:
    ctx.add(
        "template-injection",
        1336,
        f"Server-side template injection: {label} is compiled as a template ({payload!r} came back computed)",
        "critical",
        "Never build template source from input: pass input as data to a fixed template "
        "(ejs.render(tpl, {name}), nunjucks.renderString(tpl, {name})).",
        ctx.evidence(),
    )


def _param_sender(ctx: Context, op: Operation, p: Param, user: Any):
    def send(payload: str):
        value = (
            f"{example_value(ctx.spec, p.schema, p.name) or 'a'}{payload}" if payload[0] in ";|&" else payload
        )
        if p.where == "path":
            path = fill_path(op.path, ctx.path_values(op, **{p.name: value}))
            return ctx.request("GET", path, params=ctx.query_values(op), user=user)
        params = {**ctx.query_values(op), p.name: value}
        return ctx.request("GET", fill_path(op.path, ctx.path_values(op)), params=params, user=user)

    return send


def _body_sender(ctx: Context, op: Operation, body: dict, name: str, user: Any):
    def send(payload: str):
        value = f"{body[name]}{payload}" if payload[0] in ";|&" else payload
        return ctx.request("POST", op.path, json_body={**body, name: value}, user=user)

    return send
