"""The file tools under a swap race: a process the model started exchanges a workspace directory with a
symlink to a folder outside (renameat2 RENAME_EXCHANGE, as fast as it can) while the tools read, write and
edit through that directory. The path check passes on the real directory; the open must not then follow
the link. Nothing may be written, edited or read outside."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import pytest
from tool_helpers import call

RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    return _renameat2(AT_FDCWD, bytes(a), AT_FDCWD, bytes(b), RENAME_EXCHANGE) == 0


@pytest.mark.skipif(_renameat2 is None, reason="libc has no renameat2")
def test_no_escape_while_a_directory_is_swapped_with_a_symlink(ws: Path, outside: Path, tools) -> None:
    real = ws / "d"
    real.mkdir()
    (real / "f.txt").write_text("inside line\n")
    (outside / "f.txt").write_text("OUTSIDE line\n")
    link = ws / "swap"
    link.symlink_to(outside, target_is_directory=True)
    assert _exchange(real, link), "renameat2 RENAME_EXCHANGE is not supported here"
    assert _exchange(real, link)

    stop = threading.Event()
    swaps = 0

    def swapper() -> None:
        nonlocal swaps
        while not stop.is_set():
            swaps += _exchange(real, link)

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    outcomes: dict[str, int] = {"ok": 0, "refused": 0}
    leaked_reads = 0
    try:
        for i in range(1500):
            write = call(tools, "write_file", path=f"d/new{i % 7}.txt", content="inside line\n")
            read = call(tools, "read_file", path="d/f.txt")
            edit = call(tools, "edit_file", path="d/f.txt", old_text="line", new_text="line")  # refused: same
            edit2 = call(tools, "edit_file", path="d/f.txt", old_text="inside line", new_text="inside line ")
            call(tools, "edit_file", path="d/f.txt", old_text="inside line ", new_text="inside line")
            leaked_reads += "OUTSIDE" in read or "OUTSIDE" in edit or "OUTSIDE" in edit2
            for out in (write, read):
                outcomes["refused" if out.startswith("Error") else "ok"] += 1
    finally:
        stop.set()
        thread.join()
    # Put the real directory back where it was, if the swapper left it exchanged.
    if real.is_symlink():
        _exchange(real, link)

    assert swaps > 1000, swaps  # the race really ran
    assert outcomes["ok"] > 0, outcomes  # and the tools still worked between swaps
    assert leaked_reads == 0
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt", "secret.txt"]
    assert (outside / "f.txt").read_text() == "OUTSIDE line\n"
    assert not list(outside.glob("*.bimpl-tmp")) and not list(outside.glob(".*"))
