"""Valid and invalid example values for each field, used by the generated tests and by our e2e tests.

Values are deterministic functions of (field, i): sample i differs from sample j for every i != j where
the constraints allow it, so unique fields get distinct values. `pattern` fields are sampled by walking
Python's regex parse tree (the JavaScript-compatible subset the spec allows).
"""

from __future__ import annotations

import functools
import uuid
from decimal import Decimal
from typing import Any

from backend_implementor.spec.model import Field, Spec

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from re import _constants as sre  # type: ignore[attr-defined]

SAMPLES_PER_RESOURCE = 40
_NS = uuid.UUID("6f1c1a52-8d59-4a41-9a7e-0b5c2f3d9e11")
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _digits(i: int, alphabet: str, width: int) -> list[str]:
    """i written in base len(alphabet), least significant first, padded to width."""
    out = []
    for _ in range(width):
        out.append(alphabet[i % len(alphabet)])
        i //= len(alphabet)
    return out


def sample_pattern(pattern: str, i: int) -> str:
    """A string matching `pattern`; different i give different strings where the pattern has freedom."""
    counter = [i]

    def choose(options: list[str]) -> str:
        pick = options[counter[0] % len(options)]
        counter[0] //= max(len(options), 1)
        return pick

    def expand(items: Any) -> str:
        out = []
        for op, av in items:
            if op is sre.LITERAL:
                out.append(chr(av))
            elif op is sre.NOT_LITERAL:
                out.append("a" if chr(av) != "a" else "b")
            elif op is sre.ANY:
                out.append(choose(list(_ALNUM)))
            elif op is sre.IN:
                out.append(choose(_class_chars(tuple(av))))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                lo, hi, sub = av
                # Open-ended repeats get a few characters so different i give different strings.
                count = lo if hi == lo else min(max(lo, 1) + 3, hi)
                out.extend(expand(sub) for _ in range(count))
            elif op is sre.SUBPATTERN:
                out.append(expand(av[-1]))
            elif op is sre.BRANCH:
                out.append(expand(av[1][0]))
            # AT (anchors), GROUPREF and look-arounds produce no characters
        return "".join(out)

    return expand(_parse(pattern))


# Parsed once per pattern: tests sample a million values of one field.
_parse = functools.lru_cache(maxsize=256)(sre_parse.parse)


@functools.lru_cache(maxsize=1024)
def _class_chars(items: Any) -> list[str]:
    chars: list[str] = []
    negate = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            chars.append(chr(av))
        elif op is sre.RANGE:
            lo, hi = av
            chars.extend(chr(c) for c in range(lo, min(hi, lo + 36) + 1))
        elif op is sre.CATEGORY:
            chars.extend(
                {
                    sre.CATEGORY_DIGIT: list("0123456789"),
                    sre.CATEGORY_WORD: list(_ALNUM),
                    sre.CATEGORY_SPACE: [" "],
                }.get(av, list("abc"))
            )
    if negate:
        return [c for c in _ALNUM if c not in chars] or ["_"]
    return chars or ["a"]


def _text(prefix: str, i: int, f: Field) -> str:
    if f.pattern:
        return sample_pattern(f.pattern, i)
    s = f"{prefix} {i}"
    lo, hi = f.min_length or 0, f.max_length
    if hi is not None and len(s) > hi:
        s = "".join(reversed(_digits(i, _ALNUM, hi))) if hi else ""
    if len(s) < lo:
        s = s + "x" * (lo - len(s))
    return s


def _number(f: Field, i: int, integer: bool) -> int | float:
    lo = f.min if f.min is not None else 0
    hi = f.max if f.max is not None else lo + 1000
    span = hi - lo
    value = lo + (i % (int(span) + 1) if span >= 1 else 0)
    return int(value) if integer else float(value) + (0.5 if value + 0.5 <= hi else 0)


def _scalar(kind: str, f: Field, name: str, i: int) -> Any:
    if kind in ("string", "text"):
        return _text(name, i, f)
    if kind == "email":
        return f"{name.replace('_', '')}{i}@example.com"
    if kind == "url":
        return f"https://example.com/{name}/{i}"
    if kind == "integer":
        return _number(f, i, integer=True)
    if kind == "number":
        return _number(f, i, integer=False)
    if kind == "decimal":
        lo = Decimal(str(f.min)) if f.min is not None else Decimal(0)
        hi = Decimal(str(f.max)) if f.max is not None else Decimal(10) ** (f.precision - f.scale) - 1
        step = Decimal(1).scaleb(-f.scale) if f.scale else Decimal(1)
        value = min(lo + (Decimal(i) + Decimal("0.5")).quantize(step) if f.scale else lo + i, hi)
        return f"{value:.{f.scale}f}"
    if kind == "boolean":
        return i % 2 == 0
    if kind == "date":
        return f"2025-{(i // 28) % 12 + 1:02d}-{i % 28 + 1:02d}"
    if kind == "datetime":
        return f"2025-01-01T{(i // 60) % 24:02d}:{i % 60:02d}:00.000Z"
    if kind == "uuid":
        return str(uuid.uuid5(_NS, f"{name}-{i}"))
    if kind == "enum":
        values = f.values or ["x"]
        return values[i % len(values)]
    if kind == "json":
        return {"n": i, "tags": ["a", "b"]}
    raise ValueError(kind)


