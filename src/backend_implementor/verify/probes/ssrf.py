"""Server-side request forgery (CWE-918): a URL given to the API is fetched by the server, loopback too.

verify runs a canary HTTP server on 127.0.0.1 and gives its URL, with a token unique to each input, to
every URL-like input: query parameters and body fields that are `format: uri` or named like a URL
(`url`, `callback_url`, `webhook`, `image_url`, `feed`, ...). Inputs stored for later (a webhook) are
triggered by calling the POST operations under the created resource (`/webhooks/{id}/test`). A request
reaching the canary proves the server fetches internal addresses for its clients; the server's answer need
not show anything (blind SSRF counts)."""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ..openapi_doc import fill_path
from .base import Context, Exchange, Resource, ResourceKind

ID = "ssrf"
CWE = 918
SECONDS = 12
MAX_REQUESTS = 40
URL_NAME = re.compile(
    r"(^|_|-|[a-z])(url|uri|link|href|callback|webhook|endpoint|feed|rss|src|source|remote|fetch|proxy)s?$"
    r"|^(url|uri|link|href|callback|webhook|endpoint|feed|target|image|avatar|site|website|homepage)$",
    re.I,
)
URL_FORMATS = ("uri", "url", "iri", "uri-reference")
WAIT = 1.5  # for a fetch the server makes after answering


class Canary:
    """A tiny HTTP server on 127.0.0.1 that records the paths it is asked for."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html><head><title>bimpl canary</title></head></html>")

            do_GET = do_POST = do_PUT = do_HEAD = _hit

            def log_message(self, *args) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/bimpl-ssrf/{token}"

    def seen(self, token: str) -> str | None:
        return next((h for h in self.hits if f"/bimpl-ssrf/{token}" in h), None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def canary():
    c = Canary()
    try:
        yield c
    finally:
        c.close()


def is_url_input(name: str, schema: dict) -> bool:
    if schema.get("type") not in (None, "string") or schema.get("enum"):
        return False
    return schema.get("format") in URL_FORMATS or bool(URL_NAME.search(name))


def _local(ctx: Context) -> bool:
    host = urlsplit(ctx.base_url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(ctx: Context) -> None:
    slots = []
    for op in ctx.ops:
        if ctx.is_auth_path(op.path):
            continue
        if op.method == "GET":
            slots += [(op, p.name, "query") for p in op.query_params if is_url_input(p.name, p.schema)]
        elif op.method in ("POST", "PUT", "PATCH") and not op.path_params:
            props = (op.body_schema or {}).get("properties") or {}
            slots += [(op, n, "body") for n, s in props.items() if is_url_input(n, s or {})]
    if not slots:
        ctx.skip("no input takes a URL")
        return
    if not _local(ctx):
        ctx.blocked("the target is not on this machine: it cannot reach verify's canary on 127.0.0.1")
        return
    user = ctx.user(0)
    kinds = {k.create.path: k for k in ctx.resource_kinds()}
    with canary() as c:
        sent: dict[str, tuple[Exchange, str]] = {}
        for op, name, where in slots[:8]:
            token, label = secrets.token_hex(6), f"'{name}' of {op}"
            who = user if op.secured else None
            if where == "query":
                params = {**ctx.query_values(op, who), name: c.url(token)}
                ctx.request("GET", fill_path(op.path, ctx.path_values(op)), params=params, user=who)
                sent[token] = (ctx.last(), label)
            else:
                body = ctx.example_body(op)
                body = {**body, name: c.url(token)} if isinstance(body, dict) else {name: c.url(token)}
                kind = kinds.get(op.path) if op.method == "POST" else None
                if kind is None:
                    ctx.request(op.method, op.path, json_body=body, user=who)
                    sent[token] = (ctx.last(), label)
                else:
                    res = ctx.create(kind, user, body=body, required=False)
                    sent[token] = (ctx.last(), label)
                    if res is not None and res.id is not None and not c.seen(token):
                        _trigger(ctx, kind, res, user)
            if _report(ctx, c, token, *sent[token]):
                return
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            if any(_report(ctx, c, token, *what) for token, what in sent.items()):
                return
            time.sleep(0.1)


def _trigger(ctx: Context, kind: ResourceKind, res: Resource, user) -> None:
    """Call the POST actions of the resource just created (`/webhooks/{id}/test`): a stored URL is fetched
    when something uses it."""
    if not kind.param:
        return
    prefix = kind.create.path.rstrip("/") + "/{" + kind.param + "}/"
    for action in [o for o in ctx.ops if o.method == "POST" and o.path.startswith(prefix)][:3]:
        path = fill_path(action.path, {**ctx.path_values(action), kind.param: res.id})
        ctx.request("POST", path, json_body=ctx.example_body(action), user=user)


def _report(ctx: Context, c: Canary, token: str, exchange: Exchange, label: str) -> bool:
    hit = c.seen(token)
    if hit is None:
        return False
    ctx.add(
        ID,
        CWE,
        f"Server-side request forgery: {label} makes the server request a loopback URL",
        "high",
        "Fetch only http(s) URLs whose host resolves to a public address (check after DNS resolution, and on "
        "every redirect), or an allow-list of hosts.",
        ctx.evidence(exchange, Exchange(f"canary on 127.0.0.1 received: {hit}", "")),
    )
    return True
