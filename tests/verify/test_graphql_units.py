"""verify's GraphQL half without Node: reading schemas, building queries, and the probes against a small
GraphQL server served here by graphql-core (the foreign corpus runs them against Node apps)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from graphql import (
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    build_schema,
    graphql_sync,
    parse,
    specified_rules,
    validate,
)

from backend_implementor.verify import graphql_api as g
from backend_implementor.verify.probes import gql, graphql_introspection, graphql_limits, rate_limit
from backend_implementor.verify.probes.base import Context
from backend_implementor.verify.probes.target import ProbeTarget

# Relay style: connections, edges and nodes, a required bound on the list, Int ids.
RELAY = build_schema("""
    type Query { viewer: User  post(postId: Int!): Post  posts(first: Int!, after: String): PostConnection! }
    type Mutation { updatePost(postId: Int!, input: PostPatch!): Post  deletePost(postId: Int!): Boolean }
    input PostPatch { title: String  body: String  tags: [String!]  rating: Int }
    type User { id: Int! handle: String! posts(first: Int!, after: String): PostConnection! }
    type PostConnection { edges: [PostEdge!]! pageInfo: PageInfo! }
    type PageInfo { hasNextPage: Boolean! endCursor: String }
    type PostEdge { cursor: String! node: Post! }
    type Post { id: Int! title: String! body: String author: User! }
