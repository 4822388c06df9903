"""Code checks on one JavaScript/TypeScript file: SQL built from strings (CWE-89), eval/new Function/vm
fed with request data (CWE-94), shell commands fed with request data (CWE-78), and CORS allowing any
origin with credentials (CWE-942).

Regex-and-balanced-parentheses scanning over comment-stripped source, with a small same-file taint set
(variables assigned or destructured from req.body/query/params/headers/cookies, and the parameters of
functions called with them). A finding names the request data that reaches the sink."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .jssource import call_args, first_arg, line_of, line_text, strip_comments, top_level_end


@dataclass
class Hit:
    id: str
    cwe: int
    title: str
    severity: str
    fix: str
    line: int
    code: str


SQL_TEXT = re.compile(
    r"\b(select\b[\s\S]*?\bfrom|insert\s+into|update\s+[\w\".]+\s+set|delete\s+from|order\s+by|where\b)", re.I
)
SQL_CALL = re.compile(
    r"\.(query|execute|exec|raw|all|get|run|prepare|each|unsafe|whereRaw|orderByRaw|havingRaw|"
    r"one|many|any|none|oneOrNone|manyOrNone|result|multi|multiResult|"  # pg-promise
    r"\$queryRawUnsafe|\$executeRawUnsafe)\s*(?:<[^>()]*>)?\s*\("
)
REQUEST_SOURCE = re.compile(r"\b(req|request|ctx\.request|ctx)\.(body|query|params|headers|cookies)\b")
CONST_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _interpolations(template: str) -> list[str]:
    return re.findall(r"\$\{([^}]*)\}", template)


def _dynamic_sql(expr: str) -> bool:
    """A template literal with interpolation, or a concatenation with code, whose literal text is SQL."""
    literals = re.findall(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`", expr)
    if not literals or not SQL_TEXT.search(" ".join(literals)):
        return False
    for lit in literals:
        inner = [x.strip() for x in _interpolations(lit)] if lit.startswith("`") else []
        if inner and not all(CONST_NAME.match(x) for x in inner):
            return True
    rest = expr
    for lit in literals:
        rest = rest.replace(lit, "''", 1)
    return "+" in rest and bool(re.search(r"[\w$)\]]", rest.replace("''", "")))


def _assignments(code: str, name: str) -> list[tuple[str, str]]:
    """Right-hand sides assigned to `name` in this file (declarations, plain and += assignments)."""
    pattern = rf"(?:\b(?:const|let|var)\s+)?(?<![\w$.]){re.escape(name)}\s*(\+?=)(?!=)"
    return [
        (m.group(1), code[m.end() : top_level_end(code, m.end(), ";\n")]) for m in re.finditer(pattern, code)
    ]


def _dynamic_variable(code: str, name: str) -> bool:
    """A variable that holds SQL and is built dynamically, at once or through `+=` appends."""
    assigned = _assignments(code, name)
    if any(_dynamic_sql(rhs) for _, rhs in assigned):
        return True
    if not any(SQL_TEXT.search(rhs) for _, rhs in assigned):
        return False
    return any(op == "+=" and _dynamic_sql("'select x from y' + " + rhs) for op, rhs in assigned)


def tainted_names(code: str) -> set[str]:
    return set(taint_sources(code))


def taint_sources(code: str) -> dict[str, str]:
    """Identifiers holding request data, each with where it came from: `const x = req.body.x`,
    `const { a, b } = req.query`, variables built from those, and the parameters of functions of this
    file called with them (`findUser(req.params.id)` taints `id` of `function findUser(id)`); two rounds."""
    names: dict[str, str] = {}
    functions = _function_params(code)
    for _ in range(2):
        for m in re.finditer(r"\b(?:const|let|var)\s+(\{[^}]*\}|\[[^\]]*\]|[\w$]+)\s*=\s*([^;\n]+)", code):
            target, rhs = m.group(1), m.group(2)
            origin = _source_in(rhs, names)
            if origin is None:
                continue
            if target[0] in "{[":
                for part in re.split(r"[,{}\[\]]", target):
                    part = part.split("=")[0].strip()
                    if ":" in part:
                        part = part.split(":")[1].strip()
                    part = part.lstrip(".")
                    if re.fullmatch(r"[\w$]+", part):
                        names.setdefault(part, origin)
            else:
                names.setdefault(target, origin)
        for fname, params in functions.items():
            for call in re.finditer(rf"(?<![\w$.]){re.escape(fname)}\s*\(", code):
                args = split_args(call_args(code, call.end() - 1))
                for param, arg in zip(params, args, strict=False):
                    origin = _source_in(arg, names)
                    if origin is not None and re.fullmatch(r"[\w$]+", param):
                        names.setdefault(param, origin)
    return names


def _function_params(code: str) -> dict[str, list[str]]:
    """Named functions of the file and their parameter names (declarations and arrow/function consts)."""
    out: dict[str, list[str]] = {}
    pattern = (
        r"\bfunction\s+([\w$]+)\s*\(([^)]*)\)"
        r"|\b(?:const|let|var)\s+([\w$]+)\s*=\s*(?:async\s+)?(?:function\s*[\w$]*\s*)?\(([^)]*)\)\s*(?:=>|\{)"
    )
    for m in re.finditer(pattern, code):
        name, params = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        out.setdefault(name, [p.split("=")[0].strip() for p in params.split(",")])
    return out


def split_args(args: str) -> list[str]:
    """Top-level comma-separated arguments of a call's argument text (without the parentheses)."""
    inner = args.strip()
    inner = inner[1:-1] if inner.startswith("(") and inner.endswith(")") else inner
    parts, depth, cur, quote = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    return [*parts, cur] if cur.strip() else parts


