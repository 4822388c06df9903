"""read_file, write_file and edit_file."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, ClassVar

from backend_implementor.tools.base import Tool, ToolError
from backend_implementor.tools.workspace import (
    atomic_write,
    display,
    exists_beneath,
    read_text,
    resolve_in_workspace,
)

READ_MAX_LINES = 2000
READ_MAX_BYTES = 100 * 1024
READ_MAX_LINE_CHARS = 2000  # one minified line must not eat the whole budget
WRITE_MAX_BYTES = 5 * 1024 * 1024
SNIPPET_CONTEXT = 4


def _numbered(lines: list[str], first: int, width: int) -> list[str]:
    out = []
    for number, line in enumerate(lines, start=first):
        if len(line) > READ_MAX_LINE_CHARS:
            line = (
                line[:READ_MAX_LINE_CHARS]
                + f" ... [line truncated, {len(line) - READ_MAX_LINE_CHARS} more chars]"
            )
        out.append(f"{number:>{width}}\t{line}")
    return out


def _split_lines(text: str) -> list[str]:
    """Lines without their terminators; a final newline does not make an extra empty line."""
    return text.splitlines() if text else []


class ReadFile(Tool):
    name = "read_file"
    description = (
        "Read a text file in the workspace. Output lines are prefixed with their line number and a tab "
        "(the prefix is not part of the file). Optional 1-based inclusive start_line/end_line. At most "
        f"{READ_MAX_LINES} lines or {READ_MAX_BYTES // 1024} KB per call; a note says how to read the rest."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path relative to the workspace."},
            "start_line": {"type": "integer", "description": "First line to show (1-based)."},
            "end_line": {"type": "integer", "description": "Last line to show (inclusive)."},
        },
        "required": ["path"],
    }

    def run(self, path: str, start_line: int | None = None, end_line: int | None = None, **_: Any) -> str:
        resolved = resolve_in_workspace(self.ctx, path, must_exist=True)
        text, fp = read_text(self.ctx, resolved)
        self.ctx.seen[resolved] = fp
        rel = display(self.ctx, resolved)
        lines = _split_lines(text)
        total = len(lines)
        if total == 0:
            return f"{rel} is empty (0 lines)."
        start = 1 if start_line is None else start_line
        end = total if end_line is None else end_line
        if start < 1:
            raise ToolError(f"start_line must be >= 1 (got {start})")
        if start > total:
            raise ToolError(f"start_line {start} is past the end of {rel} ({total} lines)")
        if end < start:
            raise ToolError(f"end_line {end} is before start_line {start}")
        end = min(end, total)

        width = max(5, len(str(end)))
        shown: list[str] = []
        size = 0
        last = start - 1
        for line in _numbered(lines[start - 1 : end], start, width):
            if len(shown) >= READ_MAX_LINES or size + len(line) + 1 > READ_MAX_BYTES:
                break
            shown.append(line)
            size += len(line) + 1
            last += 1
        body = "\n".join(shown)
        if last < end:
            return (
                f"{body}\n[showing lines {start}-{last} of {total}; the output limit was reached. "
                f"Call read_file with start_line={last + 1} to continue.]"
            )
        if start != 1 or end != total:
            return f"{body}\n[lines {start}-{end} of {total}]"
        return body


# --- elision placeholders -------------------------------------------------------------------------------
# A model that writes `// ... rest of the file unchanged` instead of the code destroys that code: write_file
# replaces the whole file. The patterns only match lines that are nothing but a comment (or a bare phrase),
# so code such as `fn(...args)`, `"// ... in a string"` or `[...items]` is never refused.
_COMMENT = r"(?://+|#+|/\*+|<!--|--|\{\s*/\*+)"
_ELLIPSIS = r"(?:\.\s?\.\s?\.|…)"
_NOUNS = (
    r"(?:file|code|codes|implementation|class|function|functions|module|component|methods?|routes?|"
    r"handlers?|tests?|content|config(?:uration)?|imports?|logic|fields|properties|endpoints|"
    r"middlewares?|types|exports|definitions|cases|lines|body|styles|markup|html|schema)"
)
# "existing routes", "rest of the handlers": a placeholder only when it is the whole comment or says
# it stands for something left out; "// Rest of the function handles errors" is a normal comment.
_NOUN_PHRASE = (
    rf"(?:rest\s+of\s+(?:the\s+|this\s+|your\s+|my\s+)?|(?:the\s+)?(?:existing|previous|original|other|"
    rf"remaining|unchanged|same)\s+){_NOUNS}"
)
_END = rf"(?:\s*(?:{_ELLIPSIS}|[)\]}}.:;]|\*+/|-->))*\s*$"
_AS_IS = (
    r"\s+(?:(?:remains?|stays?)\b|(?:(?:is|are|left|kept|goes|go)\s+)?(?:unchanged|omitted|elided|here|"
    r"as\s+(?:is|before)|(?:the\s+)?same|from\s+before)\b|\.\.\.|…)"
)
_STRONG = (
    r"(?:rest\s+of\s+(?:the\s+)?(?:file|code)\b|(?:remains?|stays?|is|are)\s+(?:the\s+same|unchanged)\b"
    r"|same\s+as\s+(?:before|above|the\s+original|original)\b|(?:code|implementation|content)\s+"
    r"(?:omitted|elided)\b|(?:keep|leave)\s+(?:the\s+)?(?:existing|rest|remaining)\b)"
)
_ELISION_PATTERNS = [
    # `// ...`, `# …`, `/* ... */`, `<!-- ... -->`, `{/* ... */}` alone on a line.
    re.compile(rf"^\s*{_COMMENT}\s*{_ELLIPSIS}\s*(?:\*+/\s*\}}?|-->)?\s*$"),
    # `// ... rest of the file`, `# ... existing code ...`, `/* ... */ unchanged`, `<!-- ... more -->`
    re.compile(rf"^\s*{_COMMENT}\s*{_ELLIPSIS}\s*(?:\*+/)?\s*[\w(\[]", re.IGNORECASE),
    # `// rest of code remains the same`, `# (existing code)`, `<!-- existing content -->`
    re.compile(rf"^\s*{_COMMENT}.*?{_STRONG}", re.IGNORECASE),
    re.compile(
        rf"^\s*{_COMMENT}\s*[(\[]?\s*(?:{_ELLIPSIS}\s*)?{_NOUN_PHRASE}(?:{_END}|{_AS_IS})", re.IGNORECASE
    ),
    # The same without a comment marker: `Rest of the code remains the same...`, `[... existing code ...]`
    re.compile(rf"^\s*[(\[]?\s*(?:{_ELLIPSIS}\s*)?{_STRONG}", re.IGNORECASE),
    re.compile(rf"^\s*[(\[]?\s*(?:{_ELLIPSIS}\s*)?{_NOUN_PHRASE}(?:{_END}|{_AS_IS})", re.IGNORECASE),
]
# Prose files legitimately contain `// ...` in examples.
_PROSE_SUFFIXES = {".md", ".markdown", ".mdx", ".txt", ".rst", ".adoc"}


def find_elision(text: str, path: Path) -> tuple[int, str] | None:
    """The first line (1-based number, text) that looks like an elision placeholder, or None."""
    if path.suffix.lower() in _PROSE_SUFFIXES:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > 300:
            continue
        if any(p.search(line) for p in _ELISION_PATTERNS):
            return number, line.strip()
    return None


class WriteFile(Tool):
    name = "write_file"
    description = (
        "Create or overwrite a file in the workspace with the complete content (parent directories are "
        "created). The file is replaced atomically. Always write the whole file: placeholders such as "
        "'// ... rest of the file unchanged' are refused. To change part of an existing file use edit_file."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path relative to the workspace."},
            "content": {"type": "string", "description": "The complete new content of the file."},
        },
        "required": ["path", "content"],
    }

    def run(self, path: str, content: str, **_: Any) -> str:
        resolved = resolve_in_workspace(self.ctx, path)
        rel = display(self.ctx, resolved)
        if len(content) > WRITE_MAX_BYTES:
            raise ToolError(f"content is too large ({len(content):,} chars; limit {WRITE_MAX_BYTES:,})")
        elided = find_elision(content, resolved)
        if elided:
            number, line = elided
            raise ToolError(
                f"write_file refused: line {number} of the content looks like an elision placeholder "
                f"({line!r}). write_file replaces the whole file, so the elided code would be lost. "
                f"Write the complete content, or use edit_file to change only part of {rel}."
            )
        existed = exists_beneath(self.ctx, resolved)
        self.ctx.seen[resolved] = atomic_write(self.ctx, resolved, content)
        count = len(_split_lines(content))
        return f"{'Overwrote' if existed else 'Created'} {rel} ({count} line{'s' if count != 1 else ''})."


class EditFile(Tool):
    name = "edit_file"
    description = (
        "Replace exact text in a file. old_text must match the file exactly (whitespace and indentation "
        "included, no line-number prefixes) and be unique, unless replace_all is true. Include a few "
        "surrounding lines to make it unique. Shows the edited region afterwards."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path relative to the workspace."},
            "old_text": {"type": "string", "description": "Exact text to replace."},
            "new_text": {"type": "string", "description": "Replacement text."},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."},
        },
        "required": ["path", "old_text", "new_text"],
    }

    def run(self, path: str, old_text: str, new_text: str, replace_all: bool = False, **_: Any) -> str:
        resolved = resolve_in_workspace(self.ctx, path, must_exist=True)
        rel = display(self.ctx, resolved)
        if old_text == "":
            raise ToolError("old_text is empty; to create or rewrite a whole file use write_file")
        if old_text == new_text:
            raise ToolError("old_text and new_text are identical; nothing to change")
        text, fp = read_text(self.ctx, resolved)
        seen = self.ctx.seen.get(resolved)
        # Size and content, not mtime: a `touch` or a formatter that changes nothing is harmless.
        if seen is not None and seen[1:] != fp[1:]:
            raise ToolError(
                f"{rel} changed on disk since you last read or wrote it (a command or another process "
                f"modified it). Read it again with read_file, then redo the edit against the current content."
            )
        count = text.count(old_text)
        if count == 0:
            raise ToolError(f"old_text was not found in {rel}.{_miss_hint(text, old_text)}")
        if count > 1 and not replace_all:
            lines = _match_lines(text, old_text)
            raise ToolError(
                f"old_text matches {count} times in {rel} (starting at lines {', '.join(map(str, lines))}"
                f"{', ...' if count > len(lines) else ''}). "
                f"Include more surrounding lines to make it unique, or set replace_all=true."
            )
        elided = find_elision(new_text, resolved)
        if elided and elided[1] not in old_text:
            raise ToolError(
                f"edit_file refused: new_text line {elided[0]} looks like an elision placeholder "
                f"({elided[1]!r}); the text it stands for would be lost. Write the replacement in full."
            )
        first_line = text[: text.index(old_text)].count("\n") + 1
        new = text.replace(old_text, new_text) if replace_all else text.replace(old_text, new_text, 1)
        self.ctx.seen[resolved] = atomic_write(self.ctx, resolved, new)

        new_lines = _split_lines(new)
        lo = max(1, first_line - SNIPPET_CONTEXT)
        hi = min(len(new_lines), first_line + new_text.rstrip("\n").count("\n") + SNIPPET_CONTEXT)
        width = max(5, len(str(hi)))
        snippet = (
            "\n".join(_numbered(new_lines[lo - 1 : hi], lo, width)) if new_lines else "(file is now empty)"
        )
        what = f"Replaced {count} occurrences" if count > 1 else "Replaced 1 occurrence"
        more = " (snippet shows the first)" if count > 1 else ""
        return f"{what} in {rel}{more}. Lines {lo}-{hi} now:\n{snippet}"


def _match_lines(text: str, needle: str, cap: int = 10) -> list[int]:
    """Line numbers of the first `cap` matches, counting newlines once across the text (recounting
    from the start for every match took minutes on a 10 MB file)."""
    lines: list[int] = []
    line, counted, pos = 1, 0, text.find(needle)
    while pos != -1 and len(lines) < cap:
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        pos = text.find(needle, pos + 1)
    return lines


_LINE_NUMBER_PREFIX = re.compile(r"^\s*\d+\t", re.MULTILINE)


def _miss_hint(text: str, old_text: str) -> str:
    """Why old_text probably missed, and the closest region of the file."""
    hints: list[str] = []
    old_lines = old_text.splitlines()
    if old_lines and all(_LINE_NUMBER_PREFIX.match(line) for line in old_lines if line.strip()):
        hints.append("old_text seems to include read_file line-number prefixes; remove them.")
    if "\r\n" in text and "\r\n" not in old_text and "\n" in old_text:
        hints.append("The file uses CRLF (\\r\\n) line endings; old_text uses \\n.")
    if "\t" in text and "\t" not in old_text and old_text.startswith((" ", "\n")):
        hints.append("The file is indented with tabs; old_text uses spaces.")

    file_lines = text.splitlines()
    stripped = [line.strip() for line in file_lines]
    want = [line.strip() for line in old_lines if line.strip()]
    if want:
        # Matching once indentation and trailing spaces are ignored is the most common near miss.
        # One substring search over the joined lines: linear, where comparing windows was not.
        nonblank = [i for i, s in enumerate(stripped) if s]
        joined = "\n" + "\n".join(stripped[i] for i in nonblank) + "\n"
        pos = joined.find("\n" + "\n".join(want) + "\n")
        if pos != -1:
            k = joined.count("\n", 0, pos)
            a, b = nonblank[k] + 1, nonblank[k + len(want) - 1] + 1
            hints.append(
                f"It matches lines {a}-{b} if indentation/blank lines are ignored: copy the exact "
                f"whitespace from read_file output."
            )

    best = _closest_window(file_lines, old_lines)
    out = (" " + " ".join(hints)) if hints else ""
    if best is not None:
        start, window = best
        width = max(5, len(str(start + len(window))))
        out += "\nDid you mean (closest lines in the file):\n" + "\n".join(_numbered(window, start, width))
    elif not hints:
        out += " No similar lines either; read the file first."
    return out


def _closest_window(file_lines: list[str], old_lines: list[str]) -> tuple[int, list[str]] | None:
    """The window of the file most similar to old_lines (1-based start), if reasonably similar."""
    if not file_lines or not old_lines:
        return None
    n = min(len(old_lines), len(file_lines))
    target = "\n".join(line.strip() for line in old_lines[:n])
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    best_ratio, best_start = 0.0, -1
    # Bounded work on big files: compare windows starting near lines similar to the first wanted line.
    first = old_lines[0].strip()
    starts: range | list[int] = range(len(file_lines) - n + 1)
    if len(file_lines) > 400:
        candidates = range(len(file_lines) - n + 1)
        exact = [i for i in candidates if file_lines[i].strip() == first][:60]
        if exact or len(file_lines) > 20_000:  # scoring every line of a huge file takes too long
            starts = exact
        else:
            starts = sorted(
                candidates,
                key=lambda i: -difflib.SequenceMatcher(None, file_lines[i].strip(), first).quick_ratio(),
            )[:60]
    for i in starts:
        matcher.set_seq1("\n".join(line.strip() for line in file_lines[i : i + n]))
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_start = ratio, i
    if best_ratio < 0.5:
        return None
    return best_start + 1, file_lines[best_start : best_start + n]


__all__ = ["EditFile", "ReadFile", "WriteFile", "find_elision"]
