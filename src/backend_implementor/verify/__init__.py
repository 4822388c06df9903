"""`bimpl verify`: boot a backend, test it, attack it, report the deliverables.

The API lives in `verify.engine`; it is re-exported lazily here so that importing a submodule (findings,
probes) does not pull in the whole pipeline."""

from __future__ import annotations

from typing import Any

__all__ = ["VerifyOptions", "VerifyUsageError", "verify_project", "verify_url"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from backend_implementor.verify import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
