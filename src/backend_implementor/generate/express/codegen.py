"""Spec field -> the TypeScript / SQL snippets the templates print.

Each resource field becomes one `FieldCode` holding every form it takes in the generated project (drizzle
column, SQL column, zod schemas for create/update/response/filter, JSON serialisation). The templates only
arrange these snippets, so the type mapping lives in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backend_implementor.generate.errors import GenerateError
from backend_implementor.spec.model import Field, Resource, Spec

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EMAIL_MAX = 320
URL_MAX = 2048
TIMESTAMP_FIELDS = ("created_at", "updated_at")


def ts(value: Any) -> str:
    """A JSON-compatible value as a TypeScript literal (single-quoted strings, like the rest of the code)."""
    if isinstance(value, str):
        return "'" + _JS_ESCAPE.sub(_js_escape, value) + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, list):
        return "[" + ", ".join(ts(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{ts(k)}: {ts(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TypeScript literal for {value!r}")


# Inside a single-quoted JS string: the quote, the backslash and every line terminator or control character.
_JS_ESCAPE = re.compile(r"['\\\x00-\x1f\x7f\u2028\u2029]")
# Inside a template literal: the backtick, `${`, the backslash and control characters (a raw \r would be
# read back as \n).
_JS_TEMPLATE_ESCAPE = re.compile(r"[`\\\x00-\x1f\x7f]|\$(?=\{)")
_JS_SHORT = {"`": "\\`", "$": "\\$", "'": "\\'", "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _js_escape(m: re.Match[str]) -> str:
    c = m.group()
    return _JS_SHORT.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def js_number(x: int | float) -> str:
    """A number as JavaScript's Number#toString prints it (1.0 -> 1, 1e-05 -> 0.00001, 1e21 -> 1e+21), so
    defaults rendered here match what drizzle-kit computes from schema.ts."""
    if isinstance(x, int) and abs(x) > 2**53:
        x = float(x)  # what a JS number literal becomes
    text = repr(x + 0)  # -0.0 + 0 is 0.0, printed "0" like JS
    if "e" not in text:
        return text.removesuffix(".0")
    mantissa, exp = text.split("e")
    if -7 < int(exp) < 21:  # JS writes these positionally, with the same shortest digits as Python
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if int(exp) > 0 else '-'}{abs(int(exp))}"


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def regex_literal(pattern: str) -> str:
    # A JS regex literal; only an unescaped `/` needs escaping to survive inside /.../.
    return "/" + re.sub(r"(?<!\\)/", r"\\/", pattern) + "/"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def pascal(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def singular(name: str) -> str:
    if name.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


# ---- per-type building blocks -------------------------------------------------------------------

_SCALAR_SQL = {
    "text": "text",
    "integer": "integer",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamp with time zone",
    "uuid": "uuid",
    "url": "text",
    "enum": "text",
    "json": "jsonb",
    "ref": "uuid",
}


def _sql_type(f: Field, kind: str) -> str:
    if kind == "string":
        return f"varchar({f.max_length})" if f.max_length else "text"
    if kind == "email":
        return f"varchar({max(f.max_length or EMAIL_MAX, 1)})"
    if kind == "decimal":
        return f"numeric({f.precision}, {f.scale})"
    return _SCALAR_SQL[kind]


def _drizzle_column(f: Field, kind: str, col: str, spec: Spec) -> tuple[str, str]:
    """(drizzle builder expression, pg-core import name)."""
    name = ts(col)
    if kind == "string":
        return (
            (f"varchar({name}, {{ length: {f.max_length} }})", "varchar")
            if f.max_length
            else (f"text({name})", "text")
        )
    if kind == "email":
        return f"varchar({name}, {{ length: {f.max_length or EMAIL_MAX} }})", "varchar"
    if kind in ("text", "url"):
        return f"text({name})", "text"
    if kind == "enum":
        return f"text({name}, {{ enum: {ts(f.values)} }})", "text"
    if kind == "integer":
        return f"integer({name})", "integer"
    if kind == "number":
        return f"doublePrecision({name})", "doublePrecision"
    if kind == "decimal":
        return f"numeric({name}, {{ precision: {f.precision}, scale: {f.scale} }})", "numeric"
    if kind == "boolean":
        return f"boolean({name})", "boolean"
    if kind == "date":
        return f"date({name}, {{ mode: 'string' }})", "date"
    if kind == "datetime":
        return f"timestamp({name}, {{ withTimezone: true, mode: 'string' }})", "timestamp"
    if kind in ("uuid", "ref"):
        return f"uuid({name})", "uuid"
    if kind == "json":
        return f"jsonb({name})", "jsonb"
    raise GenerateError(f"unsupported field type {kind!r}")


def _zod_input(f: Field, kind: str) -> str:
    """The zod schema that validates one value of this kind in a request body."""
    if kind in ("string", "text"):
        # text() refuses U+0000 (and documents it); a field's own pattern decides that for itself.
        z = "z.string()" if f.pattern else "text()"
        if f.min_length is not None:
            z += f".min({f.min_length})"
        if f.max_length is not None:
            z += f".max({f.max_length})"
        if f.pattern:
            z += f".regex({regex_literal(f.pattern)})"
        return z
    if kind == "email":
        return f"email().max({f.max_length or EMAIL_MAX})"
    if kind == "url":
        # Only web URLs: `javascript:` and friends are rejected at the door.
        return f"z.url({{ protocol: /^https?$/ }}).max({f.max_length or URL_MAX})"
    if kind == "enum":
        return f"z.enum({ts(f.values)})"
    if kind == "integer":
        lo = INT32_MIN if f.min is None else max(int(f.min), INT32_MIN)
        hi = INT32_MAX if f.max is None else min(int(f.max), INT32_MAX)
        return f"z.number().int().min({lo}).max({hi})"
    if kind == "number":
        z = "z.number()"
        if f.min is not None:
            z += f".min({f.min!r})"
        if f.max is not None:
            z += f".max({f.max!r})"
        return z
    if kind == "decimal":
        return f"decimal({f.precision}, {f.scale}, {ts(f.min)}, {ts(f.max)})"
    if kind == "boolean":
        return "z.boolean()"
    if kind == "date":
        return "isoDate()"
    if kind == "datetime":
        return "isoDateTime()"
    if kind in ("uuid", "ref"):
        return "z.uuid()"
    if kind == "json":
        return "JsonValue"
    raise GenerateError(f"unsupported field type {kind!r}")


def _or_null(zod: str) -> str:
    # zod-to-openapi drops .nullable() on a reference to a recursive (z.lazy) schema; a union keeps it.
    return f"z.union([{zod}, z.null()])" if zod == "JsonValue" else zod + ".nullable()"


def _zod_output(f: Field, kind: str) -> str:
    """The response schema for one value (documents the shape; constraints are the input's business)."""
    return {
        "string": "z.string()",
        "text": "z.string()",
        "email": "z.string()",
        "url": "z.string()",
        "integer": "z.number().int()",
        "number": "z.number()",
        "decimal": "z.string()",
        "boolean": "z.boolean()",
        "date": "z.iso.date()",
        "datetime": "z.iso.datetime()",
        "uuid": "z.uuid()",
        "ref": "z.uuid()",
        "json": "JsonValue",
    }.get(kind) or (f"z.enum({ts(f.values)})" if kind == "enum" else "z.unknown()")


def _zod_query(f: Field, kind: str) -> str:
    """A filter value arrives as a query string, so numbers and booleans are converted."""
    if kind in ("integer", "number"):
        return f"{'queryInteger' if kind == 'integer' else 'queryNumber'}({_zod_input(f, kind)})"
    if kind == "boolean":
        return "z.enum(['true', 'false']).transform((value) => value === 'true')"
    if kind in ("json", "array"):
        raise GenerateError(f"cannot filter on a {kind} field")
    return _zod_input(f, kind)


def _sql_default(f: Field, kind: str) -> str:
    """The DEFAULT clause as drizzle-kit writes it for the column's `.default(...)` in schema.ts."""
    v = f.default
    if kind == "array":
        return sql_str(_pg_array(v or []))
    if kind == "json":
        return sql_str(_js_json(v)) + "::jsonb"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float) and kind != "decimal":
        return js_number(v)
    return sql_str(str(v))


