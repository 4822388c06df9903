"""The backend spec (DESIGN §1): typed models, loading with located errors, the shipped JSON Schema.

Names are re-exported lazily, like `verify`'s, so that importing `spec.cli` for `bimpl --help` does not
load pydantic and the models."""

from __future__ import annotations

from typing import Any

_SOURCES = {
    "errors": ("SpecError", "SpecIssue"),
    "loader": ("check_file", "check_text", "load_spec", "load_spec_text"),
    "model": (
        "ACTIONS",
        "FIELD_TYPES",
        "ITEM_TYPES",
        "Access",
        "AccessLevel",
        "AccessRule",
        "Auth",
        "Field",
        "FieldType",
        "OnDelete",
        "Resource",
        "Spec",
        "parse_duration",
    ),
}
__all__ = sorted(name for names in _SOURCES.values() for name in names)


def __getattr__(name: str) -> Any:
    for module, names in _SOURCES.items():
        if name in names:
            from importlib import import_module

            return getattr(import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
