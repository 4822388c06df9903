from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from tool_helpers import call

from backend_implementor.tools import files
from backend_implementor.tools.files import find_elision

# --- read_file -------------------------------------------------------------------------------------------


def test_read_numbers_lines(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("one\n  two\nthree\n")
    assert call(tools, "read_file", path="a.ts") == "    1\tone\n    2\t  two\n    3\tthree"


def test_read_range_is_inclusive_and_says_where_it_is(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    out = call(tools, "read_file", path="a.ts", start_line=5, end_line=7)
    assert out.splitlines() == ["    5\tline 5", "    6\tline 6", "    7\tline 7", "[lines 5-7 of 20]"]
    assert call(tools, "read_file", path="a.ts", start_line=19).splitlines()[:2] == [
        "   19\tline 19",
        "   20\tline 20",
    ]
    assert "    3\tline 3" in call(tools, "read_file", path="a.ts", end_line=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"start_line": 0}, ">= 1"),
        ({"start_line": 21}, "past the end"),
        ({"start_line": 5, "end_line": 4}, "before"),
    ],
)
def test_read_bad_ranges(ws: Path, tools, args, message) -> None:
    (ws / "a.ts").write_text("x\n" * 20)
    assert message in call(tools, "read_file", path="a.ts", **args)


def test_read_cap_tells_how_to_continue(ws: Path, tools) -> None:
    (ws / "big.ts").write_text("".join(f"const v{i} = {i};\n" for i in range(1, 5001)))
    out = call(tools, "read_file", path="big.ts")
    lines = out.splitlines()
    assert len(lines) == files.READ_MAX_LINES + 1
    assert lines[-2].startswith(" 2000\t")
    assert "start_line=2001" in lines[-1] and "of 5000" in lines[-1]
    # Following the note continues exactly where the first call stopped.
    assert call(tools, "read_file", path="big.ts", start_line=2001).startswith(" 2001\tconst v2001 = 2001;")


def test_read_byte_cap_and_long_lines(ws: Path, tools) -> None:
    (ws / "wide.ts").write_text(("y" * 900 + "\n") * 300)
    out = call(tools, "read_file", path="wide.ts")
    assert len(out) <= files.READ_MAX_BYTES + 200
    assert "Call read_file with start_line=" in out
    (ws / "min.js").write_text("z" * 10_000 + "\n")
    out = call(tools, "read_file", path="min.js")
    assert "[line truncated, 8000 more chars]" in out and len(out) < 2200


def test_read_empty_file_and_records_fingerprint(ws: Path, ctx, tools) -> None:
    (ws / "e.ts").write_text("")
    assert "empty" in call(tools, "read_file", path="e.ts")
    assert ws / "e.ts" in ctx.seen


# --- write_file ------------------------------------------------------------------------------------------


def test_write_creates_parents_then_overwrites(ws: Path, ctx, tools) -> None:
    assert call(tools, "write_file", path="src/routes/users.ts", content="a\nb\n") == (
        "Created src/routes/users.ts (2 lines)."
    )
    assert call(tools, "write_file", path="src/routes/users.ts", content="c\n") == (
        "Overwrote src/routes/users.ts (1 line)."
    )
    assert (ws / "src/routes/users.ts").read_text() == "c\n"
    assert ctx.seen[ws / "src/routes/users.ts"][1] == 2


