"""A backend's GraphQL endpoint as verify sees it: where it is, its schema, and queries built from it.

Found by asking `{ __typename }` at `--graphql PATH`, else at /graphql, /api/graphql and any path of the
OpenAPI document that names GraphQL. The schema comes from introspection, else from the project's own SDL
files (schema.graphql, *.gql): a server that hides introspection can still be probed from its source.
Queries are built with graphql-core's schema types; values go in variables, never spliced into the text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.pyutils import Undefined

from .inventory import _source_files as source_files

DEFAULT_PATHS = ("/graphql", "/api/graphql", "/graphql/", "/gql")
SDL_EXTS = (".graphql", ".graphqls", ".gql")
PROBE_QUERY = "query BimplTypename { __typename }"
INTROSPECTION = get_introspection_query(descriptions=False)
# The same without directives and with three wrappers per type ([T!]! needs three), for servers whose depth
# limit counts introspection too (graphql-depth-limit does): nine levels instead of fourteen.
SHALLOW_INTROSPECTION = (
    re.sub(r"directives \{.*?\n    \}\n", "", INTROSPECTION.split("fragment TypeRef")[0], flags=re.S)
    + "fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }\n"
)
# Arguments that bound a list: set to 1 wherever a query fans out, so nesting stays cheap for the server.
LIMIT_ARG = re.compile(r"^(first|last|limit|take|top|page_?size|per_?page|count|size|max)$", re.I)
ID_ARG = re.compile(r"^(id|_id|uuid|key|slug|[a-z0-9]+_id|[a-z0-9]+(Id|ID))$")


# Last resort, for depth limits that count introspection and refuse even the shallow query: the type names
# first (three levels), then the types themselves a few at a time (eight levels at most).
TYPE_NAMES_QUERY = (
    "query BimplTypes { __schema { queryType { name } mutationType { name } subscriptionType { name } "
    "types { kind name } } }"
)
_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
_TYPE = (
    f"kind name fields(includeDeprecated: true) {{ name args {{ name defaultValue type {{ {_REF} }} }} "
    f"type {{ {_REF} }} isDeprecated deprecationReason }} inputFields {{ name defaultValue type {{ {_REF} }} }} "
    "interfaces { kind name } enumValues(includeDeprecated: true) { name isDeprecated deprecationReason } "
    "possibleTypes { kind name }"
)
TYPES_PER_QUERY = 10  # under the alias limits servers set (15 is common)


def type_names(data: Any) -> list[str] | None:
    """The types a stepwise introspection must fetch (not the built-in ones, not the scalars)."""
    try:
        types = data["__schema"]["types"]
    except (KeyError, TypeError):
        return None
    return [t["name"] for t in types if isinstance(t, dict) and isinstance(t.get("name"), str)
            and not t["name"].startswith("__") and t.get("kind") != "SCALAR"]  # fmt: skip


def types_query(names: list[str]) -> str:
    parts = " ".join(f"t{i}: __type(name: {json.dumps(n)}) {{ {_TYPE} }}" for i, n in enumerate(names))
    return f"query BimplTypeDetails {{ {parts} }}"


def schema_from_steps(head: Any, details: list[dict]) -> GraphQLSchema | None:
    """The schema from TYPE_NAMES_QUERY's answer and the types_query answers."""
    try:
        root = head["__schema"]
        fetched = {t["name"]: t for d in details for t in d.values() if isinstance(t, dict)}
        types = [fetched.get(t["name"], t) for t in root["types"] if not t["name"].startswith("__")]
        data = {"__schema": {**{k: root.get(k) for k in ("queryType", "mutationType", "subscriptionType")},
                             "types": types, "directives": []}}  # fmt: skip
    except (KeyError, TypeError):
        return None
    return schema_from_introspection(data)


