"""Fuzzing the generator: every spec that `bimpl spec check` accepts must generate — a spec the checker
passes and the generator then refuses (or crashes on) would leave the user with no way forward."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_implementor.generate import generate_project, render_project
from backend_implementor.spec import SpecError, load_spec_text

from .conftest import run

FUZZ = settings(
    max_examples=int(os.environ.get("BIMPL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RESOURCES = ["books", "authors", "orders", "tags", "notes"]
FIELD_NAMES = [
    "title",
    "price",
    "count",
    "flag",
    "due",
    "meta",
    "labels",
    "kind",
    "contact",
    "site",
    "at",
    "code",
]
ROLES = ["member", "editor", "admin"]
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@st.composite
def field_spec(draw: st.DrawFn, others: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "text", "email", "url", "enum", "integer", "number", "decimal",
                                 "boolean", "date", "datetime", "uuid", "json", "array", "ref"]))  # fmt: skip
    if kind == "ref" and not others:
        kind = "string"
    f: dict[str, Any] = {"type": kind}
    flags = draw(st.sets(st.sampled_from(["required", "unique", "index", "private", "readonly", "default"])))
    if kind in ("json", "array"):
        flags -= {"unique", "index"}
    if "readonly" in flags:  # server-set: neither sent by clients nor hidden from them
        flags -= {"required", "private"}
        if "default" in flags:
            flags.discard("unique")  # every row would get the same value
    if kind in ("boolean", "enum"):
        flags.discard("unique")  # only as many rows as values
    if kind == "ref":
        f["to"] = draw(st.sampled_from(others))
        f["on_delete"] = draw(st.sampled_from(["restrict", "cascade", "set_null"]))
        flags.discard("default")
        if f["on_delete"] == "set_null":
            flags.discard("required")
    if kind == "enum":
        f["values"] = draw(
            st.lists(st.sampled_from(["a", "b", "c d", "it's"]), min_size=1, max_size=3, unique=True)
        )
    if kind == "array":
        f["items"] = draw(st.sampled_from(["string", "integer", "number", "boolean"]))
    if kind == "decimal":
        f["precision"], f["scale"] = draw(st.sampled_from([(10, 2), (8, 3), (5, 0)]))
    if kind in ("string", "text") and draw(st.booleans()):
        f["max_length"] = draw(st.integers(1, 200))
    if kind in ("integer", "number") and draw(st.booleans()):
        f["min"], f["max"] = sorted(draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=2)))
    if "default" in flags:
        f["default"] = draw(default_for(f))
    for flag in flags - {"default"}:
        f[flag] = True
    return f


def default_for(f: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = f["type"]
    lo, hi = f.get("min", -(2**31)), f.get("max", 2**31 - 1)
    scalar = {
        "string": text.map(lambda s: s[: f.get("max_length", 8)]),
        "text": text,
        "email": st.just("someone@example.com"),
        "url": st.just("https://example.com/x"),
        "integer": st.integers(lo, hi),
        "number": st.floats(lo, hi, allow_nan=False, allow_infinity=False),
        "decimal": st.just("1.5" if f.get("scale") else "7"),
        "boolean": st.booleans(),
        "date": st.just("2024-02-29"),
        "datetime": st.just("2024-02-29T12:00:00Z"),
        "uuid": st.just("123e4567-e89b-12d3-a456-426614174000"),
    }
    if kind == "enum":
        return st.sampled_from(f["values"])
    if kind == "array":
        return st.lists(scalar[f["items"]] if f["items"] != "integer" else st.integers(-5, 5), max_size=3)
    if kind == "json":
        leaves = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | text
        return st.recursive(
            leaves,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
            max_leaves=6,
        )
    return scalar[kind]


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3, unique=True))
    with_auth = draw(st.booleans())
    roles = draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True)) if with_auth else []
    resources: dict[str, Any] = {}
    for i, name in enumerate(names):
        fields = {
            fname: draw(field_spec(names[:i]))  # refs only to earlier resources: no cycles
            for fname in draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=5, unique=True))
        }
        res: dict[str, Any] = {"fields": fields}
        owned = with_auth and draw(st.booleans())
        if owned:
            res["owned"] = True
        rules = ["public"] + (
            ["authenticated", "owner" if owned else "authenticated", roles[:1]] if with_auth else []
        )
        res["access"] = {
            a: draw(
                st.sampled_from(
                    [r for r in rules if not (a == "create" and r in ("owner", "public" if owned else ""))]
                )
            )
            for a in ("list", "read", "create", "update", "delete")
        }
        plain = [
            n
            for n, f in fields.items()
            if f["type"] not in ("json", "array", "text")
            and not f.get("private")
            and not (f.get("readonly") and "default" not in f)  # always null
        ]
        res["filters"] = draw(st.lists(st.sampled_from(plain), unique=True, max_size=2)) if plain else []
        res["sort"] = draw(st.lists(st.sampled_from([*plain, "created_at"]), unique=True, max_size=2))
        resources[name] = res
    spec: dict[str, Any] = {"name": "fuzzed", "resources": resources}
    if with_auth:
        spec["auth"] = {"roles": roles, **({"admin_role": roles[-1]} if draw(st.booleans()) else {})}
    return spec


@FUZZ
@given(valid_specs())
def test_every_spec_that_passes_the_checker_generates(data: dict[str, Any]) -> None:
    text_ = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        spec = load_spec_text(text_, "fuzz.yaml")
    except SpecError:
        return  # refused with located issues: the loader's fuzz test covers their shape
    files = render_project(spec)  # no GenerateError, no crash
    assert "src/app.ts" in files and "drizzle/0000_init.sql" in files
    json.loads(files["drizzle/meta/0000_snapshot.json"])
    json.loads(files["package.json"])


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("BIMPL_FUZZ_PROJECT_EXAMPLES", "3")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(valid_specs())
def test_random_specs_generate_projects_that_type_check_and_pass_their_tests(
    node_modules, data: dict[str, Any]
) -> None:
    """Strict TypeScript over src/ and test/, then the generated vitest suite, for whatever the spec holds
    (this found unique enums, readonly unique defaults and public creates on owned resources)."""
    spec = load_spec_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "fuzz.yaml")
    with tempfile.TemporaryDirectory(prefix="bimpl-fuzz-") as tmp:
        out = Path(tmp) / "app"
        generate_project(spec, out)
        (out / "node_modules").symlink_to(node_modules, target_is_directory=True)
        for cmd in (["npm", "run", "--silent", "typecheck"], ["npx", "vitest", "run"]):
            proc = run(cmd, out, timeout=600)
            assert proc.returncode == 0, (
                f"{' '.join(cmd)}\n{yaml.safe_dump(data, sort_keys=False)}\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
            )