def test_new_files_follow_umask_and_existing_modes_are_kept(ws: Path, tools) -> None:
    call(tools, "write_file", path="new.ts", content="x\n")
    assert stat.S_IMODE((ws / "new.ts").stat().st_mode) == 0o666 & ~_umask()
    script = ws / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    call(tools, "write_file", path="run.sh", content="#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def _umask() -> int:
    from backend_implementor.tools.workspace import _UMASK

    return _UMASK


def _temp_files(ws: Path) -> list[Path]:
    return [p for p in ws.rglob("*") if p.name.endswith(".bimpl-tmp")]


def test_atomic_write_leaves_no_temp_file_on_encoding_error(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("original\n")
    out = call(tools, "write_file", path="a.ts", content="broken \ud800 surrogate\n")
    assert out.startswith("Error: ") and "UTF-8" in out
    assert (ws / "a.ts").read_text() == "original\n"
    assert _temp_files(ws) == []


def test_atomic_write_leaves_no_temp_file_when_replace_fails(ws: Path, tools, monkeypatch) -> None:
    (ws / "a.ts").write_text("original\n")

    def failing_replace(src, dst, **_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    out = call(tools, "write_file", path="a.ts", content="new\n")
    assert "No space left on device" in out
    assert (ws / "a.ts").read_text() == "original\n"
    assert _temp_files(ws) == []


ELISIONS = [
    "// ... rest of the file",
    "# ... existing code ...",
    "/* ... */ unchanged",
    "<!-- ... -->",
    "<!-- ... rest of the markup unchanged -->",
    "  // ...",
    "{/* ... */}",
    "  # …",
    "// rest of code remains the same",
    "Rest of the code remains the same.",
    "// ... existing routes",
    "# existing code",
    "// existing code here",
    "[... existing code ...]",
    "/* rest of the implementation */",
    "// ...other handlers",
    "// other routes ...",
    "// (previous methods unchanged)",
    "-- ... rest of the schema",
    "// Keep existing imports",
    "// same as before",
    "    // ... (rest unchanged)",
    "# Code omitted for brevity",
    "...rest of the code",
]

ORDINARY = [
    "const f = (...args) => g(...args);",
    'const s = "// ... rest of the file";',
    "return [...items, x];",
    "// Rest of the function handles errors",
    "// Other routes are registered in routes.ts",
    "def f(): ...",
    "...",
    "  ...rest,",
    "// TODO: handle existing users",
    "# existing users keep their role",
    "/** @param {...any} args */",
    "const { a, ...rest } = obj;",
    "// Loading remaining items...",
    "  // See the rest of the docs at https://example.com",
    "--i;",
    "// the same code path is used for both",
    "console.log('... existing code ...')",
    " * ... more examples below",
    "#!/usr/bin/env node",
    "// Fields omitted from the response: password",
]


@pytest.mark.parametrize("line", ELISIONS)
def test_write_refuses_elision_placeholders(line: str, ws: Path, tools) -> None:
    content = f"import x from 'y';\n\n{line}\n\nexport default x;\n"
    out = call(tools, "write_file", path="src/app.ts", content=content)
    assert out.startswith("Error: write_file refused: line 3") and "edit_file" in out
    assert not (ws / "src/app.ts").exists()


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_code_is_not_mistaken_for_elision(line: str, tools) -> None:
    assert call(tools, "write_file", path="src/app.ts", content=f"{line}\n").startswith("Created ")


def test_prose_files_may_contain_ellipsis_comments() -> None:
    assert find_elision("```ts\n// ... rest of your routes\n```\n", Path("README.md")) is None
    assert find_elision("// ... rest of your routes\n", Path("README.ts")) == (
        1,
        "// ... rest of your routes",
    )


# --- edit_file -------------------------------------------------------------------------------------------

SOURCE = "".join(f"line {i}\n" for i in range(1, 21))


def test_edit_replaces_unique_text_and_shows_numbered_snippet(ws: Path, tools) -> None:
    (ws / "a.ts").write_text(SOURCE)
    out = call(tools, "edit_file", path="a.ts", old_text="line 10\n", new_text="ten\nTEN\n")
    assert out.startswith("Replaced 1 occurrence in a.ts. Lines 6-15 now:")
    assert "   10\tten\n   11\tTEN\n   12\tline 11" in out
    assert "    5\t" not in out and "   16\t" not in out
    assert (ws / "a.ts").read_text() == SOURCE.replace("line 10\n", "ten\nTEN\n")


def test_edit_requires_unique_match_unless_replace_all(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("x = 1;\ny = 2;\nx = 1;\n")
    out = call(tools, "edit_file", path="a.ts", old_text="x = 1;", new_text="x = 3;")
    assert "matches 2 times" in out and "lines 1, 3" in out and "replace_all" in out
    assert (ws / "a.ts").read_text() == "x = 1;\ny = 2;\nx = 1;\n"
    out = call(tools, "edit_file", path="a.ts", old_text="x = 1;", new_text="x = 3;", replace_all=True)
    assert out.startswith("Replaced 2 occurrences")
    assert (ws / "a.ts").read_text() == "x = 3;\ny = 2;\nx = 3;\n"


def test_edit_on_a_big_file_with_many_matches_names_the_first_lines(ws: Path, tools) -> None:
    # 2.5 million matches in 10 MB: line numbers are counted once, not from the start per match.
    (ws / "big.txt").write_text("abc\n" * 2_500_000)
    out = call(tools, "edit_file", path="big.txt", old_text="abc", new_text="x")
    assert "matches 2500000 times" in out and "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ...)" in out
    long_miss = "abc\n" * 1000 + "zzz"
    assert call(tools, "edit_file", path="big.txt", old_text=long_miss, new_text="x").startswith(
        "Error: old_text was not found in big.txt."
    )
    out = call(tools, "edit_file", path="big.txt", old_text="abc\n", new_text="", replace_all=True)
    assert out.startswith("Replaced 2500000 occurrences") and (ws / "big.txt").read_text() == ""


def test_edit_miss_names_a_match_that_ignores_indentation(ws: Path, tools) -> None:
    (ws / "a.py").write_text("def f():\n    return 1\n\n\nx = 2\n")
    out = call(tools, "edit_file", path="a.py", old_text="def f():\n  return 1\nx = 2", new_text="y")
    assert "It matches lines 1-5 if indentation/blank lines are ignored" in out


def test_edit_miss_suggests_closest_lines(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("function add(a, b) {\n  return a + b;\n}\n")
    out = call(tools, "edit_file", path="a.ts", old_text="function add(a,b) {\n  return a+b;", new_text="x")
    assert "not found" in out and "Did you mean" in out
    assert "    1\tfunction add(a, b) {\n    2\t  return a + b;" in out


def test_edit_miss_explains_indentation(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("if (x) {\n\treturn 1;\n}\n")
    out = call(tools, "edit_file", path="a.ts", old_text="if (x) {\n    return 1;\n}", new_text="y")
    assert "indentation" in out and "lines 1-3" in out


def test_edit_miss_detects_pasted_line_numbers(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("alpha\nbeta\n")
    out = call(tools, "edit_file", path="a.ts", old_text="    1\talpha\n    2\tbeta", new_text="x")
    assert "line-number prefixes" in out


def test_edit_keeps_crlf_and_explains_crlf_miss(ws: Path, tools) -> None:
    (ws / "w.ts").write_bytes(b"a = 1;\r\nb = 2;\r\n")
    assert "CRLF" in call(tools, "edit_file", path="w.ts", old_text="a = 1;\nb = 2;", new_text="x")
    call(tools, "edit_file", path="w.ts", old_text="b = 2;", new_text="b = 3;")
    assert (ws / "w.ts").read_bytes() == b"a = 1;\r\nb = 3;\r\n"


def test_edit_refuses_when_file_changed_on_disk_since_last_read(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("const a = 1;\n")
    call(tools, "read_file", path="a.ts")
    call(tools, "bash", command="echo 'const b = 2;' >> a.ts")
    out = call(tools, "edit_file", path="a.ts", old_text="const a = 1;", new_text="const a = 5;")
    assert "changed on disk" in out and "read_file" in out
    assert (ws / "a.ts").read_text() == "const a = 1;\nconst b = 2;\n"
    call(tools, "read_file", path="a.ts")
    assert call(tools, "edit_file", path="a.ts", old_text="const a = 1;", new_text="const a = 5;").startswith(
        "Replaced"
    )
    # Its own edit does not count as an outside change.
    assert call(tools, "edit_file", path="a.ts", old_text="const b = 2;", new_text="const b = 6;").startswith(
        "Replaced"
    )


def test_edit_after_write_and_after_touch_is_allowed(ws: Path, tools) -> None:
    call(tools, "write_file", path="a.ts", content="v = 1;\n")
    os.utime(ws / "a.ts", ns=(1, 1))  # only the mtime changes: content is what matters
    assert call(tools, "edit_file", path="a.ts", old_text="v = 1;", new_text="v = 2;").startswith("Replaced")


def test_edit_of_a_file_never_read_is_allowed(ws: Path, tools) -> None:
    (ws / "a.ts").write_text("v = 1;\n")
    assert call(tools, "edit_file", path="a.ts", old_text="v = 1;", new_text="v = 2;").startswith("Replaced")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("", "x", "old_text is empty"),
        ("v = 1;", "v = 1;", "identical"),
        ("v = 1;", "// ... rest of code", "elision"),
    ],
)
def test_edit_refusals(ws: Path, tools, old: str, new: str, message: str) -> None:
    (ws / "a.ts").write_text("v = 1;\n")
    assert message in call(tools, "edit_file", path="a.ts", old_text=old, new_text=new)
    assert (ws / "a.ts").read_text() == "v = 1;\n"


def test_edit_missing_file_and_bad_arguments(tools) -> None:
    assert "file not found" in call(tools, "edit_file", path="nope.ts", old_text="a", new_text="b")
    assert "missing required argument(s): new_text" in call(tools, "edit_file", path="x", old_text="a")
    assert "unknown argument(s): old" in call(
        tools, "edit_file", path="x", old="a", new_text="b", old_text="c"
    )