@dataclass
class Endpoint:
    path: str
    schema: GraphQLSchema | None = None
    schema_source: str = ""  # "introspection", "file schema.graphql", or "" (unknown)
    introspection: bool = False  # the running server answered the introspection query
    needs_login: bool = False  # only a logged-in request got a GraphQL answer
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The deliverables report's view: the endpoint, its schema's source, its operations."""
        return {
            "path": self.path,
            "schema_source": self.schema_source or "unavailable",
            "introspection": self.introspection,
            "operations": operations(self.schema) if self.schema else [],
            "notes": self.notes,
        }


def answer_of(data: Any) -> tuple[Any, list[dict]] | None:
    """(data, errors) of a GraphQL response body, or None when the body is not one."""
    if not isinstance(data, dict) or not ("data" in data or "errors" in data):
        return None
    errors = data.get("errors")
    if errors is not None and not isinstance(errors, list):
        return None
    return data.get("data"), [e for e in errors or [] if isinstance(e, dict)]


def error_text(errors: list[dict]) -> str:
    return " ".join(f"{e.get('message', '')} {e.get('extensions') or ''}" for e in errors)


def candidate_paths(given: str | None, openapi: dict | None) -> list[str]:
    if given:
        return ["/" + given.lstrip("/")]
    found = [p for p in ((openapi or {}).get("paths") or {}) if re.search(r"graph_?ql|/gql\b", p, re.I)]
    return list(dict.fromkeys([*found, *DEFAULT_PATHS]))


def sdl_files(root: Path) -> list[Path]:
    """The project's SDL files, walked like its source files (no node_modules, build output or tests)."""
    return [p for p in source_files(root, SDL_EXTS) if p.stat().st_size < 2_000_000][:50]


def schema_from_files(root: Path) -> tuple[GraphQLSchema | None, str]:
    """The project's schema from its SDL files, all of them together (a schema split across files), else the
    first that builds on its own."""
    files = sdl_files(root)
    texts = [(p, p.read_text(encoding="utf-8", errors="replace")) for p in files]
    if not texts:
        return None, ""
    try:
        names = ", ".join(str(p.relative_to(root)) for p, _ in texts)
        return build_schema("\n".join(t for _, t in texts)), f"file {names}"
    except Exception:  # any parse or build error: try the files one by one
        pass
    for p, text in texts:
        try:
            return build_schema(text), f"file {p.relative_to(root)}"
        except Exception:
            continue
    return None, ""


def schema_from_introspection(data: Any) -> GraphQLSchema | None:
    if not isinstance(data, dict) or not isinstance(data.get("__schema"), dict):
        return None
    # Directives are not needed to build queries, and newer servers list locations (graphql-js 16.12's
    # DIRECTIVE_DEFINITION for @deprecated) that graphql-core 3.2 refuses.
    data = {**data, "__schema": {**data["__schema"], "directives": []}}
    try:
        return build_client_schema(data)
    except Exception:  # a partial or odd answer: no schema rather than a crash
        return None


# ---------------------------------------------------------------- reading the schema


def operations(schema: GraphQLSchema) -> list[dict[str, str]]:
    out = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type),
                       ("subscription", schema.subscription_type)):  # fmt: skip
        for name, f in (root.fields if root else {}).items():
            args = ", ".join(f"{a}: {arg.type}" for a, arg in f.args.items())
            out.append({"kind": kind, "name": name, "signature": f"{name}({args}): {f.type}" if args
                        else f"{name}: {f.type}"})  # fmt: skip
    return out


def object_of(t: Any) -> GraphQLObjectType | None:
    named = get_named_type(t)
    return named if is_object_type(named) or is_interface_type(named) else None


def is_list(t: Any) -> bool:
    return is_list_type(get_nullable_type(t))


def required_args(f: GraphQLField) -> dict[str, GraphQLArgument]:
    return {n: a for n, a in f.args.items() if is_non_null_type(a.type) and a.default_value is Undefined}


def scalar_fields(t: GraphQLObjectType, limit: int = 30) -> list[str]:
    names = [n for n, f in t.fields.items() if is_leaf_type(get_named_type(f.type)) and not required_args(f)]
    return names[:limit]


