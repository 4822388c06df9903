"""Fuzzing the loader: whatever the input, the result is a Spec or a SpecError with located issues —
never another exception."""

from __future__ import annotations

import json
import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_implementor.spec import FIELD_TYPES, SpecError, SpecIssue, load_spec_text
from backend_implementor.spec.openapi import OpenAPIImportError, import_openapi, render_yaml

# BIMPL_FUZZ_EXAMPLES=5000 for a deeper run; 300 keeps the default suite quick.
FUZZ = settings(
    max_examples=int(os.environ.get("BIMPL_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)

# Spec-shaped data: the right keys with often-wrong values, so schema and semantic checks both run.
words = st.sampled_from(
    [
        "books",
        "authors",
        "a",
        "Order",
        "users",
        "id",
        "to",
        "x-y",
        "librarian",
        "member",
        "",
        "title",
        "owner",
    ]
)
field_values = st.one_of(
    scalars,
    st.sampled_from(
        [*FIELD_TYPES, "restrict", "cascade", "set_null", "^[a-z]+$", "(?P<x>", "[", "2024-02-30"]
    ),
    st.lists(st.one_of(words, scalars), max_size=3),
)
field_keys = st.sampled_from(
    ["type", "required", "unique", "index", "default", "min", "max", "min_length", "max_length", "pattern",
     "values", "private", "readonly", "to", "on_delete", "items", "precision", "scale", "tpye"]
)  # fmt: skip
fields = st.dictionaries(words, st.dictionaries(field_keys, field_values, max_size=6), max_size=4)
access_rule = st.one_of(
    st.sampled_from(["public", "authenticated", "owner", "admin"]), st.lists(words, max_size=3)
)
resource = st.fixed_dictionaries(
    {"fields": fields},
    optional={
        "owned": st.one_of(st.booleans(), scalars),
        "filters": st.lists(words, max_size=3),
        "sort": st.lists(st.one_of(words, st.just("created_at")), max_size=3),
        "access": st.dictionaries(
            st.sampled_from(["list", "read", "create", "update", "delete", "lst"]), access_rule
        ),
    },
)
spec_like = st.fixed_dictionaries(
    {"name": st.one_of(words, st.just("library")), "resources": st.dictionaries(words, resource, max_size=3)},
    optional={
        "auth": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "roles": st.lists(words, max_size=3),
                    "admin_role": words,
                    "access_ttl": st.one_of(st.sampled_from(["15m", "0s", "7d", "1x"]), scalars),
                    "refresh_ttl": st.one_of(st.sampled_from(["7d", "1h"]), scalars),
                },
            ),
        ),
        "description": scalars,
    },
)


def _load(text: str) -> None:
    try:
        load_spec_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.issues, "a SpecError must carry at least one issue"
        for issue in exc.issues:
            assert isinstance(issue, SpecIssue) and issue.file == "fuzz.yaml" and issue.message
            assert issue.line is None or issue.line >= 1
        assert str(exc).count("\n") == len(exc.issues) - 1


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _load(text)


yaml_tokens = st.sampled_from(
    ["name: x\n", "resources:\n", "  books:\n", "    fields:\n", "      a: {type: string}\n", "- ", ": ", "{", "}",
     "[", "]", "&a ", "*a ", "<<: ", "!!binary ", "!!set ", "? ", "---\n", "...\n", "\t", "'", '"', "#", "\n",
     "  ", "%YAML 1.2\n", "!foo ", "|\n", ">-\n", "1e400", ".nan", "~", "null", "on", "2024-01-01"]
)  # fmt: skip


@FUZZ
@given(st.lists(yaml_tokens, max_size=40).map("".join))
def test_yaml_token_soup(text: str) -> None:
    _load(text)


@FUZZ
@given(json_values, st.booleans())
def test_arbitrary_nested_data(data: object, as_json: bool) -> None:
    text = json.dumps(data) if as_json else yaml.safe_dump(data, allow_unicode=True)
    _load(text)


@FUZZ
@given(spec_like)
def test_spec_shaped_data(data: dict) -> None:
    _load(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@FUZZ
@given(json_values)
def test_openapi_import_never_crashes(paths: object) -> None:
    doc = {"openapi": "3.0.0", "info": {"title": "Fuzz"}, "paths": paths}
    try:
        result = import_openapi(doc)
    except OpenAPIImportError:
        return
    load_spec_text(render_yaml(result, "fuzz.json"))  # what it writes always validates
