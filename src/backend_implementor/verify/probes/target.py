"""What the probes attack: a running backend, its OpenAPI document and how to log in to it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..auth import Account, AuthConfig


@dataclass
class ProbeTarget:
    base_url: str
    openapi: dict | None = None
    auth: AuthConfig | None = None  # None: detected from the document (verify.auth.detect_auth)
    db_url: str | None = None  # postgres URL, sqlite file, or a directory/file to scan raw (e.g. PGlite data)
    is_alive: Callable[[], bool] = field(default=lambda: True)
    signing_secrets: tuple[str, ...] = ()  # secrets the backend was started with (its JWT key, maybe)
    # After a crash: bring the server back (project mode restarts it, URL mode waits for it); False if not.
    recover: Callable[[], bool] = field(default=lambda: False)
    users: tuple[Account, ...] = ()  # existing accounts (--user), used before registering new ones
    admin: Account | None = None  # --admin
    token: str | None = None  # --token: a ready token for the first user
    cookies: dict[str, str] | None = None  # --cookie: a ready session for the first user
    oidc: Any = (
        None  # verify's OpenID provider (verify.oidc_provider.OidcProvider) the app was configured with
    )
    oidc_names: tuple[str, ...] = ()  # the provider names the app's variables give (OIDC_MAIN_ISSUER: "main")
    graphql_path: str | None = None  # --graphql PATH; None: looked for at /graphql and the like
    project_root: Path | None = None  # project mode: where the backend's SDL files (schema.graphql) are
    # Project mode: a second instance of the backend started with NODE_ENV=production (its base URL, or None
    # when it did not start), for the checks whose answer depends on the mode; stopped when the block ends.
    production: Callable[[], AbstractContextManager[str | None]] | None = None
