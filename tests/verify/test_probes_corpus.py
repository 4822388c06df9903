"""Every vulnerable corpus app is flagged with its planted CWE (with evidence); every twin gets zero
findings from the probes and the static scan. Data-driven from tests/fixtures/vulnerable/*/expected.json."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from corpus_helpers import CorpusApp, boot, corpus_apps, corpus_pairs, ensure_node_modules

from backend_implementor.verify import static
from backend_implementor.verify.findings import Finding
from backend_implementor.verify.probes import ProbeTarget, run_probes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="needs node and npm"
    ),
]

PAIRS = corpus_pairs()


class Prober:
    """Boots and probes corpus apps on a small thread pool. Without xdist every app is submitted up front
    (database apps first: their boot is the slowest) so tests only wait; under xdist each worker submits
    just the apps its tests ask for."""

    def __init__(self, prefetch: bool) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.futures: dict[str, Future] = {}
        if prefetch:
            apps = sorted(corpus_apps(), key=lambda a: "lib/db" not in (a.dir / "app.js").read_text())
            for app in apps:
                self.get(app)

    def get(self, app: CorpusApp) -> Future:
        if app.name not in self.futures:
            self.futures[app.name] = self.pool.submit(_probe, app)
        return self.futures[app.name]


@pytest.fixture(scope="session")
def prober() -> Iterator[Prober]:
    ensure_node_modules()
    p = Prober(prefetch="PYTEST_XDIST_WORKER" not in os.environ)
    yield p
    p.pool.shutdown(wait=True, cancel_futures=True)


def _probe(app: CorpusApp) -> tuple[list[Finding], list[str]]:
    messages: list[str] = []
    with boot(app) as running:
        target = ProbeTarget(
            running.base_url, running.openapi(), None, running.db_url, running.is_alive, (running.secret,)
        )
        run = run_probes(target, budget_s=40, progress=messages.append)
    messages += [f"inconclusive {r.id}: {r.detail}" for r in run.inconclusive]
    return run.findings, messages


def test_corpus_has_at_least_16_pairs_with_distinct_cwes():
    assert len(PAIRS) >= 16
    assert len({v.expected["cwe"] for v, _ in PAIRS}) >= 14
    for vulnerable, twin in PAIRS:
        assert twin.expected["cwe"] is None and twin.expected["twin"] == vulnerable.name
        for app in (vulnerable, twin):
            pkg = (app.dir / "package.json").read_text()
            assert '"start": "node app.js"' in pkg and "dependencies" not in pkg


@pytest.mark.parametrize(("vulnerable", "twin"), PAIRS, ids=[v.name for v, _ in PAIRS])
def test_pair(vulnerable: CorpusApp, twin: CorpusApp, prober: Prober) -> None:
    v_future, t_future = prober.get(vulnerable), prober.get(twin)
    (v_findings, v_msgs), (t_findings, t_msgs) = v_future.result(), t_future.result()
    v_static, t_static = static.scan(vulnerable.dir), static.scan(twin.dir)

    for msgs in (v_msgs, t_msgs):
        assert not [m for m in msgs if "internal error" in m], msgs
    # Every probe ran on the twin (a planted crash may leave the rest of its own run without a server).
    assert not [m for m in t_msgs if m.startswith("inconclusive")], t_msgs

    cwe, probe = vulnerable.expected["cwe"], vulnerable.expected["probe"]
    found = v_static if vulnerable.expected.get("stage") == "static" else v_findings
    planted = [f for f in found if f.cwe == cwe and f.id == probe]
    assert planted, f"{vulnerable.name}: expected CWE-{cwe} ({probe}); got {[(f.cwe, f.id) for f in found]}"
    for f in planted:
        if f.stage == "static":
            assert f.evidence.location.startswith("app.js:") and f.evidence.request
        else:
            assert f.evidence.request and f.evidence.response
    # Exactly one vulnerability was planted: nothing else may be reported for it.
    others = [(f.cwe, f.id, f.title) for f in [*v_findings, *v_static] if f.cwe != cwe]
    assert not others, f"{vulnerable.name}: unexpected findings {others}"

    assert [f.title for f in t_findings] == [], f"{twin.name}: probe findings {t_findings}"
    assert [f.title for f in t_static] == [], f"{twin.name}: static findings {t_static}"


def test_shared_lib_is_clean_statically():
    lib = next(a for a in corpus_apps()).dir.parent / "lib"
    assert static.scan(lib) == []
