"""SIGTERM on a generated server behind a load balancer: readiness turns 503 at once, requests are still
answered during SHUTDOWN_DELAY_SECONDS, then the server drains, closes the database and exits 0."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from .conftest import serve

pytestmark = pytest.mark.slow


def test_sigterm_turns_readiness_off_then_drains(projects, tmp_path):
    project = projects["library"]
    with serve(project, tmp_path, {"SHUTDOWN_DELAY_SECONDS": "2", "LOG_LEVEL": "info"}) as server:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert (
                client.get("/authors").status_code == 200
            )  # a keep-alive connection, open before the signal
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            ready = client.get("/health")
            assert ready.status_code == 503 and "shutting down" in ready.json()["detail"]
            assert ready.headers["connection"] == "close"
            served = client.get("/authors")  # still answered, on a new connection
            assert served.status_code == 200 and served.headers["connection"] == "close"
            assert client.get("/livez").status_code == 200
        assert server.proc.wait(timeout=20) == 0
        log = server.log.read_text()
        assert "shutting down" in log and "stopped" in log