def _source_in(expr: str, tainted: dict[str, str]) -> str | None:
    """Where the request data in `expr` comes from (`req.query.sort`, or a variable and its origin)."""
    if m := re.search(REQUEST_SOURCE.pattern + r"(?:\.[\w$]+|\[['\"][^'\"]+['\"]\])?", expr):
        return m.group(0)
    for name, origin in tainted.items():
        if re.search(rf"(?<![\w$.]){re.escape(name)}\b", expr):
            return f"{name} (from {origin})"
    return None


def _uses_request(expr: str, tainted: dict[str, str]) -> bool:
    return _source_in(expr, tainted) is not None


def _dynamic_parts(expr: str) -> str:
    """The code of an SQL expression outside its string literals (interpolations included)."""
    parts = [x for lit in re.findall(r"`[^`]*`", expr) for x in _interpolations(lit)]
    rest = re.sub(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`", "''", expr)
    return " ".join([rest, *parts])


def _sql_wrappers(code: str) -> set[str]:
    """Functions of this file that hand their first parameter to a query call (`function all(sql, params)
    { const stmt = db.prepare(sql) ... }`): calling them is calling the query API."""
    out = set()
    for name, params in _function_params(code).items():
        first = params[0] if params else ""
        if not re.fullmatch(r"[\w$]+", first):
            continue
        decl = re.search(rf"(?:function\s+{re.escape(name)}|(?:const|let|var)\s+{re.escape(name)}\s*=)", code)
        body = code[decl.end() : decl.end() + 600] if decl else ""
        if re.search(SQL_CALL.pattern + rf"\s*{re.escape(first)}\b", body):
            out.add(name)
    return out


def check_sql(code: str, src: str, tainted: dict[str, str]) -> list[Hit]:
    """SQL built from strings, reported only where request data reaches the built part (the source is
    named); concatenating server-side values (a table name, a generated id) is not injection."""
    hits = []
    wrappers = _sql_wrappers(code)
    calls = list(SQL_CALL.finditer(code))
    if wrappers:
        names = "|".join(re.escape(w) for w in sorted(wrappers))
        calls += re.finditer(rf"(?<![\w$.])(?<!function )({names})\s*\(", code)
    for m in sorted(calls, key=lambda m: m.start()):
        arg = first_arg(call_args(code, m.end() - 1))
        origin = _source_in(_dynamic_parts(arg), tainted) if _dynamic_sql(arg) else None
        if origin is None and re.fullmatch(r"[\w$]+", arg) and _dynamic_variable(code, arg):
            built = " ".join(_dynamic_parts(rhs) for _, rhs in _assignments(code, arg))
            origin = _source_in(built, tainted)
        if origin is not None:
            line = line_of(code, m.start())
            hits.append(
                Hit(
                    "static-sqli",
                    89,
                    f"Request data ({origin}) reaches SQL built by string concatenation or template "
                    f"interpolation, passed to .{m.group(1)}()",
                    "high",
                    "Pass values as bound parameters ($1 / ?) and pick identifiers from an allow-list.",
                    line,
                    line_text(src, line),
                )
            )
    return hits


CODE_SINKS = re.compile(
    r"(?<![\w$.])eval\s*\(|\bnew\s+Function\s*\(|\bvm\.(?:runInNewContext|runInThisContext|runInContext|compileFunction)\s*\(|"
    r"(?<![\w$.])(?:setTimeout|setInterval)\s*\(\s*(?=[`'\"])"
)


