"""Hostile path arguments: every one gives a clear error and nothing outside the workspace changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tool_helpers import call

from backend_implementor.tools import ToolError, resolve_in_workspace

PWNED = "bimpl_pwned_marker"


@pytest.fixture
def hostile(ws: Path, outside: Path, tmp_path: Path) -> dict[str, Path]:
    """A workspace full of traps, next to an `outside` directory holding a secret."""
    (ws / "a.txt").write_text("hello\n")
    (ws / "sub" / "deeper").mkdir(parents=True)
    (ws / "link_out").symlink_to("../outside")  # relative symlink to a directory outside
    (ws / "abs_link").symlink_to("/etc")
    (ws / "file_link").symlink_to(outside / "secret.txt")
    (ws / "dangling").symlink_to(outside / f"{PWNED}_dangling")
    (ws / "sub" / "inner_link").symlink_to("../../outside")
    (ws / "loop").symlink_to("loop")
    os.mkfifo(ws / "fifo")
    (tmp_path / "ws_sibling").mkdir()
    return {"ws": ws, "outside": outside, "sibling": tmp_path / "ws_sibling"}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# Refused by every tool. Strings use {ws}, {outside}, {sibling} for absolute paths of the fixture dirs.
HOSTILE = [
    "../outside/secret.txt",
    f"../outside/{PWNED}",
    "../../etc/passwd",
    f"../../{PWNED}",
    "sub/../../outside/secret.txt",
    f"sub/deeper/../../../outside/{PWNED}",
    f"./../outside/{PWNED}",
    "..",
    "../",
    "../..",
    "sub/../..",
    "{outside}/secret.txt",
    f"{{outside}}/{PWNED}",
    "/etc/passwd",
    f"/etc/{PWNED}",
    "/",
    "//etc/passwd",
    "/proc/self/root/etc/passwd",
    "/dev/null",
    f"{{ws}}/../outside/{PWNED}",
    f"{{sibling}}/{PWNED}",  # a sibling whose name starts with the workspace's: not inside
    f"../ws_sibling/{PWNED}",
    "link_out/secret.txt",
    f"link_out/{PWNED}",
    "link_out",
    "abs_link/passwd",
    f"abs_link/{PWNED}",
    "abs_link",
    "file_link",
    "dangling",
    "sub/inner_link/secret.txt",
    f"sub/inner_link/{PWNED}",
    "{ws}/link_out/secret.txt",
    "loop",
    "",
    "   ",
    "a\x00b",
    "a.txt\x00../../outside/secret.txt",
    "..\\outside\\secret.txt",
    "..\\..\\etc\\passwd",
    "sub\\..\\..\\outside\\x",
    "\\\\server\\share\\x",
    "line\nbreak.txt",
    "tab\there.txt",
    "\x1b[31mred.txt",
    "x" * 300,
    "/".join(["d" * 200] * 25),
    ".",
    "./",
    "sub",
    "sub/",
    "{ws}",
    "a.txt/child.txt",
    "fifo",
    "bad\udcffname.txt",
]


def _expand(path: str, dirs: dict[str, Path]) -> str:
    if "{" in path:
        return path.format(ws=dirs["ws"], outside=dirs["outside"], sibling=dirs["sibling"])
    return path


def _assert_nothing_outside(dirs: dict[str, Path], before: dict[str, bytes], tmp_root: Path) -> None:
    assert _snapshot(dirs["outside"]) == before
    assert not any(dirs["sibling"].iterdir())
    assert not (Path("/etc") / PWNED).exists()
    assert not list(tmp_root.glob(f"{PWNED}*"))
    assert not list(tmp_root.parent.glob(f"{PWNED}*"))


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_path_is_refused_by_every_tool(raw: str, hostile, tools, tmp_path: Path) -> None:
    path = _expand(raw, hostile)
    before = _snapshot(hostile["outside"])
    results = [
        call(tools, "read_file", path=path),
        call(tools, "write_file", path=path, content=f"{PWNED}\n"),
        call(tools, "edit_file", path=path, old_text="TOP SECRET", new_text=PWNED),
    ]
    for result in results:
        assert result.startswith("Error: "), result
        assert "TOP SECRET" not in result and "root:" not in result
        # A clear one-line explanation, not a traceback.
        assert "Traceback" not in result
    _assert_nothing_outside(hostile, before, tmp_path)


@pytest.mark.parametrize("value", [123, None, ["a.txt"], {"p": 1}, True])
def test_non_string_paths_are_refused(value, hostile, tools) -> None:
    for name, extra in [("read_file", {}), ("write_file", {"content": "x"})]:
        result = call(tools, name, path=value, **extra)
        assert result.startswith("Error: ") and "path" in result


def test_messages_name_the_problem(hostile, tools) -> None:
    assert "outside the workspace" in call(tools, "read_file", path="/etc/passwd")
    assert "escapes the workspace with '..'" in call(tools, "read_file", path="../outside/secret.txt")
    assert "symlink that points outside" in call(tools, "read_file", path="link_out/secret.txt")
    assert "NUL byte" in call(tools, "read_file", path="a\x00b")
    assert "backslash" in call(tools, "read_file", path="..\\x")
    assert "is a directory" in call(tools, "read_file", path="sub")
    assert "not a regular file" in call(tools, "read_file", path="fifo")
    assert "too long" in call(tools, "read_file", path="x" * 300)
    assert "empty" in call(tools, "read_file", path="")
    assert "not a directory" in call(tools, "write_file", path="a.txt/child.txt", content="x")


def test_symlink_to_etc_created_by_bash_cannot_be_followed(hostile, tools) -> None:
    assert "[exit code 0]" in call(tools, "bash", command="ln -s /etc made_by_bash && ln -s /etc/passwd pw")
    for path in ["made_by_bash/passwd", "pw", f"made_by_bash/{PWNED}"]:
        assert "symlink" in call(tools, "read_file", path=path)
        assert call(tools, "write_file", path=path, content="x").startswith("Error: ")
    assert not (Path("/etc") / PWNED).exists()


def test_read_only_problems(ws: Path, tools) -> None:
    (ws / "bin.dat").write_bytes(b"\x7fELF\x00\x01\x02")
    (ws / "latin1.txt").write_bytes("café".encode("latin-1"))
    with open(ws / "huge.txt", "wb") as fh:  # sparse: 11 MB without writing them
        fh.truncate(11 * 1024 * 1024)
    assert "binary" in call(tools, "read_file", path="bin.dat")
    assert "not valid UTF-8" in call(tools, "read_file", path="latin1.txt")
    assert "too large" in call(tools, "read_file", path="huge.txt")
    assert "binary" in call(tools, "edit_file", path="bin.dat", old_text="ELF", new_text="X")
    assert "not valid UTF-8" in call(tools, "edit_file", path="latin1.txt", old_text="caf", new_text="x")
    assert (ws / "latin1.txt").read_bytes() == "café".encode("latin-1")
    result = call(tools, "read_file", path="missing.txt")
    assert "file not found" in result and "latin1.txt" in result  # names what is there


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2foutside",
        "~/.bashrc",
        "~root/x",
        "$HOME/x",
        ".../x",
        "file:///etc/x",
    ],
)
def test_literal_paths_stay_inside(path: str, hostile, tools, tmp_path: Path) -> None:
    """No URL decoding, `~` or `$VAR` expansion: these are ordinary names inside the workspace."""
    before = _snapshot(hostile["outside"])
    assert call(tools, "write_file", path=path, content="x\n").startswith("Created ")
    created = Path(os.path.normpath(hostile["ws"] / path))
    assert created.read_text() == "x\n"
    assert hostile["ws"] in created.parents
    _assert_nothing_outside(hostile, before, tmp_path)


@pytest.mark.parametrize(
    "path",
    [
        "a.txt",
        "./a.txt",
        "sub/../a.txt",
        "{ws}/a.txt",
        "sub/deeper/../../a.txt",
        "inner/../a.txt",
        "inner_file",
    ],
)
def test_paths_that_stay_inside_are_accepted(path: str, hostile, ctx, tools) -> None:
    (hostile["ws"] / "inner").symlink_to("sub")  # symlinks inside the workspace are fine
    (hostile["ws"] / "inner_file").symlink_to("a.txt")
    resolved = resolve_in_workspace(ctx, _expand(path, hostile), must_exist=True)
    assert resolved == hostile["ws"] / "a.txt"
    assert "hello" in call(tools, "read_file", path=_expand(path, hostile))


def test_unicode_and_spaces_are_fine(ws: Path, tools) -> None:
    assert call(tools, "write_file", path="ünïcode dir/файл 1.ts", content="x\n").startswith("Created ")
    assert (ws / "ünïcode dir" / "файл 1.ts").read_text() == "x\n"


def test_resolve_requires_existing_regular_file(ctx, ws: Path) -> None:
    with pytest.raises(ToolError, match="file not found"):
        resolve_in_workspace(ctx, "nope.ts", must_exist=True)
    assert resolve_in_workspace(ctx, "new/dir/file.ts") == ws / "new" / "dir" / "file.ts"
