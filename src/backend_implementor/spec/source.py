"""YAML text -> plain Python data plus a map from key paths to source positions.

We compose the node graph ourselves (instead of `yaml.safe_load`) so every key and value keeps its line,
duplicate keys are errors rather than silently overwritten, and alias bombs / recursive aliases are
refused. Scalars follow YAML 1.2 habits: only true/false are booleans (`on`, `no`, `yes` stay strings)
and dates stay strings (`default: 2024-01-01` is validated as a date string, not a Python date).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from backend_implementor.spec.errors import PathT, SpecIssue, format_path

MAX_NODES = 200_000  # expanded node budget: a spec is small; this stops "billion laughs" alias bombs
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    pass


# Copy the resolver table so SafeLoader itself is untouched, minus YAML 1.1 timestamps and yes/no/on/off.
_Loader.yaml_implicit_resolvers = {
    ch: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class Marks:
    """Positions (1-based line, column) of keys and values by key path."""

    keys: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    values: dict[PathT, tuple[int, int]] = field(default_factory=dict)

    def find(self, path: PathT, *, key: bool = False) -> tuple[int | None, int | None]:
        """Position of `path` (its key when `key`), else of its nearest ancestor that has one."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            if path[:n] in self.values:
                return self.values[path[:n]]
        return (1, 1)


class _Abort(Exception):
    pass


class _Walker:
    def __init__(self, loader: _Loader, file: str):
        self.loader = loader
        self.file = file
        self.marks = Marks()
        self.issues: list[SpecIssue] = []
        self.count = 0
        self.active: set[int] = set()

    def issue(self, mark: yaml.Mark, path: PathT, message: str) -> None:
        self.issues.append(SpecIssue(self.file, mark.line + 1, mark.column + 1, format_path(path), message))

    def convert(self, node: yaml.Node, path: PathT) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self.issue(
                node.start_mark, path, f"document too large (more than {MAX_NODES} nodes after aliases)"
            )
            raise _Abort
        if len(path) > MAX_DEPTH:
            self.issue(node.start_mark, path, f"nested deeper than {MAX_DEPTH} levels")
            raise _Abort
        if id(node) in self.active:
            self.issue(node.start_mark, path, "recursive alias")
            raise _Abort
        self.marks.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: PathT) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            self.issue(node.start_mark, path, f"cannot read value {node.value!r}: {_oneline(exc)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.issue(node.start_mark, path, f"{node.value!r} is not a finite number")
            return None
        if not (value is None or isinstance(value, str | int | float | bool)):
            # !!binary, !!set and other exotic tags have no meaning in a spec
            self.issue(node.start_mark, path, f"unsupported YAML tag {node.tag!r}")
            return None
        return value

    def mapping(self, node: yaml.MappingNode, path: PathT) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issue(key_node.start_mark, path, "a key must be a plain string, not a list or mapping")
                continue
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                self.issue(key_node.start_mark, path, f"key {key_node.value!r} must be a string (quote it)")
                continue
            kpath = (*path, key)
            if key in out:
                first = self.marks.keys[kpath][0]
                self.issue(key_node.start_mark, kpath, f"duplicate key (first given on line {first})")
                continue
            self.marks.keys[kpath] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            self.marks.values[kpath] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            out[key] = self.convert(value_node, kpath)
        # `<<: *anchor` — explicit keys win; among merged mappings the first wins (YAML merge semantics).
        for source in merged:
            if not isinstance(source, yaml.MappingNode):
                self.issue(source.start_mark, path, "`<<` must merge a mapping (or a list of mappings)")
                continue
            for k, v in self.mapping(source, path).items():
                out.setdefault(k, v)
        return out


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def parse_yaml(text: str, file: str) -> tuple[Any, Marks, list[SpecIssue]]:
    """Parse one YAML (or JSON) document. Returns (data, marks, issues); data is None when unreadable."""
    marks = Marks()
    try:
        # the reader rejects control characters as soon as the loader is built, so build it inside the try
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        return None, marks, [_reader_issue(text, file, exc)]
    walker = _Walker(loader, file)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, walker.marks, [SpecIssue(file, 1, 1, "", "the file is empty")]
        data = walker.convert(node, ())
    except yaml.reader.ReaderError as exc:
        return None, walker.marks, [*walker.issues, _reader_issue(text, file, exc)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or _oneline(exc)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return None, walker.marks, [*walker.issues, SpecIssue(file, line, col, "", f"invalid YAML: {msg}")]
    except yaml.YAMLError as exc:
        issue = SpecIssue(file, None, None, "", f"invalid YAML: {_oneline(exc)}")
        return None, walker.marks, [*walker.issues, issue]
    except _Abort:
        return None, walker.marks, walker.issues
    except RecursionError:
        return None, walker.marks, [SpecIssue(file, None, None, "", "invalid YAML: nested too deeply")]
    finally:
        loader.dispose()
    return data, walker.marks, walker.issues


def _reader_issue(text: str, file: str, exc: yaml.reader.ReaderError) -> SpecIssue:
    before = text[: exc.position]
    line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    return SpecIssue(file, line, col, "", f"invalid YAML: character U+{exc.character:04X} is not allowed")