def selection(t: Any, depth: int = 2, limit: int = 30) -> str:
    """A selection set of `t`'s fields without required arguments: its leaves, and (depth > 1) its object
    fields' leaves too, so envelopes such as {items {…}} or {edges {node {…}}} show their rows."""
    obj = object_of(t)
    if obj is None:
        return ""
    parts = scalar_fields(obj, limit)
    if depth > 1:
        for n, f in obj.fields.items():
            sub = object_of(f.type)
            if sub is None or required_args(f) or n in parts:
                continue
            inner = selection(f.type, depth - 1, limit)
            if inner:
                parts.append(f"{n} {inner}")
    return "{ " + " ".join(parts or ["__typename"]) + " }"


def example_value(schema: GraphQLSchema, t: Any, name: str = "", depth: int = 0) -> Any:
    """A plausible value for an input of type `t` (the JSON a variable would carry)."""
    nullable = get_nullable_type(t)
    if is_list_type(nullable):
        return [example_value(schema, nullable.of_type, name, depth + 1)]
    named = get_named_type(t)
    if is_enum_type(named):
        return next(iter(named.values))
    if is_input_object_type(named):
        if depth > 3:
            return {}
        return {
            k: example_value(schema, f.type, k, depth + 1)
            for k, f in named.fields.items()
            if is_non_null_type(f.type) and f.default_value is Undefined
        }
    kind = named.name.lower()
    if kind in ("int", "long", "bigint"):
        return 1
    if kind in ("float", "decimal"):
        return 1.5
    if kind == "boolean":
        return True
    if "date" in kind or "time" in kind:
        return "2024-01-01T00:00:00.000Z"
    if "uuid" in kind:
        return "00000000-0000-4000-8000-000000000000"
    if "mail" in kind or "mail" in name.lower():
        return "bimpl@example.com"
    if "json" in kind:
        return {}
    return "bimpl"


def text_inputs(schema: GraphQLSchema, f: GraphQLField, text: str, *, skip: str = "") -> dict[str, Any]:
    """Arguments for `f` that carry `text` in every free-text input, optional ones too (an update's input
    object has no required field): what makes a change visible when the row is read back."""
    out: dict[str, Any] = {}
    for n, a in f.args.items():
        named = get_named_type(a.type)
        if n == skip or is_list(a.type):
            continue
        if named.name == "String" and not ID_ARG.match(n):
            out[n] = text
        elif is_input_object_type(named):
            value = example_value(schema, a.type, n)
            for k, sub in named.fields.items():
                if (
                    get_named_type(sub.type).name == "String"
                    and not is_list(sub.type)
                    and not ID_ARG.match(k)
                ):
                    value[k] = text
            out[n] = value
    return out


@dataclass
class Call:
    """One operation on one root field, with its arguments as variables."""

    kind: str  # "query" or "mutation"
    field: str
    args: dict[str, GraphQLArgument]
    values: dict[str, Any]
    select: str

    def text(self, alias: str = "") -> str:
        decl = ", ".join(f"${n}: {a.type}" for n, a in self.args.items() if n in self.values)
        pass_ = ", ".join(f"{n}: ${n}" for n in self.args if n in self.values)
        head = f"{self.kind} BimplProbe" + (f"({decl})" if decl else "")
        body = (
            f"{alias}{self.field}"
            + (f"({pass_})" if pass_ else "")
            + (f" {self.select}" if self.select else "")
        )
        return f"{head} {{ {body} }}"


def call(schema: GraphQLSchema, kind: str, name: str, values: dict[str, Any] | None = None,
         select: str | None = None, depth: int = 2) -> Call:  # fmt: skip
    """A call of root field `name` with its required arguments filled (unless `values` gives them)."""
    root = schema.query_type if kind == "query" else schema.mutation_type
    assert root is not None
    f = root.fields[name]
    given = dict(values or {})
    for n, a in required_args(f).items():
        given.setdefault(n, example_value(schema, a.type, n))
    return Call(kind, name, dict(f.args), given, selection(f.type, depth) if select is None else select)


def root_fields(schema: GraphQLSchema, kind: str = "query") -> Iterator[tuple[str, GraphQLField]]:
    root = schema.query_type if kind == "query" else schema.mutation_type
    yield from ((root.fields.items()) if root else ())


