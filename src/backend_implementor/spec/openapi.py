"""OpenAPI 3.x -> backend spec, for resource-shaped paths only.

A path maps when it is `/things` (GET list / POST create) or `/things/{id}` (GET / PUT / PATCH / DELETE)
and a JSON schema for its fields can be found (create body, update body, or a JSON response). Everything
else — actions (`/recipes/upload`, `/create_cart`), nested collections, HTML-only endpoints, auth RPCs —
is reported with the reason instead of guessed. The result is validated like any hand-written spec;
a resource that would not validate is dropped and reported, so the output always passes `spec check`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backend_implementor.spec.errors import SpecIssue
from backend_implementor.spec.model import ITEM_TYPES
from backend_implementor.spec.semantic import (
    RESERVED_FIELDS,
    RESERVED_RESOURCES,
    SQL_RESERVED,
    TS_RESERVED,
)

METHODS = ("get", "post", "put", "patch", "delete")
_ALL_METHODS = (*METHODS, "head", "options", "trace")
_PREFIX_RE = re.compile(r"^(api|rest|v\d+(\.\d+)*)$", re.IGNORECASE)
_PARAM_RE = re.compile(r"^\{[^{}/]+\}$")
# Leading words that make a single-segment path an RPC action rather than a collection noun.
_VERBS = {
    "add", "create", "get", "set", "retrieve", "fetch", "update", "delete", "remove", "invite", "list",
    "search", "find", "upload", "download", "send", "reset", "verify", "check", "calculate", "compute",
    "convert", "generate", "process", "run", "execute", "submit", "register", "login", "logout", "signin",
    "signup", "sign", "authenticate", "auth", "refresh", "validate", "import", "export", "render", "parse",
}  # fmt: skip
_AUTH_WORDS = {"login", "logout", "register", "signin", "signup", "sign_in", "sign_up", "token", "refresh",
               "authenticate", "auth", "me"}  # fmt: skip


@dataclass
class ImportEntry:
    path: str  # the OpenAPI path (or "components" / "(document)")
    mapped: bool
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ImportResult:
    spec: dict[str, Any]
    entries: list[ImportEntry] = field(default_factory=list)

    @property
    def skipped(self) -> list[ImportEntry]:
        return [e for e in self.entries if not e.mapped]

    def report(self) -> str:
        lines = [f"mapped   {e}" for e in self.entries if e.mapped]
        lines += [f"skipped  {e}" for e in self.entries if not e.mapped]
        return "\n".join(lines)


class OpenAPIImportError(Exception):
    """The document is not an OpenAPI 3.x document we can read at all."""


def snake(name: str) -> str:
    """'avgRating' -> 'avg_rating', 'line-items' -> 'line_items', '2fa' -> 'f_2fa'."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"[^a-zA-Z0-9]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    if s and not s[0].isalpha():
        s = "f_" + s
    return s[:63].rstrip("_")


def kebab(name: str) -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    s = re.sub(r"[^a-zA-Z0-9]+", "-", s).strip("-").lower()
    s = re.sub(r"-+", "-", s)
    if not s or not s[0].isalpha():
        s = "api-" + s if s else "imported-api"
    return s[:214].rstrip("-")


class _Resolver:
    """Resolves local `$ref`s ('#/components/schemas/X'); remote refs and cycles become None + a note."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc

    def resolve(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        depth = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen or depth > 32:
                return None
            seen = (*seen, ref)
            target: Any = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    return None
            node = target
            depth += 1
        return node

    def object_schema(self, schema: Any) -> dict[str, Any] | None:
        """The properties/required of an object schema, merging `allOf`; None when it is not an object."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return None
        props: dict[str, Any] = {}
        required: list[str] = []
        for part in [schema, *[self.resolve(s) for s in schema.get("allOf", []) if isinstance(s, dict)]]:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("properties"), dict):
                for k, v in part["properties"].items():
                    props.setdefault(str(k), v)
            if isinstance(part.get("required"), list):
                required += [str(r) for r in part["required"]]
        if not props:
            return None
        return {"properties": props, "required": required}


