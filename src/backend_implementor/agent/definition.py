"""Agent definitions: Markdown with optional YAML frontmatter; the body is the system prompt.

Two formats load:
- Claude Code subagent style: frontmatter `name`, `description`, `tools` (comma list or YAML list),
  `model`, `max_turns`.
- The sectioned style of the seed definition: `## Available Tools` (bullets naming backticked tools),
  `## Expected Deliverables` (bullets `**key**: text`), `## Technology Focus` (#hashtags).
Frontmatter wins where both say something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from backend_implementor.agent.errors import UsageError

# Tools the loop itself provides, beside the workspace tools in `backend_implementor.tools`.
LOOP_TOOLS = ("finish",)

# Claude Code's tool names, so its subagent files load unchanged.
TOOL_ALIASES = {
    "read": "read_file",
    "write": "write_file",
    "edit": "edit_file",
    "multiedit": "edit_file",
    "bash": "bash",
}

BUILTIN_PACKAGE = "backend_implementor.agent.builtin"


class DefinitionError(UsageError):
    """An agent definition that cannot be loaded; the message names the file and the problem."""


@dataclass
class AgentDefinition:
    name: str
    system_prompt: str
    source: str  # a path, or "built-in"
    description: str = ""
    tools: list[str] = field(default_factory=list)  # empty = every known tool
    model: str | None = None
    max_turns: int | None = None
    deliverables: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def known_tools() -> list[str]:
    from backend_implementor.tools import KNOWN_TOOLS

    return [*KNOWN_TOOLS, *LOOP_TOOLS]


def parse_definition(text: str, source: str, default_name: str) -> AgentDefinition:
    meta, body, body_line = _split_frontmatter(text, source)
    sections = _sections(body)

    name = meta.get("name") or default_name
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise DefinitionError(
            f"{source}: frontmatter 'name' must be a simple name like 'api-builder', got {name!r}"
        )
    description = meta.get("description") or _first_paragraph(body)
    if not isinstance(description, str):
        raise DefinitionError(f"{source}: frontmatter 'description' must be text")

    tools = _tools_from_meta(meta.get("tools"), source) if "tools" in meta else None
    if tools is None and "available tools" in sections:
        tools = re.findall(r"^\s*[-*]\s+`([^`]+)`", sections["available tools"], re.M)
    tools = _check_tools(tools or [], source)

    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        raise DefinitionError(
            f"{source}: frontmatter 'model' must be a model name such as 'anthropic/claude-sonnet-4-5'"
        )
    if model in ("inherit", ""):
        model = None
    max_turns = meta.get("max_turns")
    if max_turns is not None and (
        not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1
    ):
        raise DefinitionError(
            f"{source}: frontmatter 'max_turns' must be a positive integer, got {max_turns!r}"
        )

    deliverables = {
        key.strip(): value.strip()
        for key, value in re.findall(
            r"^\s*[-*]\s+\*\*([^*]+)\*\*\s*:?\s*(.*)$", sections.get("expected deliverables", ""), re.M
        )
    }
    tags = list(dict.fromkeys(re.findall(r"#([A-Za-z0-9][\w-]*)", sections.get("technology focus", ""))))
    extra_tags = meta.get("tags") or []
    if isinstance(extra_tags, list):
        tags += [str(t) for t in extra_tags if str(t) not in tags]

    if not body.strip():
        raise DefinitionError(
            f"{source}:{body_line}: the definition has no body; the body is the system prompt"
        )
    return AgentDefinition(
        name=name,
        system_prompt=body.strip() + "\n",
        source=source,
        description=description.strip(),
        tools=tools,
        model=model,
        max_turns=max_turns,
        deliverables=deliverables,
        tags=tags,
    )


def load_definition_file(path: Path) -> AgentDefinition:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DefinitionError(f"{path}: no such agent definition file") from None
    except IsADirectoryError:
        raise DefinitionError(f"{path}: is a directory, expected a Markdown agent definition") from None
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_definition(text, str(path), path.stem)


def search_dirs(cwd: Path | None = None) -> list[Path]:
    cwd = cwd or Path.cwd()
    return [cwd / ".bimpl" / "agents", Path.home() / ".config" / "bimpl" / "agents"]


def _builtin_files() -> dict[str, str]:
    folder = resources.files(BUILTIN_PACKAGE)
    return {
        entry.name[:-3]: entry.read_text("utf-8") for entry in folder.iterdir() if entry.name.endswith(".md")
    }


def resolve_definition(name_or_file: str | None, cwd: Path | None = None) -> AgentDefinition:
    """`--agent` value → definition: an existing file path, else a name on the search path."""
    name = name_or_file or "backend-implementor"
    path = Path(name).expanduser()
    if path.suffix == ".md" or "/" in name or path.is_file():
        return load_definition_file(path)
    for folder in search_dirs(cwd):
        candidate = folder / f"{name}.md"
        if candidate.is_file():
            return load_definition_file(candidate)
    builtins = _builtin_files()
    if name in builtins:
        return parse_definition(builtins[name], "built-in", name)
    available = sorted({d.name for d in list_definitions(cwd)})
    raise DefinitionError(f"no agent named {name!r}; available: {', '.join(available)} (or pass a .md file)")


def list_definitions(cwd: Path | None = None) -> list[AgentDefinition]:
    """Every definition on the search path; earlier places shadow later ones with the same name."""
    found: dict[str, AgentDefinition] = {}
    for folder in search_dirs(cwd):
        if folder.is_dir():
            for file in sorted(folder.glob("*.md")):
                definition = load_definition_file(file)
                found.setdefault(definition.name, definition)
    for name, text in sorted(_builtin_files().items()):
        definition = parse_definition(text, "built-in", name)
        found.setdefault(definition.name, definition)
    return list(found.values())


def _split_frontmatter(text: str, source: str) -> tuple[dict, str, int]:
    """Return (metadata, body, line number where the body starts)."""
    match = re.match(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", text, re.S | re.M)
    if not match:
        if text.startswith("---"):
            raise DefinitionError(f"{source}:1: frontmatter starts with '---' but has no closing '---' line")
        return {}, text, 1
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(f"{source}:{line}: frontmatter is not valid YAML: {problem}") from None
    if not isinstance(meta, dict):
        raise DefinitionError(
            f"{source}:2: frontmatter must be a mapping of keys (name, description, tools, model)"
        )
    known = {"name", "description", "tools", "model", "max_turns", "tags", "color"}
    unknown = sorted(str(k) for k in meta if k not in known)
    if unknown:
        raise DefinitionError(
            f"{source}: unknown frontmatter key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return meta, text[match.end() :], text[: match.end()].count("\n") + 1


def _sections(body: str) -> dict[str, str]:
    """`## Heading` → the text under it (lower-cased headings)."""
    parts = re.split(r"^##\s+(.+?)\s*$", body, flags=re.M)
    return {parts[i].strip().lower(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _first_paragraph(body: str) -> str:
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if block and not block.startswith("#"):
            return re.sub(r"\s+", " ", block.replace("**", ""))
    return ""


def _tools_from_meta(value: object, source: str) -> list[str]:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [t.strip() for t in value]
    raise DefinitionError(
        f"{source}: frontmatter 'tools' must be a comma-separated string or a list of tool names"
    )


def _check_tools(names: list[str], source: str) -> list[str]:
    known = known_tools()
    result: list[str] = []
    for raw in names:
        name = raw if raw in known else TOOL_ALIASES.get(raw.lower(), raw)
        if name not in known:
            raise DefinitionError(f"{source}: unknown tool {raw!r}; known tools: {', '.join(known)}")
        if name not in result:
            result.append(name)
    return result
