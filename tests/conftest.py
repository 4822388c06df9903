"""Shared fixtures. `fake_openai` is a running FakeOpenAIServer (see tests/fake_openai.py) for any test
that needs an OpenAI-compatible model endpoint on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before anything imports litellm: no cost-map download, no `.env` reading.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_MODE"] = "PRODUCTION"

from fake_openai import FakeOpenAIServer  # tests/ is on sys.path via this conftest


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server
