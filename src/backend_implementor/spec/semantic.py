"""Rules the JSON Schema cannot express: cross references, type-specific keys, names the generated code
cannot use, defaults that would not survive the database. Each issue points at the offending key/value."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from backend_implementor.spec.errors import PathT, SpecIssue, format_path
from backend_implementor.spec.model import ACTIONS, Field, Resource, Spec
from backend_implementor.spec.schema import did_you_mean
from backend_implementor.spec.source import Marks

# Columns every table already has (and owner_id on owned resources): a field may not redefine them.
RESERVED_FIELDS = {
    "id": "every resource gets an `id` (uuid) automatically",
    "created_at": "every resource gets `created_at` automatically",
    "updated_at": "every resource gets `updated_at` automatically",
    "owner_id": "`owner_id` is added by `owned: true` and set from the token",
}
# Paths/tables the generated backend already uses.
RESERVED_RESOURCES = {
    "auth": "/auth is the authentication API",
    "docs": "/docs serves the API documentation",
    "openapi": "/openapi.json is the API description",
    "health": "/health is the health check",
    "healthz": "/healthz is the health check",
}
RESERVED_WITH_AUTH = {
    "users": "/users and the users table are built in when `auth` is set",
    "refresh_tokens": "the refresh_tokens table is built in when `auth` is set",
    "auth_sessions": "the auth_sessions table is built in when `auth` is set",
    "rate_limits": "the rate_limits table is built in when `auth` is set",
    "user_identities": "the user_identities table is built in when `auth` is set",
    "oidc_logins": "the oidc_logins table is built in when `auth` is set",
}
# PostgreSQL reserved keywords (incl. "can be function or type") — unusable as bare table/column names.
SQL_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "array",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ]
)
# TypeScript/JavaScript strict-mode reserved words (names become identifiers in generated code), plus
# names that alter object prototypes. Contextual keywords (type, string, number…) stay usable.
TS_RESERVED = frozenset(
    [
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "implements",
        "interface",
        "let",
        "package",
        "private",
        "protected",
        "public",
        "static",
        "yield",
        "await",
        "constructor",
        "prototype",
        "arguments",
        "eval",
        "undefined",
    ]
)
LIST_QUERY_PARAMS = {"limit", "offset", "sort", "cursor"}

NUMERIC = {"integer", "number", "decimal"}
LENGTHY = {"string", "text", "email", "url", "array"}
# Keys a field may carry beyond the common ones, by type.
TYPE_KEYS: dict[str, set[str]] = {
    "string": {"min_length", "max_length", "pattern"},
    "text": {"min_length", "max_length", "pattern"},
    "email": {"min_length", "max_length"},
    "url": {"min_length", "max_length"},
    "integer": {"min", "max"},
    "number": {"min", "max"},
    "decimal": {"min", "max", "precision", "scale"},
    "enum": {"values"},
    "ref": {"to", "on_delete"},
    "array": {"items", "min_length", "max_length", "values"},
}
COMMON_KEYS = {"type", "description", "required", "unique", "index", "default", "private", "readonly",
               "renamed_from"}  # fmt: skip
NOT_COMPARABLE = {"json", "array"}  # no equality filter, sort, btree unique/index on these

# `integer` is a PostgreSQL integer (32-bit) in the generated schema.
_INT32 = (-(2**31), 2**31 - 1)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")
# Python-only regex syntax that a JavaScript RegExp (with the `u` flag) rejects or reads differently.
_PY_ONLY_REGEX = [
    (re.compile(r"\(\?P[<=]"), "uses Python-only named groups (?P<name>…); use (?<name>…)"),
    (re.compile(r"\(\?[aiLmsux]+\)"), "uses inline flags such as (?i), which JavaScript does not support"),
    (re.compile(r"\(\?#"), "uses a (?#…) comment, which JavaScript does not support"),
    (re.compile(r"\(\?>"), "uses an atomic group (?>…), which JavaScript does not support"),
    (re.compile(r"(?<!\\)(\\\\)*\\[AZz]"), "uses \\A, \\Z or \\z anchors; use ^ and $ in JavaScript"),
    (re.compile(r"[*+?}]\+"), "uses a possessive quantifier, which JavaScript does not support"),
]


class _Checker:
    def __init__(self, spec: Spec, data: dict[str, Any], marks: Marks, file: str):
        self.spec, self.data, self.marks, self.file = spec, data, marks, file
        self.issues: list[SpecIssue] = []

    def add(self, path: PathT, message: str, *, key: bool = False) -> None:
        line, col = self.marks.find(path, key=key)
        self.issues.append(SpecIssue(self.file, line, col, format_path(path), message))

    def run(self) -> list[SpecIssue]:
        self.check_auth()
        for name, res in self.spec.resources.items():
            self.check_resource(name, res)
        self.check_renames()
        return self.issues

    def check_renames(self) -> None:
        """`renamed_from` must name something that no longer exists under its own name, and only once."""
        resources = self.spec.resources

        def check(
            path: PathT, new: str, old: str | None, current: Any, claimed: dict[str, str], what: str
        ) -> None:
            if old is None:
                return
            if old == new:
                self.add(path, f"'{old}' is this {what}'s own name; remove renamed_from")
            elif old in current:
                self.add(path, f"a {what} named '{old}' still exists, so this one cannot be its new name")
            elif old in claimed:
                self.add(path, f"'{old}' is already the renamed_from of {claimed[old]}")
            else:
                claimed[old] = new

        claimed_tables: dict[str, str] = {}
        for name, res in resources.items():
            base: PathT = ("resources", name)
            check((*base, "renamed_from"), name, res.renamed_from, resources, claimed_tables, "resource")
            claimed_fields: dict[str, str] = {}
            for fname, f in res.fields.items():
                path = (*base, "fields", fname, "renamed_from")
                check(path, fname, f.renamed_from, res.fields, claimed_fields, "field")

    def check_auth(self) -> None:
        auth = self.spec.auth
        if auth is None:
            return
        seen: set[str] = set()
        for i, role in enumerate(auth.roles):
            if role in seen:
                self.add(("auth", "roles", i), f"duplicate role '{role}'")
            seen.add(role)
        if auth.admin_role is not None and auth.admin_role not in auth.roles:
            self.add(
                ("auth", "admin_role"),
                f"'{auth.admin_role}' is not in auth.roles{did_you_mean(auth.admin_role, auth.roles)}",
            )
        for key in ("access_ttl", "refresh_ttl", "session_ttl", "session_idle"):
            if getattr(auth, key) <= 0:
                self.add(("auth", key), "must be longer than 0 seconds")
        if auth.access_ttl > 0 and auth.access_ttl >= auth.refresh_ttl:
            self.add(
                ("auth", "access_ttl"),
                f"must be shorter than refresh_ttl ({auth.access_ttl}s >= {auth.refresh_ttl}s)",
            )
        if auth.refresh_ttl > auth.session_ttl:
            self.add(
                ("auth", "refresh_ttl"),
                f"must not be longer than session_ttl ({auth.refresh_ttl}s > {auth.session_ttl}s): "
                "a refresh token cannot outlive its session",
            )
        if auth.session_idle > auth.session_ttl:
            self.add(
                ("auth", "session_idle"),
                f"must not be longer than session_ttl ({auth.session_idle}s > {auth.session_ttl}s)",
            )
        for name, provider in auth.oidc.items():
            for scope in ("openid", "email"):
                if scope not in provider.scopes:
                    self.add(("auth", "oidc", name, "scopes"), f"must include '{scope}'")
            host = urlsplit(provider.issuer).hostname or ""
            if provider.issuer.startswith("http://") and host not in ("localhost", "127.0.0.1"):
                self.add(("auth", "oidc", name, "issuer"), "must be https (http only for localhost)")
        if "session_idle" in auth.model_fields_set and auth.sessions != "cookie":
            self.add(("auth", "session_idle"), "applies to cookie sessions only (set `sessions: cookie`)")

    def check_name(self, path: PathT, name: str, what: str) -> bool:
        if name in SQL_RESERVED:
            self.add(path, f"{what} name '{name}' is a reserved word in SQL; choose another name", key=True)
        elif name in TS_RESERVED:
            self.add(
                path, f"{what} name '{name}' is a reserved word in TypeScript; choose another name", key=True
            )
        else:
            return True
        return False

    def check_resource(self, name: str, res: Resource) -> None:
        base: PathT = ("resources", name)
        if name in RESERVED_RESOURCES:
            self.add(base, f"resource name '{name}' is reserved: {RESERVED_RESOURCES[name]}", key=True)
        elif self.spec.auth is not None and name in RESERVED_WITH_AUTH:
            self.add(base, f"resource name '{name}' is reserved: {RESERVED_WITH_AUTH[name]}", key=True)
        else:
            self.check_name(base, name, "resource")
        if res.owned and self.spec.auth is None:
            self.add(
                (*base, "owned"), "an owned resource needs an `auth` block (owner_id comes from the token)"
            )
        for fname, field in res.fields.items():
            self.check_field((*base, "fields", fname), fname, field)
        self.check_columns(base, res, "filters")
        self.check_columns(base, res, "sort")
        self.check_access(base, res)

    def check_columns(self, base: PathT, res: Resource, key: str) -> None:
        extra = ["created_at", "updated_at"] if key == "sort" else []
        known = [*res.fields, *extra]
        seen: set[str] = set()
        for i, col in enumerate(getattr(res, key)):
            path = (*base, key, i)
            if col in seen:
                self.add(path, f"'{col}' is listed twice")
                continue
            seen.add(col)
            if col not in known:
                hint = did_you_mean(col, known) or f" (fields: {', '.join(known)})"
                self.add(path, f"no field named '{col}'{hint}")
                continue
            field = res.fields.get(col)
            if field is None:
                continue
            if field.type in NOT_COMPARABLE:
                self.add(path, f"cannot {'filter' if key == 'filters' else 'sort'} on a {field.type} field")
            elif field.private:
                self.add(path, f"cannot {'filter' if key == 'filters' else 'sort'} on a private field")
            elif field.readonly and field.default is None:
                verb = "filter" if key == "filters" else "sort"
                self.add(path, f"cannot {verb} on '{col}': readonly without a default, it is always null")
            elif key == "filters" and col in LIST_QUERY_PARAMS:
                self.add(path, f"'{col}' clashes with the ?{col}= list parameter")

    def check_access(self, base: PathT, res: Resource) -> None:
        auth = self.spec.auth
        for action in ACTIONS:
            if action not in res.access.model_fields_set:
                continue  # defaults are always valid for their context
            rule = res.access.rule(action)
            path = (*base, "access", action)
            if rule != "public" and auth is None:
                self.add(path, f"{rule if isinstance(rule, str) else 'role'} access needs an `auth` block "
                         "(without auth every action must be public)")  # fmt: skip
            elif rule == "owner" and action == "create":
                self.add(
                    path, "create cannot be 'owner' (the row does not exist yet); use authenticated or roles"
                )
            elif rule == "public" and action == "create" and res.owned:
                self.add(
                    path,
                    "create cannot be public on an owned resource (owner_id comes from the token); "
                    "use authenticated or roles",
                )
            elif rule == "owner" and not res.owned:
                self.add(path, "'owner' access needs `owned: true` on this resource")
            elif isinstance(rule, list) and auth is not None:
                seen: set[str] = set()
                for i, role in enumerate(rule):
                    if role in seen:
                        self.add((*path, i), f"role '{role}' is listed twice")
                    elif role not in auth.roles:
                        self.add(
                            (*path, i),
                            f"no role named '{role}' in auth.roles{did_you_mean(role, auth.roles)}",
                        )
                    seen.add(role)

    def check_field(self, path: PathT, name: str, f: Field) -> None:
        if name in RESERVED_FIELDS:
            self.add(path, f"field name '{name}' is reserved: {RESERVED_FIELDS[name]}", key=True)
        else:
            self.check_name(path, name, "field")
        allowed = COMMON_KEYS | TYPE_KEYS.get(f.type, set())
        for key in f.model_fields_set - allowed:
            users = sorted(t for t, keys in TYPE_KEYS.items() if key in keys)
            self.add(
                (*path, key),
                f"'{key}' does not apply to type {f.type} (only to {', '.join(users)})",
                key=True,
            )
        t = f.type
        if t == "enum":
            self.check_values(path, f, "enum")
        if t == "array":
            if f.items is None:
                self.add(path, "an array needs `items` (the type of its elements)")
            elif f.items == "enum":
                self.check_values(path, f, "array of enum")
            elif "values" in f.model_fields_set:
                self.add((*path, "values"), "`values` applies only to an array of enum", key=True)
        if t == "ref":
            self.check_ref(path, f)
        if t in NOT_COMPARABLE:
            for key in ("unique", "index"):
                if getattr(f, key):
                    self.add(
                        (*path, key), f"a {t} field cannot be {'unique' if key == 'unique' else 'indexed'}"
                    )
        if f.unique and t in ("boolean", "enum"):
            rows = 2 if t == "boolean" else len(f.values or [])
            self.add((*path, "unique"), f"a unique {t} allows only {rows} rows, one per value; drop `unique`")
        if f.unique and f.readonly and f.default is not None:
            self.add(
                (*path, "unique"),
                "a readonly unique field with a default gives every row that same value, so only one row "
                "could exist; drop `unique` or `default`",
            )
        if f.readonly and f.required:
            self.add((*path, "readonly"), "a readonly field cannot be required (clients never send it)")
        if f.readonly and f.private:
            self.add(
                (*path, "readonly"),
                "a field cannot be both readonly and private (nothing could set or read it)",
            )
        self.check_bounds(path, f)
        if f.pattern is not None and "pattern" in f.model_fields_set:
            self.check_pattern((*path, "pattern"), f.pattern)
        if "default" in f.model_fields_set and f.default is not None:
            problem = self.default_problem(f, f.default)
            if problem:
                self.add((*path, "default"), problem)

    def check_values(self, path: PathT, f: Field, what: str) -> None:
        if not f.values:
            self.add(path, f"an {what} field needs `values` (the allowed strings)")
            return
        seen: set[str] = set()
        for i, v in enumerate(f.values):
            if not v.strip():
                self.add((*path, "values", i), "an enum value cannot be empty")
            elif v in seen:
                self.add((*path, "values", i), f"duplicate value '{v}'")
            seen.add(v)

    def check_ref(self, path: PathT, f: Field) -> None:
        if f.to is None:
            self.add(path, "a ref needs `to` (the referenced resource)")
        elif f.to not in self.spec.resources:
            hint = did_you_mean(f.to, self.spec.resources)
            if not hint and f.to == "users" and self.spec.auth is not None:
                hint = " (users are built in and cannot be referenced; use an owned resource)"
            self.add((*path, "to"), f"no resource named '{f.to}'{hint}")
        if f.on_delete == "set_null" and f.required:
            self.add(
                (*path, "on_delete"), "set_null needs a non-required ref (a required ref cannot become null)"
            )
        if "default" in f.model_fields_set:
            self.add((*path, "default"), "a ref cannot have a default", key=True)

    def check_bounds(self, path: PathT, f: Field) -> None:
        if f.type == "integer":
            for key in ("min", "max"):
                v = getattr(f, key)
                if isinstance(v, float) and not v.is_integer():
                    self.add((*path, key), f"an integer field needs a whole-number {key}, got {v}")
                elif v is not None and not _INT32[0] <= v <= _INT32[1]:
                    self.add(
                        (*path, key), f"{v} is outside the 32-bit integer range (use type number or decimal)"
                    )
        if f.min is not None and f.max is not None and f.min > f.max:
            self.add((*path, "min"), f"min ({f.min}) is greater than max ({f.max})")
        if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
            self.add(
                (*path, "min_length"),
                f"min_length ({f.min_length}) is greater than max_length ({f.max_length})",
            )
        if f.type == "decimal" and f.scale > f.precision:
            self.add((*path, "scale"), f"scale ({f.scale}) cannot exceed precision ({f.precision})")

    def check_pattern(self, path: PathT, pattern: str) -> None:
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            self.add(path, f"not a valid regular expression: {exc}")
            return
        for rx, why in _PY_ONLY_REGEX:
            if rx.search(pattern):
                self.add(path, f"not a JavaScript-compatible regular expression: it {why}")
                return

    def default_problem(self, f: Field, value: Any) -> str | None:
        """Why `value` cannot be the default of `f`, or None when it fits type, values, bounds and pattern."""
        t = f.items if f.type == "array" else f.type
        if f.type == "array":
            if not isinstance(value, list):
                return f"expected a list for an array default, got {type(value).__name__}"
            if f.min_length is not None and len(value) < f.min_length:
                return f"has {len(value)} items, fewer than min_length {f.min_length}"
            if f.max_length is not None and len(value) > f.max_length:
                return f"has {len(value)} items, more than max_length {f.max_length}"
            for item in value:
                problem = _scalar_problem(t or "", item, f)
                if problem:
                    return f"item {item!r}: {problem}"
            return None
        return _scalar_problem(t, value, f)


def _scalar_problem(t: str, value: Any, f: Field) -> str | None:
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    if t == "json":
        return None
    if t == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if t in NUMERIC:
        if t == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"expected a whole number, got {value!r}"
        if t == "integer" and not _INT32[0] <= value <= _INT32[1]:
            return f"{value} is outside the 32-bit integer range"
        if t == "number" and not is_num:
            return f"expected a number, got {value!r}"
        if t == "decimal":
            if not (is_num or (isinstance(value, str) and _DECIMAL_RE.match(value))):
                return f'expected a decimal number (e.g. 12.50 or "12.50"), got {value!r}'
            try:
                d = Decimal(str(value))
            except InvalidOperation:
                return f"expected a decimal number, got {value!r}"
            _, digits, exp = d.as_tuple()
            frac = max(0, -int(exp)) if isinstance(exp, int) else 0
            if frac > f.scale:
                return f"{value} has more than {f.scale} digits after the point (scale)"
            if len(digits) - frac > f.precision - f.scale:
                return f"{value} does not fit decimal({f.precision},{f.scale})"
        num = Decimal(str(value))
        if f.min is not None and num < Decimal(str(f.min)):
            return f"{value} is less than min {f.min}"
        if f.max is not None and num > Decimal(str(f.max)):
            return f"{value} is greater than max {f.max}"
        return None
    if not isinstance(value, str):
        return f"expected a string, got {value!r}"
    if t == "enum":
        vals = f.values or []
        return (
            None
            if value in vals
            else f"'{value}' is not one of the values: {', '.join(vals)}{did_you_mean(value, vals)}"
        )
    if t == "date":
        try:
            if _DATE_RE.match(value):
                dt.date.fromisoformat(value)
                return None
        except ValueError:
            pass
        return f"'{value}' is not a date (YYYY-MM-DD)"
    if t == "datetime":
        try:
            if _DATETIME_RE.match(value):
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                return None
        except ValueError:
            pass
        return f"'{value}' is not an ISO 8601 date-time with a time zone (e.g. 2024-01-31T12:00:00Z)"
    if t == "uuid":
        try:
            uuid.UUID(value)
            return None
        except ValueError:
            return f"'{value}' is not a UUID"
    if t == "email" and not _EMAIL_RE.match(value):
        return f"'{value}' is not an email address"
    if t == "url" and not _URL_RE.match(value):
        return f"'{value}' is not an http(s) URL"
    if f.type != "array":
        if f.min_length is not None and len(value) < f.min_length:
            return f"is shorter than min_length {f.min_length}"
        if f.max_length is not None and len(value) > f.max_length:
            return f"is longer than max_length {f.max_length}"
        if f.pattern is not None:
            try:
                if not re.search(f.pattern, value):
                    return f"'{value}' does not match the pattern"
            except re.error:
                return None  # the pattern itself is reported
    return None


def semantic_issues(spec: Spec, data: dict[str, Any], marks: Marks, file: str) -> list[SpecIssue]:
    return _Checker(spec, data, marks, file).run()
