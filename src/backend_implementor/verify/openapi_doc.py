"""Reading an OpenAPI 3 or Swagger 2.0 document: operations, parameters, bodies (JSON or form), and valid
example values."""

from __future__ import annotations

import re
import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

METHODS = ("get", "post", "put", "patch", "delete")


def deref(spec: dict | None, node: Any, _depth: int = 0) -> Any:
    """Follow local `$ref`s (`#/components/...`); anything unresolvable comes back as {}."""
    while isinstance(node, dict) and "$ref" in node and _depth < 20:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or not spec:
            return {}
        cur: Any = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            cur = cur.get(part) if isinstance(cur, dict) else None
            if cur is None:
                return {}
        node = cur
        _depth += 1
    return node if node is not None else {}


def merged_schema(spec: dict | None, schema: Any, depth: int = 0) -> dict:
    """Dereference and flatten allOf (first alternative of oneOf/anyOf) into one object schema."""
    schema = deref(spec, schema)
    if not isinstance(schema, dict) or depth > 8:
        return {}
    if "allOf" in schema:
        out: dict = {k: v for k, v in schema.items() if k != "allOf"}
        props = dict(out.get("properties") or {})
        required = list(out.get("required") or [])
        for sub in schema["allOf"]:
            sub = merged_schema(spec, sub, depth + 1)
            props.update(sub.get("properties") or {})
            required += sub.get("required") or []
            for k, v in sub.items():
                out.setdefault(k, v)
        if props:
            out["properties"] = props
            out.setdefault("type", "object")
        if required:
            out["required"] = required
        return out
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            alts = [merged_schema(spec, s, depth + 1) for s in schema[key]]
            alts = [a for a in alts if a.get("type") != "null"] or alts
            return alts[0] if alts else {}
    return schema


def required_schemes(spec: dict, op: dict) -> list[str] | None:
    """The security schemes an operation requires (any one of them), from its own `security` or the global
    one: [] when auth is off or optional (`security: []`, or an empty `{}` alternative), None when neither
    the operation nor the document says."""
    security = op.get("security", spec.get("security"))
    if not isinstance(security, list):
        return None
    reqs = [req for req in security if isinstance(req, dict)]
    if not reqs or any(not req for req in reqs):
        return []
    return sorted({name for req in reqs for name in req})


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def json_body_schema(spec: dict | None, op: dict) -> dict | None:
    schema, encoding = body_schema(spec, op)
    return schema if encoding == "json" else None


def body_schema(spec: dict | None, op: dict) -> tuple[dict | None, str]:
    """The request body's schema and how it is sent: "json" or "form" (urlencoded or multipart). OpenAPI 3
    `requestBody`, or Swagger 2.0 `in: body` / `in: formData` parameters."""
    body = deref(spec, op.get("requestBody") or {})
    content = body.get("content") or {}
    for ctype, media in content.items():
        if "json" in ctype:
            return merged_schema(spec, (media or {}).get("schema") or {}), "json"
    for ctype, media in content.items():
        if ctype in FORM_TYPES:
            return merged_schema(spec, (media or {}).get("schema") or {}), "form"
    if is_swagger2(spec):
        params = [deref(spec, p) for p in op.get("parameters") or []]
        for p in params:
            if isinstance(p, dict) and p.get("in") == "body":
                return merged_schema(spec, p.get("schema") or {}), "json"
        form = [p for p in params if isinstance(p, dict) and p.get("in") == "formData" and "name" in p]
        if form:
            schema: dict = {
                "type": "object",
                "properties": {p["name"]: swagger2_param_schema(p) for p in form},
            }
            required = [p["name"] for p in form if p.get("required")]
            if required:
                schema["required"] = required
            return schema, "form"
    return None, "json"


def is_swagger2(spec: dict | None) -> bool:
    return bool(spec) and str(spec.get("swagger", "")).startswith("2")


def swagger2_param_schema(param: dict) -> dict:
    """Swagger 2.0 keeps a non-body parameter's type on the parameter itself."""
    return {k: v for k, v in param.items() if k not in ("name", "in", "required", "description")}