def _snapshot_default(f: Field, kind: str) -> Any:
    """drizzle-kit's snapshot keeps numbers and booleans as JSON values and everything else as SQL text."""
    v = f.default
    if kind not in ("array", "json", "decimal") and isinstance(v, bool | int | float):
        return int(v) if isinstance(v, float) and v.is_integer() else v  # JSON.stringify(1.0) is 1
    return _sql_default(f, kind)


def _js_json(v: Any) -> str:
    """JSON.stringify's output: keys in insertion order (what schema.ts's literal gives drizzle), no spaces,
    numbers as JavaScript prints them."""
    if isinstance(v, dict):
        return "{" + ",".join(f"{_js_json(k)}:{_js_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_js_json(x) for x in v) + "]"
    if isinstance(v, int | float) and not isinstance(v, bool):
        return js_number(v)
    return json.dumps(v, ensure_ascii=False)


def _pg_array(items: list[Any]) -> str:
    """A PostgreSQL array literal: {1,2} or {"a","b c"} (elements quoted and escaped)."""
    out = []
    for x in items:
        if isinstance(x, bool):
            out.append("true" if x else "false")
        elif isinstance(x, int | float):
            out.append(js_number(x))
        else:
            out.append('"' + str(x).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def _drizzle_default(f: Field, kind: str) -> str:
    return ts(str(f.default)) if kind == "decimal" else ts(f.default)


def _misquoted_by_drizzle_kit(kind: str, v: Any) -> bool:
    """drizzle-kit neither doubles a `'` in array and JSON defaults nor escapes `"` and `\\` inside array
    elements; such defaults are written as SQL so its snapshot, and any migration it writes, stay valid."""
    if kind == "json":
        return "'" in _js_json(v)
    return kind == "array" and any(isinstance(x, str) and any(c in x for c in "'\"\\") for x in v or [])


# ---- models the templates consume ---------------------------------------------------------------


@dataclass
class FieldCode:
    name: str
    type: str
    nullable: bool
    writable: bool  # accepted in request bodies (not readonly)
    private: bool
    required_in_body: bool
    drizzle: str  # full drizzle column expression
    sql: str  # column definition inside CREATE TABLE
    sql_type: str
    sql_default: str | None  # the DEFAULT clause's expression
    snapshot_default: Any  # the default as drizzle-kit's snapshot records it (None: no default)
    zod_create: str
    zod_update: str
    zod_output: str
    to_json: str  # expression reading the value from `row`
    ref_table: str | None = None
    on_delete: str | None = None
    unique: bool = False
    zod_filter: str | None = None
    pg_import: str = ""
    sql_literal_default: bool = False  # `.default(sql`...`)`: schema.ts imports `sql`


@dataclass
class ResourceCode:
    name: str  # plural, URL path and table name
    var: str  # drizzle table variable (camelCase)
    type_name: str  # singular PascalCase, schema prefix
    router: str  # router factory name
    owned: bool
    fields: list[FieldCode]
    access: dict[str, str | list[str]]
    filters: list[FieldCode]
    sort: list[str]
    indexes: list[tuple[str, ...]]  # btree indexes, by their columns in order
    imports: set[str] = field(default_factory=set)
    description: str = ""

    @property
    def any_owner_action(self) -> bool:
        return any(rule == "owner" for rule in self.access.values())

    def access_ts(self, action: str) -> str:
        return ts(self.access[action])


def field_code(spec: Spec, res_name: str, name: str, f: Field) -> FieldCode:
    kind = f.type
    where = f"resources.{res_name}.fields.{name}"
    if kind == "ref" and (not f.to or f.to not in spec.resources):
        raise GenerateError(f"{where}.to: no resource named {f.to!r}")
    if kind == "enum" and not f.values:
        raise GenerateError(f"{where}.values: an enum needs values")
    if kind == "array" and not f.items:
        raise GenerateError(f"{where}.items: an array needs an item type")
    has_default = f.default is not None
    # A readonly field with no default can never be filled in, so it must stay nullable.
    not_null = (f.required and not f.readonly) or has_default
    nullable = not not_null

    if kind == "array":
        item = f.items or "string"
        # min_length/max_length of an array count items; its elements get no length constraint (not in
        # the column's type either, or an 11-character tag would pass validation and fail the insert).
        item_field = f.model_copy(update={"min_length": None, "max_length": None, "type": item})
        base_col, imp = _drizzle_column(item_field, item, name, spec)
        drizzle = f"{base_col}.array()"
        sql_type = _sql_type(item_field, item) + "[]"
        zin = f"z.array({_zod_input(item_field, item)})"
        if f.min_length is not None:
            zin += f".min({f.min_length})"
        if f.max_length is not None:
            zin += f".max({f.max_length})"
        zout = f"z.array({_zod_output(f, item)})"
    else:
        drizzle, imp = _drizzle_column(f, kind, name, spec)
        sql_type = _sql_type(f, kind)
        zin = _zod_input(f, kind)
        zout = _zod_output(f, kind)

    sql = f'"{name}" {sql_type}'
    sql_default = snapshot_default = None
    sql_literal = has_default and _misquoted_by_drizzle_kit(kind, f.default)
    if has_default:
        sql_default, snapshot_default = _sql_default(f, kind), _snapshot_default(f, kind)
        sql += f" DEFAULT {sql_default}"
        if sql_literal:  # drizzle-kit would quote the value wrongly: hand it the SQL itself
            drizzle += ".default(sql`" + _JS_TEMPLATE_ESCAPE.sub(_js_escape, sql_default) + "`)"
        else:
            drizzle += f".default({_drizzle_default(f, kind)})"
    if not_null:
        sql += " NOT NULL"
        drizzle += ".notNull()"
    if f.unique:
        drizzle += ".unique()"
    ref_table = on_delete = None
    if kind == "ref":
        ref_table = f.to
        on_delete = {"restrict": "restrict", "cascade": "cascade", "set_null": "set null"}[f.on_delete]
        if f.on_delete == "set_null" and not_null:
            raise GenerateError(f"{where}.on_delete: set_null needs a field that is not required")
        drizzle += f".references(() => {camel(f.to or '')}.id, {{ onDelete: {ts(on_delete)} }})"

    required_in_body = f.required and not has_default
    zin_null, zout_null = (_or_null(zin), _or_null(zout)) if nullable else (zin, zout)
    zod_create = zin if required_in_body else zin_null + ".optional()"
    zod_update = zin_null + ".optional()"
    zod_output = zout_null
    if kind == "datetime" or (kind == "array" and f.items == "datetime"):
        # Stored with mode 'string'; always answer in ISO 8601 UTC.
        value = f"row.{name}.map(iso)" if kind == "array" else f"iso(row.{name})"
        to_json = f"row.{name} === null ? null : {value}" if nullable else value
    else:
        to_json = f"row.{name}"
    return FieldCode(
        name=name,
        type=kind,
        nullable=nullable,
        writable=not f.readonly,
        private=f.private,
        required_in_body=required_in_body and not f.readonly,
        drizzle=drizzle,
        sql=sql,
        sql_type=sql_type,
        sql_default=sql_default,
        snapshot_default=snapshot_default,
        zod_create=zod_create,
        zod_update=zod_update,
        zod_output=zod_output,
        to_json=to_json,
        ref_table=ref_table,
        on_delete=on_delete,
        unique=f.unique,
        pg_import=imp,
        sql_literal_default=sql_literal,
    )


def resource_code(spec: Spec, name: str, res: Resource) -> ResourceCode:
    fields = [field_code(spec, name, fname, f) for fname, f in res.fields.items()]
    by_name = {fc.name: fc for fc in fields}
    filters: list[FieldCode] = []
    for fname in res.filters:
        fc = by_name.get(fname)
        if fc is None:
            raise GenerateError(f"resources.{name}.filters: no field named {fname!r}")
        fc.zod_filter = _zod_query(res.fields[fname], res.fields[fname].type)
        filters.append(fc)
    for sname in res.sort:
        if sname not in by_name and sname not in TIMESTAMP_FIELDS:
            raise GenerateError(f"resources.{name}.sort: no field named {sname!r}")
    indexes = list_indexes(res)
    access = {a: res.access.rule(a) for a in ("list", "read", "create", "update", "delete")}
    for action, rule in access.items():
        if rule == "owner" and not res.owned:
            raise GenerateError(f"resources.{name}.access.{action}: `owner` needs `owned: true`")
        if rule != "public" and spec.auth is None:
            raise GenerateError(f"resources.{name}.access.{action}: needs an `auth` block")
    return ResourceCode(
        name=name,
        var=camel(name),
        type_name=pascal(singular(name)),
        router=f"{camel(name)}Router",
        owned=res.owned,
        fields=fields,
        access=access,
        filters=filters,
        sort=list(res.sort),
        indexes=indexes,
        description=res.description or "",
    )


def list_indexes(res: Resource) -> list[tuple[str, ...]]:
    """The indexes that serve every list query the resource allows, so no page reads more rows than it
    returns: `(sort, id)`-ordered walks for each sort (created_at, the default, always), and for each
    filter (and owner_id when lists are owner-only) one `(filter, sort, id)` per sort, which is the
    filter's own index too. A btree scans both ways, so one index serves a sort and its reverse.
    References and `index: true` fields get an index of their own when no composite starts with them;
    unique fields already have one. Every filter × sort pair is one index more to update on each write:
    the spec's `filters` and `sort` are the price list."""
    unique = {n for n, f in res.fields.items() if f.unique}
    sorts = [s for s in dict.fromkeys([*res.sort, "created_at"]) if s not in unique]
    filters = [f for f in res.filters if f not in unique]
    if res.owned and res.access.list == "owner":
        filters.insert(0, "owner_id")
    keys: list[tuple[str, ...]] = [(s, "id") for s in sorts]
    keys += [(f, s, "id") for f in filters for s in sorts if s != f]
    singles = ["owner_id"] if res.owned else []
    singles += [n for n, f in res.fields.items() if (f.type == "ref" or f.index) and n not in unique]
    keys += [(n,) for n in singles]
    keys = list(dict.fromkeys(keys))
    # An index whose columns start another's is that one's prefix: the longer serves both.
    return [k for k in keys if not any(o != k and o[: len(k)] == k for o in keys)]


def topo_order(resources: list[ResourceCode]) -> list[ResourceCode]:
    """Referenced tables first, so CREATE TABLE and drizzle's `references` read top-down; stable otherwise."""
    by_name = {r.name: r for r in resources}
    done: dict[str, ResourceCode] = {}

    def visit(r: ResourceCode, stack: tuple[str, ...]) -> None:
        if r.name in done or r.name in stack:
            return
        for f in r.fields:
            if f.ref_table and f.ref_table != r.name:
                visit(by_name[f.ref_table], (*stack, r.name))
        done[r.name] = r

    for r in resources:
        visit(r, ())
    return list(done.values())
