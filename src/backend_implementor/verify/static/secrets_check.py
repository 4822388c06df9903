"""Committed secrets (CWE-798): known key formats anywhere, secret-named variables assigned a literal that
looks like a real secret (entropy, or a hard-coded fallback after process.env), and any literal used as a
signing key (jwt.sign / jwt.verify, express-session's secret, cookie-parser, cookie-session and Koa keys),
however short or plain: a key in the code signs for anyone who reads it."""

from __future__ import annotations

import math
import re
from collections import Counter

from .jssource import call_args, strip_comments
from .rules import Hit, split_args

KNOWN = (
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret access key", re.compile(r"aws_?secret_?access_?key\W{1,4}[A-Za-z0-9/+=]{40}\b", re.I)),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Slack webhook", re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,}")),
    (
        "private key",
        re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"),
    ),
    ("Stripe live key", re.compile(r"\b[sr]k_live_[0-9a-zA-Z]{20,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("SendGrid key", re.compile(r"\bSG\.[\w-]{22}\.[\w-]{43}\b")),
    ("Anthropic/OpenAI key", re.compile(r"\bsk-(?:ant-|proj-)[A-Za-z0-9_-]{32,}")),
    ("JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}")),
)

SECRET_NAME = r"[\w$.-]*(?:secret|token|passw(?:or)?d|passwd|(?<![a-z])pass(?![a-z])|pwd|api_?key|apikey|private_?key|access_?key|auth_?key|signing_?key|jwt_?key|credentials?)[\w$-]*"
# name = 'literal' | name: 'literal' | name = process.env.X || 'literal'
ASSIGN = re.compile(
    rf"(?P<name>{SECRET_NAME})['\"]?\s*(?:=|:)\s*(?P<fallback>process\.env(?:\.[\w$]+|\[[^\]]+\])\s*(?:\|\||\?\?)\s*)?"
    r"(?P<q>['\"`])(?P<value>[^'\"`\n]{8,200})(?P=q)",
    re.I,
)
ENV_LINE = re.compile(
    rf"^\s*(?:export\s+)?(?P<name>{SECRET_NAME})\s*=\s*['\"]?(?P<value>[^'\"\s#]{{8,200}})", re.I | re.M
)
# Names that hold a secret's *name* or metadata, not the secret itself.
NOT_SECRET_NAME = re.compile(
    r"(name|field|header|path|url|uri|type|env|var|length|len|min|max|pattern|regex|prefix|placeholder|label|"
    r"message|msg|error|hint|format|column|param|key_?id|expires?(_?in)?|ttl|algorithm|alg|hash_?alg|cookie)$",
    re.I,
)
PLACEHOLDER = re.compile(
    r"^(<.*>|\$\{.*\}|x{6,}|\*{6,}|\.{3,}|(your|my|some|example|dummy|fake|test)[-_ ].*|redacted)$", re.I
)


def entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def _looks_secret(value: str, fallback: bool) -> bool:
    if re.search(r"\s", value) or "${" in value or PLACEHOLDER.match(value):
        return False
    if value.startswith(("/", "http://", "https://", ".", "#", "process.env")):
        return False
    if re.fullmatch(r"[A-Z0-9_]+", value):  # an environment variable's name
        return False
    if fallback:
        return True  # any literal used when the env var is missing ships as the production secret
    if re.fullmatch(r"[a-z]+(?:[-_.][a-z]+)*", value):  # a word or key name: 'password', 'access_token'
        return False
    return entropy(value) >= 3.0 and len(set(value)) >= 6


LITERAL = re.compile(r"""\s*(['"`])([^'"`\n]{1,200})\1\s*$""")
SIGNING_CALLS = (
    # (call, which argument is the key, or the option holding it)
    (re.compile(r"(?<![\w$])(?:jwt|jsonwebtoken|JWT)\.(?:sign|verify)\s*\("), 1),
    (re.compile(r"(?<![\w$.])cookieParser\s*\("), 0),
    (re.compile(r"(?<![\w$.])(?:session|expressSession|cookieSession)\s*\("), "secret|keys"),
)
KOA_KEYS = re.compile(r"""\bapp\.keys\s*=\s*\[\s*(['"`])([^'"`\n]{1,200})\1""")


def signing_literals(src: str) -> list[tuple[int, str, str]]:
    """(offset, where, value) of each literal used as a signing key, directly or through a constant."""
    code = strip_comments(src)
    constants = {m.group(1): (m.group(3), m.group(2) is not None) for m in re.finditer(
        r"\b(?:const|let|var)\s+([\w$]+)\s*=\s*(process\.env(?:\.[\w$]+|\[[^\]]+\])\s*(?:\|\||\?\?)\s*)?"
        r"['\"`]([^'\"`\n]{1,200})['\"`]\s*[;\n]", code)}  # fmt: skip
    out = []
    for rx, slot in SIGNING_CALLS:
        for m in rx.finditer(code):
            args = split_args(call_args(code, m.end() - 1))
            if isinstance(slot, int):
                key = args[slot] if len(args) > slot else ""
            else:
                opts = re.search(rf"(?:{slot})\s*:\s*(\[?[^,}}\]]+\]?)", args[0] if args else "")
                key = opts.group(1).strip("[] ") if opts else ""
            call = m.group(0).rstrip("( ")
            if lit := LITERAL.match(key):
                out.append((m.start(), f"literal signing key given to {call}()", lit.group(2)))
            elif (name := key.strip()) in constants:
                out.append(
                    (m.start(), f"signing key {name} given to {call}() is a literal", constants[name][0])
                )
    for m in KOA_KEYS.finditer(code):
        out.append((m.start(), "literal signing key in app.keys", m.group(2)))
    return out


def _mask(value: str) -> str:
    return value[:4] + "…" if len(value) > 4 else "…"


def check_secrets(src: str, *, env_file: bool = False) -> list[Hit]:
    hits: list[Hit] = []
    seen_lines: set[int] = set()

    def add(offset: int, what: str, value: str) -> None:
        line = src.count("\n", 0, offset) + 1
        if line in seen_lines:
            return
        seen_lines.add(line)
        text = src.splitlines()[line - 1].strip() if src else ""
        hits.append(
            Hit(
                "static-secret",
                798,
                f"Committed secret: {what}",
                "high",
                "Load secrets from the environment or a secret manager; rotate this one.",
                line,
                text.replace(value, _mask(value))[:200],
            )
        )

    for what, rx in KNOWN:
        for m in rx.finditer(src):
            add(m.start(), what, m.group(0))
    if env_file:
        for m in ENV_LINE.finditer(src):
            if not NOT_SECRET_NAME.search(m.group("name")) and _looks_secret(m.group("value"), False):
                add(m.start(), f"{m.group('name')} in an env file", m.group("value"))
        return hits
    for m in ASSIGN.finditer(src):
        name, value = m.group("name"), m.group("value")
        if NOT_SECRET_NAME.search(name.rstrip("'\"")):
            continue
        if _looks_secret(value, bool(m.group("fallback"))):
            add(m.start(), f"literal assigned to {name}", value)
    for offset, what, value in signing_literals(src):
        add(offset, what, value)
    return hits
