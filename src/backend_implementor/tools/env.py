"""The environment commands run with: the caller's, minus anything that looks like a credential."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Matched against variable names, case-insensitively. `(^|_)TOKEN(_|$)` catches GITHUB_TOKEN and
# AWS_SESSION_TOKEN but not TOKENIZERS_PARALLELISM; `PASS` anywhere (DB_PASS, SMTP_PASSWORD, PGPASS)
# costs a rare harmless variable such as BYPASS_CACHE; `_PWD$` is MYSQL_PWD, never PWD or OLDPWD.
_SECRET_NAME = re.compile(
    r"(^|_)(API_?KEY|APIKEY|KEY|TOKEN|TOKENS|PAT|AUTH|JWT|COOKIE|DSN)(_|$)"
    r"|SECRET|PASS|CREDENTIAL|PRIVATE_?KEY|ACCESS_?KEY|SIGNING_?KEY|_PWD$|CONN(ECTION)?_?STR"
    r"|^(ANTHROPIC|OPENAI|AWS|AZURE_OPENAI|GEMINI|GOOGLE_API|COHERE|MISTRAL|GROQ|DEEPSEEK|TOGETHER|"
    r"OPENROUTER|HUGGINGFACE|HF|REPLICATE|FIREWORKS|XAI|PERPLEXITY|VOYAGE)_",
    re.IGNORECASE,
)
# Matched against values, whatever the name: well-known key formats, and URLs carrying a password
# (postgres://user:password@host/db in a DATABASE_URL).
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|sk-ant-|sk_(live|test)_|rk_(live|test)_|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_|xox[abposr]-|xapp-|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}"
    r"|ya29\.|hf_[A-Za-z0-9]{20,}|glpat-|npm_[A-Za-z0-9]{30,}|pypi-AgE|gsk_[A-Za-z0-9]{20,}"
    r"|r8_[A-Za-z0-9]{20,}|pplx-|xai-[A-Za-z0-9]{20,}|SG\.[\w-]{16,}\.|dop_v1_|shpat_|AGE-SECRET-KEY-"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|eyJ[A-Za-z0-9_-]{10,}\.eyJ"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@)"
)


def is_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.match(value.strip()))


def scrubbed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without API keys, tokens, secrets and passwords (by name or by value)."""
    return {name: value for name, value in environ.items() if not is_secret(name, value)}