def by_id_fields(schema: GraphQLSchema) -> list[tuple[str, str]]:
    """Root query fields that fetch one object by one id-like argument: (field, argument)."""
    out = []
    for name, f in root_fields(schema):
        req = required_args(f)
        if len(req) != 1 or object_of(f.type) is None or is_list(f.type):
            continue
        ((arg, a),) = req.items()
        if ID_ARG.match(arg) and is_leaf_type(get_named_type(a.type)):
            out.append((name, arg))
    return out


def id_value(arg: GraphQLArgument, value: Any) -> Any:
    """An id as the argument's type wants it: Int ids as numbers, ID and String as text."""
    kind = get_named_type(arg.type).name
    if kind == "Int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


def bounds_only(f: GraphQLField) -> bool:
    """The field needs no argument but list bounds (`first: Int!`), which calls fill with 1."""
    return all(LIMIT_ARG.match(n) for n in required_args(f))


def list_fields(schema: GraphQLSchema) -> list[str]:
    """Root query fields that list objects (directly or in an envelope such as a connection) and need no
    argument but list bounds."""
    out = []
    for name, f in root_fields(schema):
        obj = object_of(f.type)
        if obj is None or not bounds_only(f):
            continue
        if is_list(f.type) or any(is_list(sub.type) and object_of(sub.type) for sub in obj.fields.values()):
            out.append(name)
    return out


def cycle_path(schema: GraphQLSchema, max_len: int = 6) -> list[tuple[str, GraphQLField]] | None:
    """The shortest walk from a root query field (no required arguments beyond list bounds) into a type that
    leads back to itself (Book.author -> Author.books -> Book): what a too-deep query repeats."""

    def usable(f: GraphQLField) -> bool:
        return object_of(f.type) is not None and bounds_only(f)

    best: list[tuple[str, GraphQLField]] | None = None
    for rname, rf in root_fields(schema):
        if not usable(rf):
            continue
        queue = [[(rname, rf)]]
        steps = 0
        while queue and steps < 2000:
            walk = queue.pop(0)
            steps += 1
            if len(walk) >= max_len or (best is not None and len(walk) + 1 >= len(best)):
                break
            seen = [object_of(f.type).name for _, f in walk]  # type: ignore[union-attr]
            here = object_of(walk[-1][1].type)
            for n, f in here.fields.items():  # type: ignore[union-attr]
                sub = object_of(f.type)
                if sub is None or not usable(f) or sub.name.startswith("__"):
                    continue
                if sub.name in seen:
                    best = [*walk, (n, f)]
                    break
                queue.append([*walk, (n, f)])
            else:
                continue
            break
    return best


def nested_query(path: list[tuple[str, GraphQLField]], depth: int) -> str:
    """A query `depth` levels deep: the path's root field, then its cycle repeated. Lists are bounded to one
    item where the field takes a bound, so the server does little work when it does execute it."""
    root, *rest = path
    # The cycle: from the first repeated type to the end.
    names = [object_of(f.type).name for _, f in path]  # type: ignore[union-attr]
    last = names[-1]
    start = names.index(last)
    loop = path[start + 1 :]
    steps = [root, *rest[:start]]
    while len(steps) < depth:
        steps += loop
    steps = steps[:depth]

    def call_of(name: str, f: GraphQLField) -> str:
        bound = next((a for a in f.args if LIMIT_ARG.match(a) and is_leaf_type(get_named_type(f.args[a].type))
                      and get_named_type(f.args[a].type).name == "Int"), None)  # fmt: skip
        return f"{name}({bound}: 1)" if bound else name

    text = "__typename"
    for name, f in reversed(steps):
        text = f"{call_of(name, f)} {{ {text} }}"
    return "query BimplDepth { " + text + " }"


def depth_of(query: str) -> int:
    depth = best = 0
    for ch in query:
        depth += ch == "{"
        depth -= ch == "}"
        best = max(best, depth)
    return best - 1  # the operation's own braces
