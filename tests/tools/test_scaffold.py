"""The agent's `scaffold` tool: spec in the workspace -> generated project, confined and non-destructive."""

import json
from pathlib import Path

import pytest

from backend_implementor.tools import ToolContext, ToolError, build_tools

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def scaffold(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    ctx = ToolContext(workspace=ws)
    yield build_tools(ctx, ["scaffold"])["scaffold"], ws
    ctx.close()


def test_scaffold_into_workspace_root_beside_the_spec(scaffold):
    tool, ws = scaffold
    (ws / "bimpl.yaml").write_text((EXAMPLES / "blog.yaml").read_text())
    out = tool({"spec": "bimpl.yaml"})
    assert "Generated" in out and "npm ci --ignore-scripts" in out
    package = json.loads((ws / "package.json").read_text())
    assert package["name"] == "blog"
    assert (ws / "src" / "app.ts").is_file() and (ws / "bimpl.yaml").is_file()
    assert (ws / ".bimpl" / "manifest.json").is_file()


def test_scaffold_again_updates_the_project_and_keeps_edits(scaffold):
    tool, ws = scaffold
    spec = (EXAMPLES / "blog.yaml").read_text()
    (ws / "bimpl.yaml").write_text(spec)
    tool({"spec": "bimpl.yaml"})
    (ws / "src" / "app.ts").write_text("// edited by the agent\n")
    out = tool({"spec": "bimpl.yaml"})
    assert out.startswith("Updated 'blog'") and "migration" not in out
    assert (ws / "src" / "app.ts").read_text() == "// edited by the agent\n"
    anchor = "      title: "
    assert anchor in spec
    (ws / "bimpl.yaml").write_text(
        spec.replace(anchor, "      subtitle: {type: string, max_length: 100}\n" + anchor, 1)
    )
    out = tool({"spec": "bimpl.yaml"})
    assert "New migration drizzle/0001_add_posts_subtitle.sql" in out and "replaced: " in out
    assert "subtitle" in (ws / "src" / "db" / "schema.ts").read_text()
    (ws / "bimpl.yaml").write_text(spec)
    with pytest.raises(ToolError, match=r"(?s)drops column posts\.subtitle.*allow_destructive=true"):
        tool({"spec": "bimpl.yaml"})
    assert "subtitle" in (ws / "src" / "db" / "schema.ts").read_text()


def test_scaffold_refuses_to_replace_files_it_did_not_write(scaffold):
    tool, ws = scaffold
    (ws / "bimpl.yaml").write_text((EXAMPLES / "blog.yaml").read_text())
    (ws / "package.json").write_text("{}\n")
    with pytest.raises(ToolError, match=r"1 file\(s\) would be replaced: package.json. Pass overwrite=true"):
        tool({"spec": "bimpl.yaml"})
    assert (ws / "package.json").read_text() == "{}\n"


def test_scaffold_into_subfolder(scaffold):
    tool, ws = scaffold
    (ws / "spec.yaml").write_text((EXAMPLES / "library.yaml").read_text())
    out = tool({"spec": "spec.yaml", "out_dir": "api"})
    assert "in api" in out and "cd api &&" in out
    assert (ws / "api" / "package.json").is_file()


def test_spec_errors_name_line_and_key(scaffold):
    tool, ws = scaffold
    (ws / "bad.yaml").write_text(
        "name: shop\nresources:\n  items:\n    fields:\n      owner: {type: ref, to: userz}\n"
    )
    with pytest.raises(ToolError) as info:
        tool({"spec": "bad.yaml"})
    message = str(info.value)
    assert "fix them and call scaffold again" in message
    assert "bad.yaml:5" in message and "resources.items.fields.owner.to" in message
    assert not (ws / "package.json").exists()


@pytest.mark.parametrize("out_dir", ["../outside", "/etc", "a/../../x"])
def test_out_dir_confined(scaffold, out_dir, tmp_path):
    tool, ws = scaffold
    (ws / "spec.yaml").write_text((EXAMPLES / "blog.yaml").read_text())
    with pytest.raises(ToolError):
        tool({"spec": "spec.yaml", "out_dir": out_dir})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_missing_spec(scaffold):
    tool, _ = scaffold
    with pytest.raises(ToolError):
        tool({"spec": "nope.yaml"})
