"""The backend spec (DESIGN §1): typed models, loading with located errors, the shipped JSON Schema."""

from backend_implementor.spec.errors import SpecError, SpecIssue
from backend_implementor.spec.loader import check_file, check_text, load_spec, load_spec_text
from backend_implementor.spec.model import (
    ACTIONS,
    FIELD_TYPES,
    ITEM_TYPES,
    Access,
    AccessLevel,
    AccessRule,
    Auth,
    Field,
    FieldType,
    OnDelete,
    Resource,
    Spec,
    parse_duration,
)

__all__ = [
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
    "SpecError",
    "SpecIssue",
    "check_file",
    "check_text",
    "load_spec",
    "load_spec_text",
    "parse_duration",
]