def _json_schema(op: Any, where: str, resolver: _Resolver) -> Any:
    """The JSON schema of an operation's request body (`where='body'`) or success response."""
    if not isinstance(op, dict):
        return None
    if where == "body":
        holder = resolver.resolve(op.get("requestBody"))
    else:
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return None
        holder = next(
            (
                resolver.resolve(responses[c])
                for c in ("200", "201", 200, 201, "2XX", "default")
                if c in responses
            ),
            None,
        )
    if not isinstance(holder, dict) or not isinstance(holder.get("content"), dict):
        return None
    for ctype, media in holder["content"].items():
        if isinstance(ctype, str) and ("json" in ctype or ctype == "*/*") and isinstance(media, dict):
            return media.get("schema")
    return None


def _has_non_json_content(op: Any, resolver: _Resolver) -> str | None:
    if not isinstance(op, dict) or not isinstance(op.get("responses"), dict):
        return None
    for code in ("200", "201", 200, 201):
        resp = resolver.resolve(op["responses"].get(code))
        if isinstance(resp, dict) and isinstance(resp.get("content"), dict) and resp["content"]:
            types = [str(t) for t in resp["content"]]
            if not any("json" in t for t in types):
                return ", ".join(types)
    return None


def _field(
    name: str, prop: Any, required: bool, resolver: _Resolver, notes: list[str]
) -> dict[str, Any] | None:
    from backend_implementor.spec.semantic import _PY_ONLY_REGEX

    schema = resolver.resolve(prop)
    if not isinstance(schema, dict):
        notes.append(f"field '{name}': unresolvable schema, imported as json")
        return {"type": "json"}
    t = schema.get("type")
    if isinstance(t, list):  # OpenAPI 3.1 nullable: ["string", "null"]
        non_null = [x for x in t if x != "null"]
        t = non_null[0] if len(non_null) == 1 else None
    fmt = schema.get("format")
    out: dict[str, Any] = {}
    if (
        isinstance(schema.get("enum"), list)
        and schema["enum"]
        and all(isinstance(v, str) for v in schema["enum"])
    ):
        out = {"type": "enum", "values": list(dict.fromkeys(v for v in schema["enum"] if v.strip()))}
        if not out["values"]:
            out = {"type": "string"}
    elif t == "string":
        kind = {"date": "date", "date-time": "datetime", "uuid": "uuid", "email": "email", "uri": "url",
                "url": "url"}.get(str(fmt), "string")  # fmt: skip
        out = {"type": kind}
        if fmt == "password":
            out["private"] = True
            notes.append(f"field '{name}': format password -> private (stored as given; hash it yourself)")
        if kind in ("string", "email", "url"):
            for src, dst in (("minLength", "min_length"), ("maxLength", "max_length")):
                if (
                    isinstance(schema.get(src), int)
                    and not isinstance(schema.get(src), bool)
                    and schema[src] >= 0
                ):
                    out[dst] = schema[src]
        if kind == "string" and isinstance(schema.get("pattern"), str):
            pat = schema["pattern"]
            try:
                re.compile(pat)
                if not any(rx.search(pat) for rx, _ in _PY_ONLY_REGEX):
                    out["pattern"] = pat
                else:
                    notes.append(
                        f"field '{name}': pattern dropped (not portable between Python and JavaScript)"
                    )
            except (re.error, OverflowError, RecursionError):
                notes.append(f"field '{name}': invalid pattern dropped")
    elif t in ("integer", "number"):
        out = {"type": t}
        for src, dst in (("minimum", "min"), ("maximum", "max")):
            v = schema.get(src)
            if (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and (t == "number" or float(v).is_integer())
            ):
                out[dst] = int(v) if t == "integer" else v
    elif t == "boolean":
        out = {"type": "boolean"}
    elif t == "array":
        items = resolver.resolve(schema.get("items"))
        inner = _field(name, items, False, resolver, []) if isinstance(items, dict) else None
        if inner and inner["type"] in ITEM_TYPES:
            out = {"type": "array", "items": inner["type"]}
            if inner["type"] == "enum":
                out["values"] = inner["values"]
        else:
            out = {"type": "json"}
            notes.append(f"field '{name}': array of objects imported as json")
    elif t == "object" or "properties" in schema:
        out = {"type": "json"}
        notes.append(f"field '{name}': nested object imported as json")
    else:
        out = {"type": "json"}
        notes.append(f"field '{name}': unsupported type {t!r}, imported as json")
    if required:
        out["required"] = True
    if isinstance(schema.get("description"), str) and schema["description"].strip():
        out["description"] = " ".join(schema["description"].split())[:500]
    if schema.get("readOnly") is True and not required:
        out["readonly"] = True
    if schema.get("writeOnly") is True:
        out["private"] = True
    return out


