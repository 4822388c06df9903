"""The environment commands run with: the caller's, minus anything that looks like a credential."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Matched against variable names, case-insensitively. `(^|_)TOKEN(_|$)` catches GITHUB_TOKEN and
# AWS_SESSION_TOKEN but not TOKENIZERS_PARALLELISM.
_SECRET_NAME = re.compile(
    r"(^|_)(API_?KEY|APIKEY|KEY|TOKEN|TOKENS|PAT|AUTH|JWT|COOKIE)(_|$)"
    r"|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|ACCESS_?KEY|SIGNING_?KEY"
    r"|^(ANTHROPIC|OPENAI|AWS|AZURE_OPENAI|GEMINI|GOOGLE_API|COHERE|MISTRAL|GROQ|DEEPSEEK|TOGETHER|"
    r"OPENROUTER|HUGGINGFACE|HF|REPLICATE|FIREWORKS|XAI|PERPLEXITY|VOYAGE)_",
    re.IGNORECASE,
)
# Matched against values, whatever the name: well-known key formats.
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|sk-ant-|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|xox[abposr]-|AKIA[0-9A-Z]{16}"
    r"|ASIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}|hf_[A-Za-z0-9]{20,}|glpat-|npm_[A-Za-z0-9]{30,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ)"
)


def is_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.match(value.strip()))


def scrubbed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without API keys, tokens, secrets and passwords (by name or by value)."""
    return {name: value for name, value in environ.items() if not is_secret(name, value)}