def sample_value(name: str, f: Field, i: int) -> Any:
    """A valid request value for field `name` (ref fields are filled in by the caller)."""
    if f.type == "ref":
        return None
    if f.type == "array":
        item = f.model_copy(update={"min_length": None, "max_length": None, "type": f.items})
        count = max(f.min_length or 1, 1)
        if f.max_length is not None:
            count = min(count, f.max_length)
        return [_scalar(f.items or "string", item, name, i * 7 + k) for k in range(count)]
    return _scalar(f.type, f, name, i)


def invalid_value(f: Field) -> Any:
    """A value of the wrong JSON type (or shape) for this field, or None when any JSON is valid."""
    return {
        "string": 12345,
        "text": 12345,
        "email": "not-an-email",
        "url": "javascript:alert(1)",
        "integer": "seven",
        "number": "seven",
        "decimal": "12.3.4",
        "boolean": "yes",
        "date": "2025-13-45",
        "datetime": "yesterday",
        "uuid": "not-a-uuid",
        "ref": "not-a-uuid",
        "enum": "__not_a_value__",
        "array": "not-an-array",
    }.get(f.type)


def sample_body(spec: Spec, resource: str, i: int) -> dict[str, Any]:
    """A valid create body (writable fields only) with ref fields left as None for the caller to fill."""
    res = spec.resources[resource]
    return {n: sample_value(n, f, i) for n, f in res.fields.items() if not f.readonly}


def sample_plan(spec: Spec) -> dict[str, dict[str, Any]]:
    """What the generated tests need per resource: bodies, refs, one invalid field, a patchable field."""
    plan: dict[str, dict[str, Any]] = {}
    for name, res in spec.resources.items():
        writable = {n: f for n, f in res.fields.items() if not f.readonly}
        bodies = [sample_body(spec, name, i) for i in range(SAMPLES_PER_RESOURCE)]
        refs = {n: f.to for n, f in writable.items() if f.type == "ref"}
        invalid = next(
            ((n, invalid_value(f)) for n, f in writable.items() if invalid_value(f) is not None), None
        )
        required = [n for n, f in writable.items() if f.required and f.default is None]
        # PATCH a field that is not a ref, not unique and not private, so it can be read back.
        patchable = next(
            (
                n
                for n, f in writable.items()
                if f.type not in ("ref", "json") and not f.unique and not f.private and not f.pattern
            ),
            None,
        )
        plan[name] = {
            "bodies": bodies,
            "refs": refs,
            "invalid": invalid,
            "required": required,
            "patch_field": patchable,
            "patch_value": bodies[1][patchable] if patchable else None,
            "unique": [n for n, f in writable.items() if f.unique and f.type != "ref"],
            "private": [n for n, f in res.fields.items() if f.private],
            **(_actors(spec, name) if spec.auth else {}),
        }
    return plan


def _actors(spec: Spec, resource: str) -> dict[str, Any]:
    """Test users (keys `<role>` / `<role>_2`) allowed, and refused, each action of a resource."""
    assert spec.auth is not None
    res = spec.resources[resource]
    roles = spec.auth.roles
    default = roles[0]

    def allowed(rule: Any, creator: str | None) -> str | None:
        if rule == "public":
            return None
        if rule in ("authenticated", "owner"):
            return creator or default
        return rule[0]

    creator = (
        allowed(res.access.create, None)
        if res.access.create != "public"
        else (default if res.owned else None)
    )
    actors = {a: allowed(res.access.rule(a), creator) for a in ("list", "read", "create", "update", "delete")}
    forbidden: dict[str, str | None] = {}
    for action in actors:
        rule = res.access.rule(action)
        outside = [r for r in roles if isinstance(rule, list) and r not in rule]
        forbidden[action] = outside[0] if outside else None
    admin = spec.auth.admin_role
    stranger = f"{creator}_2" if res.owned and creator and creator != admin else None
    return {"actors": actors, "forbidden": forbidden, "stranger": stranger}
