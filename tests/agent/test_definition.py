from pathlib import Path

import pytest

from backend_implementor.agent.definition import (
    DefinitionError,
    list_definitions,
    load_definition_file,
    parse_definition,
    resolve_definition,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "backend-implementor-agent.md"


@pytest.mark.skipif(not SEED.exists(), reason="../shared is not beside the repo")
def test_seed_definition_loads_tools_deliverables_and_tags():
    d = load_definition_file(SEED)
    assert d.name == "backend-implementor-agent"
    assert d.tools == ["write_file", "read_file", "bash", "edit_file"]
    assert list(d.deliverables) == ["api-endpoints", "database-schemas", "middleware", "tests"]
    assert d.deliverables["tests"].startswith("Unit and integration tests")
    assert d.tags == [
        "typescript",
        "node",
        "express",
        "api",
        "database",
        "authentication",
        "security",
        "microservices",
    ]
    assert d.system_prompt.startswith("# Backend Implementor Agent")
    assert "Backend Implementor" in d.description


def test_frontmatter_claude_code_format_with_comma_tools_and_aliases():
    text = "---\nname: api-builder\ndescription: Builds APIs\ntools: Read, Write, bash\nmodel: openai/gpt-5\nmax_turns: 7\n---\nYou build APIs.\n"
    d = parse_definition(text, "x.md", "x")
    assert (d.name, d.description, d.model, d.max_turns) == ("api-builder", "Builds APIs", "openai/gpt-5", 7)
    assert d.tools == ["read_file", "write_file", "bash"]
    assert d.system_prompt == "You build APIs.\n"


def test_frontmatter_yaml_list_tools_and_inherit_model():
    text = "---\nname: a\ntools:\n  - read_file\n  - finish\nmodel: inherit\n---\nBody\n"
    d = parse_definition(text, "a.md", "a")
    assert d.tools == ["read_file", "finish"]
    assert d.model is None


def test_no_frontmatter_uses_file_name_and_all_tools():
    d = parse_definition("Just a prompt.\n", "p.md", "plain")
    assert d.name == "plain" and d.tools == [] and d.description == "Just a prompt."


def test_frontmatter_wins_over_sections():
    text = "---\ntools: bash\n---\n## Available Tools\n- `read_file` - read\n"
    assert parse_definition(text, "a.md", "a").tools == ["bash"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\ntools: read_file, telepathy\n---\nbody", "unknown tool 'telepathy'; known tools: read_file"),
        ("## Available Tools\n- `browse_web` - no\n", "unknown tool 'browse_web'"),
        ("---\nname: x\n  bad: indent\n---\nbody", "a.md:3: frontmatter is not valid YAML"),
        (
            "---\nname: x\nbody without end",
            "a.md:1: frontmatter starts with '---' but has no closing '---' line",
        ),
        ("---\n- a\n- b\n---\nbody", "frontmatter must be a mapping"),
        ("---\nnmae: x\n---\nbody", "unknown frontmatter key(s): nmae"),
        ("---\nmax_turns: -3\n---\nbody", "'max_turns' must be a positive integer"),
        ("---\ntools: {a: 1}\n---\nbody", "'tools' must be a comma-separated string or a list"),
        ("---\nname: has space\n---\nbody", "'name' must be a simple name"),
        ("---\nname: x\n---\n\n", "has no body"),
    ],
)
def test_bad_definitions_give_clear_errors(text, message):
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, "a.md", "a")
    assert message in str(info.value)


def test_unknown_tool_error_lists_known_tools():
    with pytest.raises(DefinitionError) as info:
        parse_definition("---\ntools: nope\n---\nx", "a.md", "a")
    for name in ("read_file", "write_file", "edit_file", "bash", "finish"):
        assert name in str(info.value)


def test_file_errors(tmp_path):
    with pytest.raises(DefinitionError, match="no such agent definition file"):
        load_definition_file(tmp_path / "missing.md")
    with pytest.raises(DefinitionError, match="is a directory"):
        load_definition_file(tmp_path)
    bad = tmp_path / "bin.md"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DefinitionError, match="not UTF-8"):
        load_definition_file(bad)


def test_builtin_backend_implementor_covers_the_seed():
    d = resolve_definition(None, Path("/nonexistent"))
    assert d.name == "backend-implementor" and d.source == "built-in"
    assert {"read_file", "write_file", "edit_file", "bash", "finish"} <= set(d.tools)
    assert list(d.deliverables) == ["api-endpoints", "database-schemas", "middleware", "tests"]
    for words in ("Security first", "Analyse the repository", "Design the schema", "Harden", "Document"):
        assert words.lower() in d.system_prompt.lower()


def test_search_path_project_dir_shadows_builtin(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    agents = tmp_path / ".bimpl" / "agents"
    agents.mkdir(parents=True)
    (agents / "backend-implementor.md").write_text("---\nname: backend-implementor\n---\nLocal override.\n")
    (agents / "reviewer.md").write_text("Reviews code.\n")
    home_agents = tmp_path / "home" / ".config" / "bimpl" / "agents"
    home_agents.mkdir(parents=True)
    (home_agents / "reviewer.md").write_text("Home reviewer.\n")
    (home_agents / "helper.md").write_text("Home helper.\n")
    assert resolve_definition("backend-implementor", tmp_path).system_prompt == "Local override.\n"
    assert resolve_definition("reviewer", tmp_path).system_prompt == "Reviews code.\n"
    assert resolve_definition("helper", tmp_path).system_prompt == "Home helper.\n"
    names = [d.name for d in list_definitions(tmp_path)]
    assert sorted(names) == ["backend-implementor", "helper", "reviewer"]
    with pytest.raises(
        DefinitionError, match="no agent named 'ghost'; available: backend-implementor, helper, reviewer"
    ):
        resolve_definition("ghost", tmp_path)