def base_path(spec: dict | None) -> str:
    """The path every operation's path is under: Swagger 2.0's basePath, or the path of OpenAPI 3's first
    server (`/api/v1`, `http://localhost:3000/api/v1`, variables at their defaults)."""
    if not spec:
        return ""
    if is_swagger2(spec):
        bp = str(spec.get("basePath") or "").rstrip("/")
        return bp if bp.startswith("/") else ""
    servers = spec.get("servers")
    server = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
    url = str(server.get("url") or "")
    for name, var in (server.get("variables") or {}).items():
        if isinstance(var, dict):
            url = url.replace("{" + name + "}", str(var.get("default", "")))
    path = urlsplit(url).path if "://" in url else url
    path = path.rstrip("/")
    return path if path.startswith("/") and "{" not in path else ""


def _rand(n: int = 6) -> str:
    return secrets.token_hex(n)[:n]


def example_value(spec: dict | None, schema: Any, name: str = "", depth: int = 0) -> Any:
    """A value that a validator of `schema` should accept (examples, defaults, enums, formats, bounds)."""
    schema = merged_schema(spec, schema)
    if depth > 6:
        return None
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: example_value(spec, v, k, depth + 1) for k, v in props.items() if not _read_only(spec, v)}
    if typ == "array":
        n = max(1, int(schema.get("minItems") or 1))
        return [example_value(spec, schema.get("items") or {}, name, depth + 1) for _ in range(min(n, 3))]
    if typ == "integer":
        return _number(schema, 1, int)
    if typ == "number":
        return _number(schema, 1.5, float)
    if typ == "boolean":
        return True
    return _string(schema, name)


def _read_only(spec: dict | None, schema: Any) -> bool:
    return bool(merged_schema(spec, schema).get("readOnly"))


def _number(schema: dict, default: float, cast: type) -> Any:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    value = default
    if lo is not None:
        value = lo + (1 if schema.get("exclusiveMinimum") is True else 0)
    elif hi is not None and value > hi:
        value = hi - (1 if schema.get("exclusiveMaximum") is True else 0)
    return cast(value)


_FORMATS = {
    "date": lambda: "2024-01-15",
    "date-time": lambda: "2024-01-15T10:00:00Z",
    "time": lambda: "10:00:00",
    "uuid": lambda: "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "uri": lambda: "https://example.com/a",
    "url": lambda: "https://example.com/a",
    "hostname": lambda: "example.com",
    "ipv4": lambda: "192.0.2.1",
    "email": lambda: f"bimpl-{_rand()}@example.com",
}


IDENT_NAME_RE = re.compile(r"(user_?name|login|handle|nick_?name|screen_?name|^user$|^name$)", re.I)


def _string(schema: dict, name: str) -> str:
    fmt = schema.get("format")
    if fmt in _FORMATS:
        return _FORMATS[fmt]()
    lname = name.lower()
    if "email" in lname:
        return f"bimpl-{_rand()}@example.com"
    if "url" in lname or "link" in lname:
        return "https://example.com/a"
    if "pass" in lname:
        value = f"Bimpl-{_rand(8)}-Pw9!"
    elif IDENT_NAME_RE.search(name):
        value = f"bimpl{_rand(8)}"  # usernames are often letters and digits only
    else:
        value = f"bimpl {name or 'text'} {_rand(4)}".strip()
    lo = int(schema.get("minLength") or 0)
    hi = schema.get("maxLength")
    if len(value) < lo:
        value += "x" * (lo - len(value))
    if hi is not None and len(value) > int(hi):
        hi = max(int(hi), lo)
        value = (value[: max(hi - 4, 0)] + _rand(4))[:hi]  # the random tail stays: unique fields
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not _search(pattern, value):
        value = _from_pattern(pattern, lo, hi) or value
    return value


def js_pattern(pattern: str) -> str:
    """An ECMAScript pattern as Python reads it: `$` ends the string (Python's `$` also matches before
    a final newline), and `\\d`, `\\w`, `\\b` are ASCII (Python's `\\d` takes any Unicode digit: a "٣" that
    the server's `^\\d+$` refuses)."""
    return "(?a)" + re.sub(r"(?<!\\)\$", r"\\Z", pattern)


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(js_pattern(pattern), value) is not None
    except re.error:
        return True  # an ECMAScript-only pattern: nothing better to offer than the default


_GIVEN: dict[str, set[str]] = {}  # pattern -> values handed out: a unique slug must not come back
_POOL: dict[str, list[str]] = {}  # pattern -> drawn, not yet handed out


