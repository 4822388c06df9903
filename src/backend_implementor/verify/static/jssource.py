"""Just enough JavaScript/TypeScript lexing for the static checks (no parser dependency).

`strip_comments` blanks comments (keeping every offset and newline, so positions map to lines), and
`call_args` returns the argument text of a call up to its matching parenthesis."""

from __future__ import annotations

import re

# After one of these characters a "/" starts a regular expression literal, not a division.
_REGEX_PRECEDERS = set("(,=:[!&|?{};+-*%<>~^") | {""}
_REGEX_KEYWORDS = ("return", "typeof", "case", "do", "else", "in", "of", "void", "yield", "await")


def strip_comments(src: str) -> str:
    out = list(src)
    i, n = 0, len(src)
    template_depth: list[int] = []  # brace depth at which each open `${` resumes its template
    brace = 0

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    def prev_significant(k: int) -> str:
        j = k - 1
        while j >= 0 and out[j] in " \t\r\n":
            j -= 1
        if j < 0:
            return ""
        m = re.search(r"[A-Za-z_$][\w$]*$", "".join(out[max(0, j - 10) : j + 1]))
        if m and m.group(0) in _REGEX_KEYWORDS:
            return "("
        return out[j]

    def skip_string(k: int, quote: str) -> int:
        k += 1
        while k < n and src[k] != quote:
            if src[k] == "\\":
                k += 1
            elif src[k] == "\n" and quote != "`":
                break
            k += 1
        return k + 1

    def skip_template(k: int) -> int:
        """From just after a backtick (or a `}` closing `${`) to after the closing backtick or `${`."""
        nonlocal brace
        while k < n:
            c = src[k]
            if c == "\\":
                k += 2
                continue
            if c == "`":
                return k + 1
            if c == "$" and k + 1 < n and src[k + 1] == "{":
                template_depth.append(brace)
                brace += 1
                return k + 2
            k += 1
        return k

    while i < n:
        c = src[i]
        nxt = src[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and nxt == "*":
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c in "'\"":
            i = skip_string(i, c)
        elif c == "`":
            i = skip_template(i + 1)
        elif c == "/" and prev_significant(i) in _REGEX_PRECEDERS:
            j, in_class = i + 1, False
            while j < n and src[j] != "\n":
                if src[j] == "\\":
                    j += 1
                elif src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                elif src[j] == "/" and not in_class:
                    break
                j += 1
            i = j + 1
        elif c == "{":
            brace += 1
            i += 1
        elif c == "}":
            brace -= 1
            if template_depth and template_depth[-1] == brace:
                template_depth.pop()
                i = skip_template(i + 1)
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def top_level_end(src: str, start: int, stops: str = "") -> int:
    """Where the expression starting at `start` ends: the first character of `stops` outside brackets and
    string literals, or the closing bracket that closes an enclosing one (len(src) when neither comes)."""
    depth, i, n = 0, start, len(src)
    while i < n:
        c = src[i]
        if c in "'\"`":
            q, i = c, i + 1
            while i < n and src[i] != q:
                i += 2 if src[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and c in stops:
            return i
        i += 1
    return n


def call_args(src: str, open_paren: int) -> str:
    """Text between the parenthesis at `open_paren` and its match (strings and templates respected)."""
    return src[open_paren + 1 : top_level_end(src, open_paren + 1)]


def first_arg(args: str) -> str:
    """The first top-level argument of an argument list."""
    return args[: top_level_end(args, 0, ",")].strip()


def line_of(src: str, offset: int) -> int:
    return src.count("\n", 0, offset) + 1


def line_text(src: str, line: int) -> str:
    lines = src.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""
