"""The shipped JSON Schema (spec/schema.json) and validation against it with readable, located messages.

schema.json is generated from the pydantic models (`python -m backend_implementor.spec.schema --write`)
and a test keeps the two identical; validation uses the shipped file, so what `bimpl spec schema` prints
is exactly what is enforced. Semantic rules the schema cannot express live in semantic.py.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from functools import cache
from importlib import resources
from typing import Any

from backend_implementor.spec.errors import PathT, SpecIssue, format_path
from backend_implementor.spec.source import Marks

SCHEMA_ID = "https://backend-implementor.dev/schemas/spec-1.json"
_ACCESS_LEVELS = ["public", "authenticated", "owner"]


def did_you_mean(word: str, options: Any) -> str:
    best = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{best[0]}'?)" if best else ""


def build_schema() -> dict[str, Any]:
    """The JSON Schema derived from the pydantic models, tidied for humans and strict on names."""
    from backend_implementor.spec.model import Spec

    raw = Spec.model_json_schema(mode="validation")

    def tidy(node: Any) -> Any:
        if isinstance(node, list):
            return [tidy(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: tidy(v) for k, v in node.items() if k != "title"}
        # pydantic renders constrained dict keys as patternProperties, which lets other keys through;
        # propertyNames + additionalProperties rejects a badly named resource/field instead.
        pp = out.pop("patternProperties", None)
        if pp:
            ((pattern, sub),) = pp.items()
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = sub
        return out

    schema = tidy(raw)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "bimpl backend spec",
        **schema,
    }


@cache
def shipped_schema() -> dict[str, Any]:
    text = resources.files("backend_implementor.spec").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(shipped_schema())


_JSON_TYPES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}  # fmt: skip
_SCHEMA_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "a boolean",
                 "integer": "an integer", "number": "a number", "null": "null"}  # fmt: skip


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _types_of(schema: Any) -> list[str]:
    if (
        isinstance(schema, dict)
        and isinstance(schema.get("$ref"), str)
        and schema["$ref"].startswith("#/$defs/")
    ):
        schema = shipped_schema()["$defs"].get(schema["$ref"][len("#/$defs/") :])
    if not isinstance(schema, dict):
        return []
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return list(t)
    out: list[str] = []
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            out += [x for x in _types_of(sub) if x not in out]
    if "enum" in schema and not out:
        out = ["string"]
    return out


def _type_matches(value: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _SCHEMA_TYPES.get(t) == _kind(value)


def _name_message(value: str, pattern: str) -> str:
    from backend_implementor.spec.model import DURATION_PATTERN, IDENT_PATTERN, KEBAB_PATTERN

    if pattern == IDENT_PATTERN:
        from backend_implementor.spec.openapi import snake

        hint = f" (try '{snake(value)}')" if snake(value) and re.match(IDENT_PATTERN, snake(value)) else ""
        return (
            f"'{value}' is not snake_case (lowercase letters, digits and single underscores, "
            f"starting with a letter){hint}"
        )
    if pattern == KEBAB_PATTERN:
        return (
            f"'{value}' is not a kebab-case name (lowercase letters, digits and single hyphens, e.g. my-api)"
        )
    if pattern == DURATION_PATTERN:
        return f"'{value}' is not a duration (use e.g. 30s, 15m, 12h, 7d, 2w or 1h30m)"
    return f"'{value}' does not match {pattern}"


def _messages(err: Any) -> list[tuple[PathT, bool, str]]:
    """(path, point-at-key, message) for one jsonschema error; anyOf/oneOf are explained by the branch
    whose type matches the value, so `create: admin` says what is wrong rather than 'not valid under any'."""
    path: PathT = tuple(err.absolute_path)
    v, inst, kind = err.validator_value, err.instance, err.validator
    if kind == "additionalProperties" and isinstance(inst, dict):
        known = list(err.schema.get("properties", {}))
        out = []
        for key in inst:
            if key in known:
                continue
            hint = did_you_mean(key, known) or f" (expected one of: {', '.join(known)})"
            out.append(((*path, key), True, f"unknown key '{key}'{hint}"))
        return out
    if kind == "required":
        return [
            (path, False, f"missing required key '{k}'")
            for k in v
            if isinstance(inst, dict) and k not in inst
        ]
    if "propertyNames" in err.relative_schema_path:
        # a bad resource/field/key name: jsonschema reports it at the parent; point at the key itself
        if kind == "pattern":
            return [((*path, inst), True, _name_message(str(inst), v))]
        if kind == "maxLength":
            return [((*path, inst), True, f"'{inst}' is longer than {v} characters")]
    if kind == "type":
        want = " or ".join(_SCHEMA_TYPES.get(t, t) for t in ([v] if isinstance(v, str) else v))
        return [(path, False, f"expected {want}, got {_kind(inst)}")]
    if kind == "enum":
        shown = ", ".join(map(str, v))
        extra = ", or a list of roles" if v == _ACCESS_LEVELS else ""
        return [(path, False, f"'{inst}' is not one of: {shown}{extra}{did_you_mean(inst, v)}")]
    if kind == "pattern":
        return [(path, False, _name_message(str(inst), v))]
    if kind in ("anyOf", "oneOf"):
        branches = [s for s in v if any(_type_matches(inst, t) for t in _types_of(s))]
        if not branches:
            want = " or ".join(_SCHEMA_TYPES.get(t, t) for s in v for t in _types_of(s))
            if set(_types_of({"anyOf": v})) - {"null"} == {"string"} and _ACCESS_LEVELS in [
                s.get("enum") for s in v
            ]:
                want = "public, authenticated, owner or a list of roles"
            return [(path, False, f"expected {want}, got {_kind(inst)}")]
        subs = [e for e in err.context if e.schema_path and e.schema_path[0] == v.index(branches[0])]
        out = [m for e in subs for m in _messages(e)]
        if out:
            return out
    if kind in ("minItems", "minProperties") and v == 1:
        return [(path, False, "must not be empty")]
    return [(path, False, err.message)]


def schema_issues(data: Any, marks: Marks, file: str) -> list[SpecIssue]:
    out = []
    for err in _validator().iter_errors(data):
        for path, at_key, message in _messages(err):
            line, col = marks.find(path, key=at_key)
            out.append(SpecIssue(file, line, col, format_path(path), message))
    return out


def _main(argv: list[str]) -> int:
    text = schema_text()
    target = resources.files("backend_implementor.spec").joinpath("schema.json")
    if argv[1:] == ["--write"]:
        with open(str(target), "w", encoding="utf-8") as fh:
            fh.write(text)
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