def _draw(pattern: str, count: int) -> list[str]:
    """`count` strings drawn by hypothesis for the pattern. Not `.example()`: under CI (the `CI`
    variable) hypothesis derandomizes it, and 40 draws for ^[a-z0-9-]+$ gave 10 distinct values."""
    from hypothesis import HealthCheck, Phase, given, settings  # schemathesis' dependency
    from hypothesis import strategies as st

    drawn: list[str] = []

    @settings(
        database=None,
        derandomize=False,
        max_examples=count,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.from_regex(js_pattern(pattern), fullmatch=False))
    def collect(value: str) -> None:
        drawn.append(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect()
    return drawn


def _from_pattern(pattern: str, lo: int, hi: Any) -> str | None:
    """A fresh string the pattern accepts (an ISBN for ^[0-9]{13}$), within the length bounds, and not
    one handed out before: hypothesis draws "0" for ^[a-z0-9-]+$ often, and a unique field then
    answers 409 to the second create. Falls back to a repeat when the pattern has no fresh value."""
    handed_out = _GIVEN.setdefault(pattern, set())
    pool = _POOL.setdefault(pattern, [])
    top = int(hi) if hi is not None else None
    fallback = None
    for _ in range(3):
        if not pool:
            try:
                pool.extend(_draw(pattern, 50))
            except Exception:  # an unsupported pattern: keep the default
                return None
        for i, value in enumerate(pool):
            if lo <= len(value) <= (top if top is not None else len(value)) and "\x00" not in value:
                if value not in handed_out:
                    del pool[: i + 1]
                    handed_out.add(value)
                    return value
                fallback = fallback or value
        pool.clear()
    return fallback


@dataclass
class Param:
    name: str
    where: str  # path | query | header | cookie
    schema: dict
    required: bool = False


@dataclass
class Operation:
    method: str  # upper case
    path: str  # template, e.g. /notes/{id}
    op: dict
    params: list[Param] = field(default_factory=list)
    body_schema: dict | None = None
    secured: bool = False  # a security requirement applies (and is not optional)
    html: bool = False  # documents a text/html response
    body_encoding: str = "json"  # or "form" (application/x-www-form-urlencoded)

    @property
    def path_params(self) -> list[Param]:
        return [p for p in self.params if p.where == "path"]

    @property
    def query_params(self) -> list[Param]:
        return [p for p in self.params if p.where == "query"]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(spec: dict | None) -> list[Operation]:
    if not spec:
        return []
    out = []
    swagger2, prefix = is_swagger2(spec), base_path(spec)
    for path, item in (spec.get("paths") or {}).items():
        path = prefix + str(path)
        item = deref(spec, item)
        if not isinstance(item, dict):
            continue
        shared = [deref(spec, p) for p in item.get("parameters") or []]
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params: dict[tuple[str, str], Param] = {}
            for raw in [*shared, *(deref(spec, p) for p in op.get("parameters") or [])]:
                if not isinstance(raw, dict) or "name" not in raw or raw.get("in") in ("body", "formData"):
                    continue
                schema = swagger2_param_schema(raw) if swagger2 else raw.get("schema") or {}
                params[(raw["name"], raw.get("in", "query"))] = Param(
                    raw["name"],
                    raw.get("in", "query"),
                    merged_schema(spec, schema),
                    bool(raw.get("required")) or raw.get("in") == "path",
                )
            # Path templates name parameters the document may have forgotten to declare.
            for name in re.findall(r"{([^}]+)}", path):
                params.setdefault((name, "path"), Param(name, "path", {"type": "string"}, True))
            secured = bool(required_schemes(spec, op))
            html = any(
                "text/html" in (deref(spec, r).get("content") or {})
                for r in (op.get("responses") or {}).values()
            ) or (swagger2 and "text/html" in (op.get("produces") or spec.get("produces") or []))
            schema, encoding = body_schema(spec, op)
            out.append(
                Operation(method.upper(), path, op, list(params.values()), schema, secured, html, encoding)
            )
    return out


def fill_path(path: str, values: dict[str, Any]) -> str:
    """Substitute path parameters, percent-encoding each value whole (a "/" in a payload stays inside)."""
    return re.sub(r"{([^}]+)}", lambda m: quote(str(values.get(m.group(1), "1")), safe=""), path)