def check_code_injection(code: str, src: str, tainted: set[str]) -> list[Hit]:
    hits = []
    for m in CODE_SINKS.finditer(code):
        args = call_args(code, code.index("(", m.start()))
        if _uses_request(args, tainted):
            line = line_of(code, m.start())
            hits.append(
                Hit(
                    "static-code-injection",
                    94,
                    f"Request data reaches {m.group(0).rstrip('( ').strip()}() (code injection)",
                    "critical",
                    "Never evaluate request data as code; parse it (JSON.parse, a small grammar) instead.",
                    line,
                    line_text(src, line),
                )
            )
    return hits


def check_command_injection(code: str, src: str, tainted: set[str]) -> list[Hit]:
    if "child_process" not in code:
        return []
    modules = set(
        re.findall(
            r"\b(?:const|let|var)\s+([\w$]+)\s*=\s*require\(\s*['\"](?:node:)?child_process['\"]\s*\)", code
        )
    )
    modules |= set(
        re.findall(r"import\s+\*\s+as\s+([\w$]+)\s+from\s+['\"](?:node:)?child_process['\"]", code)
    )
    modules.add("child_process")
    recv = "|".join(re.escape(m) for m in sorted(modules))
    sink = re.compile(
        rf"(?:(?<![\w$.])|\b(?:{recv})\.)(exec|execSync|spawn|spawnSync|execFile|execFileSync)\s*\("
    )
    hits = []
    for m in sink.finditer(code):
        if (
            m.start() > 0
            and code[m.start() - 1] == "."
            and not re.search(rf"\b(?:{recv})\.$", code[: m.start() + 1])
        ):
            continue
        args = call_args(code, m.end() - 1)
        shell = m.group(1) in ("exec", "execSync") or re.search(r"shell\s*:\s*true", args)
        if shell and _uses_request(args, tainted):
            line = line_of(code, m.start())
            hits.append(
                Hit(
                    "static-command-injection",
                    78,
                    f"Request data reaches child_process.{m.group(1)}() through a shell",
                    "critical",
                    "Use execFile/spawn with an argument array (no shell) and validate the values.",
                    line,
                    line_text(src, line),
                )
            )
    return hits


ANY_ORIGIN = re.compile(
    r"origin\s*:\s*(?:true|['\"]\*['\"]|\(?\s*[\w$]+\s*,\s*([\w$]+)\s*\)?\s*=>\s*\1\s*\(\s*null\s*,\s*true\s*\))"
)


def check_cors(code: str, src: str) -> list[Hit]:
    hits = []
    for m in re.finditer(r"(?<![\w$.])cors\s*\(", code):
        args = call_args(code, m.end() - 1)
        if re.search(r"credentials\s*:\s*true", args) and ANY_ORIGIN.search(args):
            line = line_of(code, m.start())
            hits.append(_cors_hit(line, src))
    # Hand-rolled: the request's Origin (or *) echoed with Allow-Credentials: true.
    echo = re.search(
        r"Access-Control-Allow-Origin['\"]\s*,\s*(?:req\.(?:headers\.origin|get\(\s*['\"]origin['\"]\s*\)|header\(\s*['\"]origin['\"]\s*\))|['\"]\*['\"])",
        code,
        re.I,
    )
    if echo and re.search(r"Access-Control-Allow-Credentials['\"]\s*,\s*['\"]?true", code, re.I):
        hits.append(_cors_hit(line_of(code, echo.start()), src))
    return hits


def _cors_hit(line: int, src: str) -> Hit:
    return Hit(
        "static-cors",
        942,
        "CORS allows any origin together with credentials",
        "high",
        "List the trusted origins explicitly when credentials are allowed.",
        line,
        line_text(src, line),
    )


def check_code(src: str) -> list[Hit]:
    code = strip_comments(src)
    tainted = taint_sources(code)
    return [
        *check_sql(code, src, tainted),
        *check_code_injection(code, src, tainted),
        *check_command_injection(code, src, tainted),
        *check_cors(code, src),
    ]
