"""Loading valid specs: the typed model the generator consumes, with every default resolved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from backend_implementor.spec import Spec, SpecError, load_spec, load_spec_text, parse_duration
from backend_implementor.spec.schema import build_schema, schema_text, shipped_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "name,resources,fields",
    [("blog.yaml", 2, 9), ("library.yaml", 3, 10), ("inventory.yaml", 3, 18)],
)
def test_examples_load(name: str, resources: int, fields: int) -> None:
    spec = load_spec(EXAMPLES / name)
    assert (len(spec.resources), spec.field_count()) == (resources, fields)


def test_library_matches_design_example() -> None:
    spec = load_spec(EXAMPLES / "library.yaml")
    assert spec.name == "library"
    assert spec.auth is not None
    assert (spec.auth.roles, spec.auth.default_role, spec.auth.admin_role) == (
        ["member", "librarian"],
        "member",
        "librarian",
    )
    assert (spec.auth.access_ttl, spec.auth.refresh_ttl) == (900, 7 * 86400)
    books = spec.resources["books"]
    # YAML order is kept: the generator's output must be deterministic
    assert list(spec.resources) == ["authors", "books", "loans"]
    assert list(books.fields) == ["title", "isbn", "author", "copies", "format"]
    assert books.fields["author"].to == "authors"
    assert books.fields["author"].on_delete == "restrict"
    assert spec.resources["loans"].fields["book"].on_delete == "cascade"
    assert books.fields["format"].values == ["paper", "ebook"]
    assert books.fields["format"].default == "paper"
    assert books.fields["copies"].min == 0 and books.fields["copies"].default == 1
    assert books.access.create == ["librarian"]
    loans = spec.resources["loans"]
    assert loans.owned and loans.access.list == "owner" and loans.access.delete == ["librarian"]


def test_inventory_decimal_and_date() -> None:
    spec = load_spec(EXAMPLES / "inventory.yaml")
    price = spec.resources["products"].fields["unit_price"]
    assert (price.type, price.precision, price.scale, price.min) == ("decimal", 10, 2, 0)
    cost = spec.resources["movements"].fields["cost"]
    assert (cost.default, cost.precision, cost.scale) == ("0.00", 12, 2)
    # dates stay strings: YAML 1.1 timestamps are not resolved into Python dates
    doc = "name: x\nresources:\n  t:\n    fields:\n      d: {type: date, default: 2024-01-31}\n"
    assert load_spec_text(doc).resources["t"].fields["d"].default == "2024-01-31"


def test_decimal_defaults_to_12_2() -> None:
    spec = load_spec_text("name: x\nresources:\n  t:\n    fields:\n      p: {type: decimal}\n")
    p = spec.resources["t"].fields["p"]
    assert (p.precision, p.scale) == (12, 2)


ACCESS_DEFAULTS = [
    # (auth?, owned?) -> list, read, create, update, delete
    (False, False, ["public"] * 5),
    (True, False, ["public", "public", "authenticated", "authenticated", "authenticated"]),
    (True, True, ["public", "public", "authenticated", "owner", "owner"]),
]


@pytest.mark.parametrize("auth,owned,expected", ACCESS_DEFAULTS)
def test_access_defaults(auth: bool, owned: bool, expected: list[str]) -> None:
    text = "name: x\n" + ("auth: {}\n" if auth else "") + "resources:\n  t:\n"
    text += ("    owned: true\n" if owned else "") + "    fields: {a: {type: string}}\n"
    access = load_spec_text(text).resources["t"].access
    assert [access.list, access.read, access.create, access.update, access.delete] == expected


def test_explicit_access_wins_over_defaults() -> None:
    text = (
        "name: x\nauth: {roles: [a, b]}\nresources:\n  t:\n    owned: true\n    fields: {a: {type: string}}\n"
    )
    text += "    access: {list: owner, delete: [b]}\n"
    access = load_spec_text(text).resources["t"].access
    assert (access.list, access.read, access.update, access.delete) == ("owner", "public", "owner", ["b"])


def test_empty_auth_block_has_a_default_role() -> None:
    spec = load_spec_text("name: x\nauth: {}\nresources: {}\n")
    assert spec.auth is not None and spec.auth.roles == ["user"] and spec.auth.admin_role is None


@pytest.mark.parametrize(
    "text,seconds",
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400), (45, 45)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "15", "m", "1x", "1m1h", "-5m"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_yaml_merge_keys_and_anchors() -> None:
    text = (
        "name: x\nresources:\n  t:\n    fields:\n"
        "      a: &short {type: string, max_length: 20}\n"
        "      b: {<<: *short, required: true, max_length: 10}\n"
    )
    b = load_spec_text(text).resources["t"].fields["b"]
    assert (b.type, b.required, b.max_length) == ("string", True, 10)


def test_json_spec_is_accepted(tmp_path: Path) -> None:
    doc = {"name": "x", "resources": {"t": {"fields": {"a": {"type": "integer", "min": 1}}}}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc, indent=2))
    assert load_spec(path).resources["t"].fields["a"].min == 1


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: x\ndescription: \xff\xfe\n")
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert str(info.value) == f"{bad}:2: not valid UTF-8 text"


def test_model_round_trips_through_dump() -> None:
    spec = load_spec(EXAMPLES / "library.yaml")
    again = Spec.model_validate(spec.model_dump())
    assert again == spec


def test_shipped_schema_is_generated_from_the_models() -> None:
    # regenerate with: python -m backend_implementor.spec.schema --write
    assert shipped_schema() == build_schema()
    assert json.loads(schema_text()) == shipped_schema()


def test_shipped_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(shipped_schema())
    for name in ("blog.yaml", "library.yaml", "inventory.yaml"):
        load_spec(EXAMPLES / name)  # the validator in use accepts the examples
    defs = shipped_schema()["$defs"]
    assert defs["Field"]["additionalProperties"] is False
    assert "propertyNames" in shipped_schema()["properties"]["resources"]
