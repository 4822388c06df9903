"""Literals the generator prints into TypeScript and SQL: JavaScript must read back exactly the spec's value."""

from __future__ import annotations

import json
import subprocess

import pytest

from backend_implementor.generate.express.codegen import field_code, js_number, ts
from backend_implementor.spec.model import Field, Resource, Spec

STRINGS = ["plain", "it's", "back\\slash", 'say "hi"', "tab\there", "cr\rlf\n", "nul\x00 del\x7f", "ls\u2028ps\u2029", "`${x}`", "é ✓"]  # fmt: skip
NUMBERS = [0, -0.0, 1.0, -2.0, 0.5, 1.5e-7, 1e-5, 0.1 + 0.2, 1e16, 1.2345678901234568e20, 1e21, 5e-324, 2**60, -(2**31)]  # fmt: skip


def node_values(expressions: list[str]) -> list:
    """Evaluate JavaScript expressions with node; each result comes back as [typeof, String(value)]."""
    script = (
        "console.log(JSON.stringify(["
        + ",".join(f"((v) => [typeof v, String(v)])({e})" for e in expressions)
        + "]))"
    )
    proc = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_string_literals_read_back_as_the_same_string():
    assert node_values([ts(s) for s in STRINGS]) == [["string", s] for s in STRINGS]


def test_numbers_print_as_javascript_prints_them():
    expected = node_values([repr(float(n)) if isinstance(n, float) else str(n) for n in NUMBERS])
    assert [["number", js_number(n)] for n in NUMBERS] == expected


def _field(**kw) -> str:
    spec = Spec(name="t", resources={"things": Resource(fields={"x": Field(**kw)})})
    return field_code(spec, "things", "x", spec.resources["things"].fields["x"])


@pytest.mark.parametrize(
    ("kw", "drizzle", "sql"),
    [
        ({"type": "array", "items": "string", "default": ["a", "b c"]}, ".default(['a', 'b c'])", """'{"a","b c"}'"""),
        ({"type": "array", "items": "number", "default": [1.0, 1e-5]}, ".default([1, 0.00001])", "'{1,0.00001}'"),
        ({"type": "json", "default": {"k": 2.0}}, ".default({ 'k': 2 })", """'{"k":2}'::jsonb"""),
        # drizzle-kit would write these unescaped, so they are given to it as SQL
        ({"type": "array", "items": "string", "default": ['"q"', "a'b", "c\\d"]},
         """.default(sql`'{"\\\\"q\\\\"","a''b","c\\\\\\\\d"}'`)""", """'{"\\"q\\"","a''b","c\\\\d"}'"""),
        ({"type": "json", "default": {"k": "it's `${x}`"}},
         """.default(sql`'{"k":"it''s \\`\\${x}\\`"}'::jsonb`)""", """'{"k":"it''s `${x}`"}'::jsonb"""),
    ],
)  # fmt: skip
def test_array_and_json_defaults(kw, drizzle, sql):
    code = _field(**kw)
    assert drizzle in code.drizzle
    assert code.sql_default == sql
    assert code.sql_literal_default == ("sql`" in drizzle)
    if code.sql_literal_default:  # the template literal's value is the SQL itself
        literal = code.drizzle.split(".default(sql")[1].split(").notNull()")[0]
        assert node_values([literal]) == [["string", sql]]
