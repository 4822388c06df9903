from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend_implementor.tools import ToolContext, build_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("TOP SECRET\n")
    return path.resolve()


@pytest.fixture
def ctx(ws: Path):
    context = ToolContext(
        workspace=ws, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, command_timeout=30
    )
    yield context
    context.close()


@pytest.fixture
def tools(ctx: ToolContext):
    return build_tools(ctx, ["read_file", "write_file", "edit_file", "bash"])