def _split(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def import_openapi(doc: Any) -> ImportResult:
    """Map an OpenAPI 3.x document (already parsed) to spec data plus a per-path report."""
    if not isinstance(doc, dict):
        raise OpenAPIImportError("not an OpenAPI document (expected a mapping at the top level)")
    version = doc.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        if "swagger" in doc:
            raise OpenAPIImportError("Swagger 2.0 is not supported; convert it to OpenAPI 3.x first")
        raise OpenAPIImportError("not an OpenAPI 3.x document (no `openapi: 3.x` key)")
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        paths = {}
    resolver = _Resolver(doc)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    title = info.get("title") if isinstance(info.get("title"), str) else ""
    entries: list[ImportEntry] = []

    str_paths = [p for p in paths if isinstance(p, str)]
    for p in paths:
        if not isinstance(p, str):
            entries.append(ImportEntry(str(p), False, "path key is not a string"))
    # Drop a shared version prefix (/api, /v1, /api/v2) so /api/v1/books maps to `books`.
    prefix: list[str] = []
    split = {p: _split(p) for p in str_paths}
    while split and all(
        len(s) > len(prefix) + 1 and _PREFIX_RE.match(s[len(prefix)]) for s in split.values()
    ):
        first = next(iter(split.values()))[len(prefix)]
        if not all(s[len(prefix)] == first for s in split.values()):
            break
        prefix.append(first)

    secured_global = bool(doc.get("security"))
    has_schemes = bool(
        ((doc.get("components") or {}) if isinstance(doc.get("components"), dict) else {}).get(
            "securitySchemes"
        )
    )
    auth_paths: list[str] = []
    groups: dict[str, dict[str, Any]] = {}  # resource segment -> {"collection": (path, item), "item": ...}
    for p in str_paths:
        item = resolver.resolve(paths[p])
        segs = split[p][len(prefix) :]
        if not isinstance(item, dict):
            entries.append(ImportEntry(p, False, "path item is not a mapping"))
            continue
        ops = {m: item[m] for m in METHODS if isinstance(item.get(m), dict)}
        others = [m for m in _ALL_METHODS if m not in METHODS and m in item]
        if not ops:
            why = f"only {', '.join(o.upper() for o in others)}" if others else "no operations"
            entries.append(ImportEntry(p, False, f"{why}; nothing to map"))
            continue
        if not segs:
            entries.append(ImportEntry(p, False, "root path, not resource-shaped"))
            continue
        last_literal = next((s for s in reversed(segs) if not _PARAM_RE.match(s)), "")
        if any(snake(s) in _AUTH_WORDS for s in segs if not _PARAM_RE.match(s)):
            auth_paths.append(p)
            entries.append(
                ImportEntry(
                    p,
                    False,
                    "authentication endpoint: not mapped; the generated backend has its own "
                    "/auth/register, /auth/login, /auth/refresh, /auth/logout and /auth/me (added an `auth` block)",
                )
            )
            continue
        if _PARAM_RE.match(segs[0]):
            entries.append(ImportEntry(p, False, "starts with a path parameter, not resource-shaped"))
            continue
        if len(segs) == 1:
            kind = "collection"
        elif len(segs) == 2 and _PARAM_RE.match(segs[1]):
            kind = "item"
        elif len(segs) >= 3 and _PARAM_RE.match(segs[1]):
            entries.append(
                ImportEntry(
                    p,
                    False,
                    f"nested path under /{segs[0]}/{segs[1]}, not resource-shaped "
                    f"(model '{last_literal}' as its own resource with a ref to '{snake(segs[0])}')",
                )
            )
            continue
        else:
            entries.append(ImportEntry(p, False, "action path, not resource-shaped"))
            continue
        words = snake(segs[0]).split("_")
        if words[0] in _VERBS:
            entries.append(
                ImportEntry(p, False, f"action path ('{words[0]}…' names an operation), not resource-shaped")
            )
            continue
        if kind == "collection":
            bad = [m.upper() for m in ops if m not in ("get", "post")]
        else:
            bad = [m.upper() for m in ops if m == "post"]
        if bad:
            entries.append(
                ImportEntry(p, False, f"{', '.join(bad)} on a {kind} path is not a resource operation")
            )
            continue
        groups.setdefault(segs[0], {})[kind] = (p, ops)

    resources: dict[str, Any] = {}
    any_secured = False
    for seg, g in groups.items():
        name = snake(seg)
        paths_here = [g[k][0] for k in ("collection", "item") if k in g]
        ops_all = {(k, m): op for k in ("collection", "item") if k in g for m, op in g[k][1].items()}
        reason = _resource_name_problem(name)
        if reason is None and name == "users" and (auth_paths or secured_global):
            reason = (
                "'users' is reserved when auth is on: the generated backend's built-in /users replaces it"
            )
        if reason:
            entries += [ImportEntry(p, False, reason) for p in paths_here]
            continue
        notes: list[str] = []
        fields: dict[str, Any] = {}
        body_required: set[str] = set()
        sources = [
            (("collection", "post"), "body"),
            (("item", "put"), "body"),
            (("item", "patch"), "body"),
            (("item", "get"), "response"),
            (("collection", "get"), "response"),
            (("collection", "post"), "response"),
        ]
        for (k, m), where in sources:
            schema = _json_schema(ops_all.get((k, m)), where, resolver)
            schema = resolver.resolve(schema)
            if k == "collection" and m == "get" and isinstance(schema, dict):
                # a list is an array of items, or an envelope {items|data|results: [...]}
                if schema.get("type") == "array":
                    schema = resolver.resolve(schema.get("items"))
                else:
                    env = resolver.object_schema(schema)
                    arr = next(
                        (resolver.resolve(env["properties"][key]) for key in ("items", "data", "results")
                         if env and key in env["properties"]),
                        None,
                    )  # fmt: skip
                    schema = resolver.resolve(arr.get("items")) if isinstance(arr, dict) else None
            obj = resolver.object_schema(schema)
            if obj is None:
                continue
            for prop, sub in obj["properties"].items():
                fname = snake(prop)
                if not fname:
                    notes.append(f"property {prop!r}: no usable name, skipped")
                    continue
                if fname in RESERVED_FIELDS:
                    continue  # id / created_at / updated_at / owner_id come with every generated table
                if fname in SQL_RESERVED or fname in TS_RESERVED:
                    notes.append(f"property '{prop}' renamed to '{fname}_value' ({fname} is a reserved word)")
                    fname = f"{fname}_value"
                if fname in fields:
                    continue
                if fname != prop:
                    notes.append(f"property '{prop}' -> field '{fname}'")
                req = where == "body" and m == "post" and prop in obj["required"]
                if req:
                    body_required.add(fname)
                f = _field(fname, sub, req, resolver, notes)
                if f is not None:
                    fields[fname] = f
        if not fields:
            html = next((t for op in ops_all.values() if (t := _has_non_json_content(op, resolver))), None)
            why = (
                f"responses are {html}, not JSON"
                if html
                else "no JSON schema for its fields in any operation"
            )
            entries += [ImportEntry(p, False, f"resource '{name}' skipped: {why}") for p in paths_here]
            continue
        access: dict[str, Any] = {}
        action_of = {("collection", "get"): "list", ("collection", "post"): "create", ("item", "get"): "read",
                     ("item", "put"): "update", ("item", "patch"): "update", ("item", "delete"): "delete"}  # fmt: skip
        for key, op in ops_all.items():
            action = action_of[key]
            # an operation-level `security: []` opts out of the document-wide requirement
            secured = bool(op["security"]) if "security" in op else secured_global
            access[action] = "authenticated" if secured and has_schemes else "public"
            any_secured |= access[action] == "authenticated"
        missing = [a for a in ("list", "read", "create", "update", "delete") if a not in access]
        res: dict[str, Any] = {"fields": fields}
        if access:
            res["access"] = access
        resources[name] = res
        msg = f"mapped to resource '{name}' ({len(fields)} fields)"
        if missing:
            msg += f"; the document has no {'/'.join(missing)} operation but the generated backend will"
        entries += [ImportEntry(p, True, msg) for p in paths_here]
        entries += [ImportEntry(paths_here[0], True, f"note: {n}") for n in notes]

    spec: dict[str, Any] = {"name": kebab(title) if title else "imported-api"}
    if isinstance(info.get("description"), str) and info["description"].strip():
        spec["description"] = " ".join(info["description"].split())
    elif title:
        spec["description"] = title
    if auth_paths or any_secured:
        spec["auth"] = {"roles": ["user"]}
    spec["resources"] = resources
    result = ImportResult(spec, entries)
    _make_valid(result)
    return result


def _resource_name_problem(name: str) -> str | None:
    if not name:
        return "no usable resource name"
    if name in RESERVED_RESOURCES:
        return f"'{name}' is reserved: {RESERVED_RESOURCES[name]}"
    if name in SQL_RESERVED or name in TS_RESERVED:
        return f"'{name}' is a reserved word in SQL or TypeScript; rename the resource by hand"
    return None


def _make_valid(result: ImportResult) -> None:
    """Drop whatever the validator still rejects (each drop reported), so the written spec always passes."""
    import yaml

    from backend_implementor.spec.loader import check_text

    for _ in range(100):
        text = yaml.safe_dump(result.spec, sort_keys=False, allow_unicode=True)
        spec, issues = check_text(text, "<import>")
        if spec is not None:
            return
        first: SpecIssue = issues[0]
        parts = first.path.split(".")
        res = result.spec["resources"]
        if len(parts) >= 4 and parts[0] == "resources" and parts[2] == "fields" and parts[1] in res:
            fname = re.sub(r"\[\d+\]$", "", parts[3])
            res[parts[1]]["fields"].pop(fname, None)
            result.entries.append(
                ImportEntry(f"resources.{parts[1]}", True, f"note: field '{fname}' dropped: {first.message}")
            )
            if not res[parts[1]]["fields"]:
                res.pop(parts[1])
                result.entries.append(
                    ImportEntry(f"resources.{parts[1]}", False, "resource dropped: no fields left")
                )
        elif len(parts) >= 2 and parts[0] == "resources" and parts[1] in res:
            res.pop(parts[1])
            result.entries.append(
                ImportEntry(f"resources.{parts[1]}", False, f"resource dropped: {first.message}")
            )
        elif parts[0] == "name":
            result.spec["name"] = "imported-api"
        elif parts[0] == "description":
            result.spec.pop("description", None)
        else:
            raise OpenAPIImportError(f"internal: the imported spec does not validate: {first}")
    raise OpenAPIImportError("internal: the imported spec could not be made valid")


# Anything YAML would not accept in a comment, or would read as a line break (\x85, \u2028, \u2029).
_UNSAFE_IN_COMMENT = re.compile("[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _comment(text: str) -> str:
    return _UNSAFE_IN_COMMENT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_yaml(result: ImportResult, source: str) -> str:
    """The spec as YAML, fields in flow style, with the import report as a leading comment."""
    import yaml

    def flow(value: Any) -> str:
        text = yaml.safe_dump(
            value, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False
        )
        return text.removesuffix(
            "\n...\n"
        ).strip()  # a bare scalar is dumped as a document with an end marker

    head = [f"# Imported from {source} by `bimpl spec from-openapi`."]
    for e in result.entries:
        head.append(_comment(f"# {'mapped ' if e.mapped else 'SKIPPED'} {e}"))
    spec = result.spec
    out = [*head, f"name: {flow(spec['name'])}"]
    if "description" in spec:
        out.append(f"description: {flow(spec['description'])}")
    if "auth" in spec:
        out.append("auth:")
        out += [f"  {k}: {flow(v)}" for k, v in spec["auth"].items()]
    if not spec["resources"]:
        out.append("resources: {}")
    else:
        out.append("resources:")
        for name, res in spec["resources"].items():
            out.append(f"  {name}:")
            out.append("    fields:")
            out += [f"      {f}: {flow(v)}" for f, v in res["fields"].items()]
            for key in ("filters", "sort", "access"):
                if key in res:
                    out.append(f"    {key}: {flow(res[key])}")
    return "\n".join(out) + "\n"