""")


def test_a_deep_query_repeats_the_schemas_cycle_and_bounds_each_list():
    path = g.cycle_path(RELAY)
    assert path is not None
    assert [n for n, _ in path][-1] in ("author", "posts")
    q = g.nested_query(path, 16)
    assert validate(RELAY, parse(q)) == []
    assert g.depth_of(q) == 16
    assert "posts(first: 1)" in q  # each list fans out to one item at most


def test_no_cycle_no_deep_query():
    flat = build_schema("type Query { a: A } type A { b: B } type B { x: Int }")
    assert g.cycle_path(flat) is None


def test_calls_fill_required_arguments_and_validate():
    assert g.by_id_fields(RELAY) == [("post", "postId")]
    assert g.list_fields(RELAY) == ["posts"]  # a connection, its bound filled with 1
    c = g.call(RELAY, "query", "posts")
    assert c.values == {"first": 1}
    assert validate(RELAY, parse(c.text())) == []
    f = RELAY.mutation_type.fields["updatePost"]
    values = {"postId": 7, **g.text_inputs(RELAY, f, "MARK", skip="postId")}
    assert values == {"postId": 7, "input": {"title": "MARK", "body": "MARK"}}
    m = g.call(RELAY, "mutation", "updatePost", values, depth=1)
    assert validate(RELAY, parse(m.text())) == []
    assert g.id_value(RELAY.query_type.fields["post"].args["postId"], "12") == 12
    assert g.id_value(RELAY.query_type.fields["post"].args["postId"], "abc") is None


def test_operations_list_every_root_field_with_its_signature():
    ops = {(o["kind"], o["name"]): o["signature"] for o in g.operations(RELAY)}
    assert ops[("query", "post")] == "post(postId: Int!): Post"
    assert ops[("query", "viewer")] == "viewer: User"
    assert ("mutation", "deletePost") in ops


def test_introspection_answers_build_a_schema_also_the_shallow_query_and_newer_directive_locations():
    for query in (g.INTROSPECTION, g.SHALLOW_INTROSPECTION):
        result = graphql_sync(RELAY, query)
        assert result.errors is None
        built = g.schema_from_introspection(result.data)
        assert built is not None and set(built.type_map) >= {"Post", "PostConnection", "PostPatch"}
    data = graphql_sync(RELAY, g.INTROSPECTION).data
    data["__schema"]["directives"][0]["locations"].append("DIRECTIVE_DEFINITION")  # graphql-js 16.12+
    assert g.schema_from_introspection(data) is not None
    assert g.schema_from_introspection({"__schema": "nope"}) is None
    assert g.schema_from_introspection(None) is None


def test_the_projects_sdl_files_build_the_schema_even_split_across_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "base.graphql").write_text("type Query { a: Int }\n")
    (tmp_path / "src" / "more.gql").write_text("extend type Query { b: String }\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.graphql").write_text("this is not SDL")
    schema, source = g.schema_from_files(tmp_path)
    assert schema is not None and set(schema.query_type.fields) == {"a", "b"}
    assert source.startswith("file ") and "node_modules" not in source
    (tmp_path / "src" / "broken.graphql").write_text("type {")
    schema, source = g.schema_from_files(tmp_path)
    assert schema is not None  # the files that build alone still do
    assert g.schema_from_files(tmp_path / "src" / "nothing") == (None, "")


def test_answers_that_are_not_graphql_are_told_apart():
    assert g.answer_of({"data": {"a": 1}}) == ({"a": 1}, [])
    assert g.answer_of({"errors": [{"message": "x"}, "junk"]}) == (None, [{"message": "x"}])
    assert g.answer_of({"message": "not found"}) is None
    assert g.answer_of({"errors": "x"}) is None
    assert g.answer_of([1, 2]) is None


# ---------------------------------------------------------------- probes against a graphql-core server


def _depth_rule(limit: int):
    from graphql import ValidationRule

    class Depth(ValidationRule):
        def enter_operation_definition(self, node, *_):
            def depth(sel_set) -> int:
                best = 0
                for s in sel_set.selections:
                    if isinstance(s, FragmentSpreadNode):
                        best = max(best, depth(self.context.get_fragment(s.name.value).selection_set))
                    elif isinstance(s, InlineFragmentNode):
                        best = max(best, depth(s.selection_set))
                    else:
                        best = max(best, 1 + depth(s.selection_set) if s.selection_set else 1)
                return best

            if depth(node.selection_set) > limit:
                self.report_error(GraphQLError(f"deeper than {limit}", node))

    return Depth


def _serve(run, batch: bool = False) -> tuple[ThreadingHTTPServer, str]:
    """POST /graphql on 127.0.0.1, each operation answered by `run` (a batch only when `batch`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/graphql":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if isinstance(body, list) and not batch:
                out, status = {"errors": [{"message": "no batching"}]}, 400
            else:
                out, status = ([run(b) for b in body] if isinstance(body, list) else run(body)), 200
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


class _Server:
    """POST /graphql with a graphql-core schema; `depth_limit` None: none; batches when `batch`."""

    def __init__(self, *, depth_limit: int | None, batch: bool):
        schema = RELAY
        rules = [*specified_rules, *([_depth_rule(depth_limit)] if depth_limit else [])]
        post = {"id": 1, "title": "t", "body": "b"}
        user = {"id": 1, "handle": "h"}
        post["author"] = user
        user["posts"] = lambda *_a, **_k: {
            "edges": [{"cursor": "c", "node": post}],
            "pageInfo": {"hasNextPage": False},
        }
        root = {"viewer": user, "posts": user["posts"], "post": lambda *_a, **_k: post}

        def run(op: dict) -> dict:
            doc = parse(op["query"])
            errors = validate(schema, doc, rules)
            if errors:
                return {"errors": [{"message": e.message} for e in errors]}
            r = graphql_sync(schema, op["query"], root_value=root, variable_values=op.get("variables"))
            return {
                "data": r.data,
                **({"errors": [{"message": e.message} for e in r.errors]} if r.errors else {}),
            }

        self.httpd, self.url = _serve(run, batch)

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server_of():
    made = []

    def make(**kw):
        made.append(_Server(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _ctx(url: str, **target) -> Context:
    ctx = Context(ProbeTarget(url, **target), deadline=time.monotonic() + 30)
    ctx.start_probe("login", seconds=30, max_requests=100)
    ctx.graphql = gql.discover(ctx)
    return ctx


def _run(ctx: Context, mod) -> list:
    ctx.start_probe(mod.ID, seconds=20, max_requests=mod.MAX_REQUESTS)
    before = len(ctx.findings)
    mod.run(ctx)
    return ctx.findings[before:]


def test_limits_found_on_an_unlimited_server_and_clean_on_a_limited_one(server_of):
    open_ = _ctx(server_of(depth_limit=None, batch=True).url)
    assert open_.graphql is not None and open_.graphql.schema_source == "introspection"
    titles = [f.title for f in _run(open_, graphql_limits)]
    assert any("nested 16 levels" in t for t in titles), titles
    assert any("batch of 25" in t for t in titles), titles
    assert any("100 aliases of 'posts'" in t for t in titles), titles
    # Depth 10 lets the shallow introspection query and the control through, not the deep query.
    closed = _ctx(server_of(depth_limit=10, batch=False).url)
    assert closed.graphql is not None and closed.graphql.schema is not None
    found = [f.title for f in _run(closed, graphql_limits) if "aliases" not in f.title]
    assert found == [], found
    assert closed.blocked_reasons == []


def test_introspection_at_a_url_is_the_servers_own_answer(server_of):
    ctx = _ctx(server_of(depth_limit=None, batch=False).url)
    found = _run(ctx, graphql_introspection)
    assert [f.cwe for f in found] == [200] and "answers the introspection query" in found[0].title
    assert found[0].evidence.request.startswith("POST")


def test_a_missing_endpoint_is_not_applicable_and_a_named_one_that_is_not_there_is_inconclusive(server_of):
    url = server_of(depth_limit=None, batch=False).url
    ctx = _ctx(url + "/nowhere-else")  # nothing answers GraphQL under that prefix
    assert ctx.graphql is None
    assert _run(ctx, graphql_limits) == [] and ctx.not_applicable and not ctx.blocked_reasons
    named = _ctx(url, graphql_path="/api/gql")
    assert named.graphql is None
    _run(named, graphql_limits)
    assert named.blocked_reasons == ["--graphql /api/gql did not answer a GraphQL query"]


def test_a_depth_limit_that_counts_introspection_still_yields_the_schema_type_by_type(server_of):
    # Depth 8 refuses the full query (15) and the shallow one (9); the stepwise one needs at most 8.
    ctx = _ctx(server_of(depth_limit=8, batch=False).url)
    assert ctx.graphql is not None and ctx.graphql.schema_source == "introspection"
    schema = ctx.graphql.schema
    assert str(schema.query_type.fields["posts"].type) == "PostConnection!"
    assert str(schema.type_map["PostConnection"].fields["edges"].type) == "[PostEdge!]!"
    assert str(schema.mutation_type.fields["updatePost"].args["input"].type) == "PostPatch!"
    found = _run(ctx, graphql_limits)
    assert not any("nested 16" in f.title for f in found) and ctx.blocked_reasons == []


ACCOUNTS = build_schema("""
    type Query { whoami: String }
    type Mutation { signup(handle: String!, password: String!): Account!  login(handle: String!, password: String!): Session! }
    type Account { id: ID! handle: String! }
    type Session { token: String! }
""")


def _accounts_server(throttle_after: int | None) -> tuple[ThreadingHTTPServer, str]:
    """Signup and login mutations only; past `throttle_after` wrong passwords a login is refused with a
    RATE_LIMITED error (inside a 200, as GraphQL servers do)."""
    accounts: dict[str, str] = {}
    wrong = [0]

    def signup(_info, handle, password):
        accounts[handle] = password
        return {"id": str(len(accounts)), "handle": handle}

    def login(_info, handle, password):
        if throttle_after is not None and wrong[0] >= throttle_after:
            raise GraphQLError("too many failed logins", extensions={"code": "RATE_LIMITED"})
        if accounts.get(handle) != password:
            wrong[0] += 1
            raise GraphQLError("wrong handle or password", extensions={"code": "UNAUTHENTICATED"})
        return {"token": f"tok-{handle}"}

    def run(op: dict) -> dict:
        r = graphql_sync(ACCOUNTS, op["query"], root_value={"signup": signup, "login": login},
                         variable_values=op.get("variables"))  # fmt: skip
        return {"data": r.data, **({"errors": [e.formatted for e in r.errors]} if r.errors else {})}

    return _serve(run)


@pytest.mark.parametrize("throttle_after", [None, 5])
def test_a_login_mutation_without_a_throttle_is_found_and_one_with_a_throttle_is_clean(throttle_after):
    httpd, url = _accounts_server(throttle_after)
    try:
        ctx = _ctx(url)
        assert ctx.graphql is not None
        gql.graphql_accounts(ctx, ctx.graphql)
        assert ctx.auth is None and ctx.accounts.login_mutation == "login" and len(ctx.accounts.users) == 2
        found = _run(ctx, rate_limit)
        if throttle_after is None:
            assert [f.cwe for f in found] == [307], found
            assert "No rate limit on GraphQL mutation login at /graphql: 30 wrong passwords" in found[0].title
            assert found[0].evidence.request.startswith("POST")
        else:
            assert (
                found == []
                and ctx.checked == "GraphQL mutation login at /graphql refused wrong password 6 of a burst"
            )
    finally:
        httpd.shutdown()
