"""Three instances of a generated backend on one PostgreSQL behind a round-robin proxy that routes only to
instances whose /health answers 200 (as a load balancer with readiness probes does): the black-box checks
pass through it, the login limit is one budget for all three, a refresh token reused on another instance
revokes the session, and a SIGTERM to one instance under load loses no request."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from .blackbox import run_checks
from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Server, query, start, wait_for_health

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
PASSWORD = "instances-password-1"


class Balancer:
    """Round robin over the ready backends; a fresh connection per request, X-Forwarded-For appended."""

    def __init__(self, backends: list[str]):
        self.backends = [b.removeprefix("http://") for b in backends]
        self.ready = set(self.backends)
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.stop = threading.Event()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                backend = balancer.pick()
                if backend is None:
                    self.send_error(503, "no ready backend")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                forwarded = self.headers.get("x-forwarded-for")
                peer = self.client_address[0]
                headers["X-Forwarded-For"] = f"{forwarded}, {peer}" if forwarded else peer
                host, port = backend.split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                except OSError as exc:
                    self.send_error(502, f"{backend}: {exc}")
                    return
                finally:
                    conn.close()
                with balancer.lock:
                    balancer.served[backend] += 1
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def __getattr__(self, name: str):  # every method, TRACE and made-up ones too
                if name.startswith("do_"):
                    return self.forward
                raise AttributeError(name)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self.probe, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def pick(self) -> str | None:
        with self.lock:
            ready = [b for b in self.backends if b in self.ready]
            return ready[next(self.turn) % len(ready)] if ready else None

    def probe(self) -> None:
        """Readiness every 100 ms, as a load balancer's health check."""
        while not self.stop.is_set():
            for b in self.backends:
                try:
                    ok = httpx.get(f"http://{b}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    (self.ready.add if ok else self.ready.discard)(b)
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def instances(project, tmp_path, env: dict[str, str], count: int = 3) -> Iterator[list[Server]]:
    # Started together: each migrates at boot under the advisory lock, so one applies and the others wait.
    servers = [start(project, tmp_path / f"instance-{i}", env) for i in range(count)]
    try:
        for i, s in enumerate(servers):
            wait_for_health(s, f"{project.name} instance {i}")
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_three_instances_behind_a_load_balancer(projects, database_url, tmp_path):
    project = projects["library"]
    env = {"DATABASE_URL": database_url, "TRUST_PROXY": "1", "SHUTDOWN_DELAY_SECONDS": "2"}

    # The black-box checks, every request round-robin.
    with instances(project, tmp_path / "checks", env) as servers:
        lb = Balancer([s.url for s in servers])
        try:
            run_checks(lb.url, project.spec, (ADMIN_EMAIL, ADMIN_PASSWORD))
            assert min(lb.served.values()) > 10 and len(lb.served) == 3, lb.served
        finally:
            lb.close()
    query(project, database_url, "delete from rate_limits")

    with instances(project, tmp_path / "limits", {**env, "AUTH_RATE_LIMIT": "6"}) as servers:
        lb = Balancer([s.url for s in servers])
        try:
            http = httpx.Client(base_url=lb.url, timeout=30)
            # One budget for all three: with a memory store each would have seen only two attempts.
            bad = {"email": "nobody@example.com", "password": "wrong-password-1"}
            assert [http.post("/auth/login", json=bad).status_code for _ in range(6)] == [401] * 6
            assert http.post("/auth/login", json=bad).status_code == 429
            # The proxy's X-Forwarded-For names the client (TRUST_PROXY=1): another client has its own budget.
            other = {"X-Forwarded-For": "203.0.113.9"}
            assert http.post("/auth/login", json=bad, headers=other).status_code == 429, "one hop is trusted"
            query(project, database_url, "delete from rate_limits")

            # A rotated refresh token, reused on another instance, ends the whole session.
            assert http.post(
                "/auth/register", json={"email": "rr@example.com", "password": PASSWORD}
            ).is_success
            first = http.post("/auth/login", json={"email": "rr@example.com", "password": PASSWORD}).json()
            second = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
            assert "refresh_token" in second, second
            assert (
                http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
            )
            assert (
                http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
            )
            query(project, database_url, "delete from rate_limits")

            # SIGTERM to one instance under load: readiness turns 503, the balancer stops sending to it
            # within 100 ms, it drains and exits 0; every request is answered.
            token = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
            auth = {"Authorization": f"Bearer {token['access_token']}"}
            statuses: Counter[int] = Counter()
            failures: list[str] = []
            stop = threading.Event()

            def client(n: int) -> None:
                with httpx.Client(base_url=lb.url, timeout=30) as c:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        try:
                            if i % 4 == 0:
                                r = c.post("/authors", json={"name": f"load {n}-{i}"}, headers=auth)
                            else:
                                r = c.get("/authors", params={"limit": 5})
                            statuses[r.status_code] += 1
                        except httpx.HTTPError as exc:
                            failures.append(repr(exc))

            workers = [threading.Thread(target=client, args=(n,)) for n in range(6)]
            for w in workers:
                w.start()
            time.sleep(1.5)
            victim = servers[1]
            before = sum(statuses.values())
            victim.proc.send_signal(15)
            code = victim.proc.wait(timeout=30)
            time.sleep(1)
            stop.set()
            for w in workers:
                w.join(timeout=30)
            assert code == 0, victim.log.read_text()[-2000:]
            assert not failures, failures[:5]
            assert set(statuses) <= {200, 201}, statuses
            assert sum(statuses.values()) > before + 50, "the load kept going on the other two"
        finally:
            lb.close()
