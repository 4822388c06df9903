"""Database faults under a generated backend, on a PostgreSQL server of the test's own (it is restarted and
stopped): the process survives a restart under load and with an idle pool, answers 503 with Retry-After while
the database is down (never 500), is back to 200 without a restart, and logs the outage as a few state
changes instead of a stack trace per request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .cluster import Cluster
from .conftest import build, serve, wait_for_health

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.ctl("start")
    yield c
    c.close()


class Load:
    """Clients sending GET /books and GET /health in a loop until stopped; every answer's status is counted."""

    def __init__(self, url: str, clients: int = 8):
        self.url, self.stop, self.statuses = url, threading.Event(), Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            while not self.stop.is_set():
                try:
                    status = http.get("/books" if i % 4 else "/health").status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__  # the server itself did not answer
                with self.lock:
                    self.statuses[status] += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_database_restart_and_outage(projects, cluster, tmp_path):
    project = projects["library"]
    build(project)
    with serve(project, tmp_path, {"DATABASE_URL": cluster.url, "LOG_LEVEL": "info"}) as server:
        http = httpx.Client(base_url=server.url, timeout=15)
        # A warm pool: several connections open and idle.
        with Load(server.url) as warm:
            time.sleep(1.5)
        assert set(warm.statuses) == {200}, warm.statuses

        # 1. Restart under load.
        with Load(server.url) as load:
            time.sleep(0.5)
            cluster.ctl("restart")
            time.sleep(2)
        assert server.proc.poll() is None, server.log.read_text()[-3000:]
        assert set(load.statuses) <= {200, 503}, load.statuses
        wait_for_health(server, project.name, timeout=20)

        # 2. Stop with an idle pool: the dead idle connections must not take the process down.
        assert http.get("/books").status_code == 200
        time.sleep(0.5)
        cluster.ctl("stop")
        time.sleep(1.5)
        assert server.proc.poll() is None, server.log.read_text()[-3000:]
        for path in ("/books", "/health"):
            down = http.get(path)
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "5"
            assert down.headers["content-type"].startswith("application/problem+json")
            assert "stack" not in down.text and "ECONNREFUSED" not in down.text
        with Load(server.url) as outage:
            time.sleep(2)
        assert set(outage.statuses) == {503}, outage.statuses

        # 3. Back, without restarting the server.
        cluster.ctl("start")
        wait_for_health(server, project.name, timeout=20)
        assert http.get("/books").status_code == 200
        assert server.proc.poll() is None

    log = Path(server.log).read_text()
    failed = sum(outage.statuses.values()) + load.statuses[503]
    # Every request has its access-log line; anything else is what the outage itself logged.
    lines = [line for line in log.splitlines() if line.strip() and '"msg":"request"' not in line]
    assert "unhandled error" not in log, "no stack trace per request"
    unreachable = [line for line in lines if "database unreachable" in line]
    back = [line for line in lines if "database reachable again" in line]
    # Two outages: one line as each starts and one as each ends (a flap during the restart may add a pair).
    assert 2 <= len(unreachable) <= 4 and len(back) >= 2, log[-4000:]
    assert len(lines) < 20, f"{failed} failed requests must not mean {len(lines)} log lines:\n" + "\n".join(
        lines[:30]
    )
