"""Recall, false positives and inconclusive probes of `bimpl verify` over the corpora, and time per stage.

    python benchmarks/verify_bench.py [--corpus vulnerable|foreign|all] [--only sqli,idor] [--fuzz-time 3]
                                      [--jobs 2] [--json out.json]
    python benchmarks/verify_bench.py --generated examples/shop.yaml [--runs 3] [--fuzz-time 0]

Each app is verified the way a user does it: the `bimpl verify` command with every stage (and the
arguments its expected.json gives, e.g. --user accounts, or --url against the app under a supervisor).
A vulnerable app is a hit when findings carry each of its planted CWEs; a twin (cwe null) with any finding is a
false positive; a planted app that came out clean or incomplete without its CWE while a probe was
inconclusive is an "untested" miss. Corpus folders: tests/fixtures/vulnerable (bimpl's own style) and
tests/fixtures/foreign (other frameworks, logins, token shapes; written to not share verify's
assumptions). Their node_modules are installed first (npm ci --ignore-scripts, once).

--generated times `verify` of a backend `bimpl new` makes from SPEC (target: a 5-resource app <= 20 s
without fuzzing): it is generated and installed once (npm ci from the shared cache, timed apart), then
verified --runs times; each run's stage times are printed."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from backend_implementor.generate import generate_project
from backend_implementor.spec.loader import load_spec
from backend_implementor.verify.engine import STAGES, VerifyOptions, verify_project

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "verify"))
import corpus_helpers as ch  # noqa: E402  (the harness the tests use)

# The classes of flaw the corpus plants, by CWE (the order: access control first).
CLASSES: dict[str, set[int]] = {
    "object-level authorization": {639},
    "function-level authorization": {285},
    "mass assignment": {915},
    "data exposure in responses": {200},
    "secrets at rest": {312, 522},
    "bounds and business rules": {20},
    "SQL injection": {89},
    "XSS": {79},
    "command, code, template injection": {78, 94, 1336},
    "path traversal": {22},
    "open redirect": {601},
    "SSRF": {918},
    "CSRF": {352},
    "session cookies (flags, fixation)": {1004, 384},
    "token signing and expiry": {347, 613},
    "authentication (missing, rate limit)": {306, 307, 863},
    "robustness, errors, headers, limits": {703, 209, 693, 770, 400, 942},
    "secrets in code": {798},
}


def run_one(app: ch.CorpusApp, work: Path, fuzz_time: float) -> dict[str, Any]:
    t0 = time.monotonic()
    run = ch.verify_app(app, work, fuzz_time=fuzz_time)
    rep = run.report
    findings = rep.get("findings") or []
    return {
        "app": app.name,
        "planted": app.cwes,
        "cwes": sorted({f["cwe"] for f in findings}),
        "findings": [f"{f['id']} (CWE-{f['cwe']})" for f in findings],
        "inconclusive": [
            f"{p['id']}: {p['detail']}" for p in rep.get("probes") or [] if p["outcome"] == "inconclusive"
        ],
        "exit_code": run.returncode,
        "fatal": rep.get("fatal") or (None if rep else run.stderr[-300:]),
        "stages": {st["name"]: (st["status"], st["duration_s"]) for st in rep.get("stages") or []},
        "seconds": time.monotonic() - t0,
    }


def bench_generated(spec_path: Path, runs: int, fuzz_time: float) -> int:
    spec = load_spec(spec_path)
    cache = Path(os.environ.get("BIMPL_NPM_CACHE_DIR") or Path.home() / ".cache" / "bimpl-tests" / "npm")
    with tempfile.TemporaryDirectory(prefix="bimpl-bench-") as tmp:
        project = Path(tmp) / spec.name
        generate_project(spec, project)
        t0 = time.monotonic()
        npm = [
            "npm",
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--cache",
            str(cache),
        ]
        proc = subprocess.run(npm, cwd=project, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"error: npm ci failed in {project}:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 2
        print(
            f"{spec.name}: {len(spec.resources)} resources; npm ci {time.monotonic() - t0:.1f} s (not counted)"
        )
        print(f"  {'run':<4} " + " ".join(f"{n:>8}" for n in STAGES) + f" {'total':>8}  exit")
        worst = 0
        for i in range(1, runs + 1):
            opts = VerifyOptions(fuzz_time=fuzz_time, out_dir=Path(tmp) / f"out-{i}")
            report = verify_project(project, opts)
            times = {s.name: s.duration_s for s in report.stages if s.status != "skipped"}
            cells = " ".join(f"{times[n]:8.1f}" if n in times else f"{'-':>8}" for n in STAGES)
            print(f"  {i:<4} {cells} {report.duration_s:8.1f}  {report.exit_code}", flush=True)
            if report.exit_code != 0:
                failed = [f"{s.name}: {s.detail}" for s in report.stages if s.status in ("failed", "error")]
                print(f"       not clean: {report.fatal or '; '.join(failed) or len(report.findings)}")
            worst = max(worst, report.exit_code)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=("vulnerable", "foreign", "all"), default="all")
    ap.add_argument("--only", help="comma list of app names (a name selects its -fixed twin too)")
    ap.add_argument("--fuzz-time", type=float, default=3.0, help="schemathesis seconds per app")
    ap.add_argument("--jobs", type=int, default=2, help="apps verified at once")
    ap.add_argument("--json", type=Path, help="also write the per-app results here")
    ap.add_argument(
        "--generated", type=Path, metavar="SPEC", help="time verify of the backend generated from SPEC"
    )
    ap.add_argument("--runs", type=int, default=2, help="with --generated: verify runs (default 2)")
    args = ap.parse_args(argv)
    if args.generated:
        return bench_generated(args.generated, args.runs, args.fuzz_time)

    corpora = {"vulnerable": [ch.CORPUS], "foreign": [ch.FOREIGN], "all": [ch.CORPUS, ch.FOREIGN]}[
        args.corpus
    ]
    apps: list[tuple[str, ch.CorpusApp]] = []
    for corpus in corpora:
        ch.ensure_node_modules(corpus)
        found = ch.corpus_apps() if corpus == ch.CORPUS else ch.foreign_apps()
        apps += [(corpus.name, a) for a in found]
    if args.only:
        only = args.only.split(",")
        apps = [(c, a) for c, a in apps if any(a.name in (o, f"{o}-fixed") for o in only)]
    if not apps:
        print("error: no apps selected", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bimpl-bench-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = [(c, pool.submit(run_one, a, Path(tmp), args.fuzz_time)) for c, a in apps]
        results = []
        for corpus, fut in futures:
            res = fut.result()
            res["corpus"] = corpus
            res["verdict"] = _verdict(res)
            results.append(res)
            found = ", ".join(res["findings"]) or "-"
            planted = ",".join(map(str, res["planted"])) or "-"
            print(f"{corpus:<10} {res['app']:<28} planted={planted:<7} exit={res['exit_code']} "
                  f"{res['seconds']:5.1f}s  {res['verdict']:<15} {found}", flush=True)  # fmt: skip
            for line in res["inconclusive"]:
                print(f"{'':<40} inconclusive {line[:150]}")

    print()
    for corpus in dict.fromkeys(r["corpus"] for r in results):
        rs = [r for r in results if r["corpus"] == corpus]
        vulnerable = [r for r in rs if r["planted"]]
        twins = [r for r in rs if not r["planted"]]
        flaws = [(r, c) for r in vulnerable for c in r["planted"]]
        hits = sum(c in r["cwes"] for r, c in flaws)
        fps = [r["app"] for r in twins if r["findings"]]
        untested = [r["app"] for r in vulnerable if r["verdict"] == "UNTESTED"]
        inconclusive = sum(len(r["inconclusive"]) for r in rs)
        not_clean = [r["app"] for r in twins if r["exit_code"] != 0]
        print(f"{corpus}: recall {hits}/{len(flaws)} planted flaws"
              + (f" = {100 * hits / len(flaws):.1f}%" if flaws else "")
              + f"; false positives {len(fps)}" + (f" ({', '.join(fps)})" if fps else "")
              + f"; inconclusive probes {inconclusive}"
              + f"; untested planted flaws {len(untested)}" + (f" ({', '.join(untested)})" if untested else "")
              + f"; twins not exiting 0: {len(not_clean)}" + (f" ({', '.join(not_clean)})" if not_clean else ""))  # fmt: skip
    print(
        "\nrecall per class (planted flaws found / planted; false positives: twins with a finding of the class):"
    )
    flaws = [(r, c) for r in results for c in r["planted"]]
    for name, members in CLASSES.items():
        planted = [(r, c) for r, c in flaws if c in members]
        twins_hit = [r["app"] for r in results if not r["planted"] and set(r["cwes"]) & members]
        if planted or twins_hit:
            found = sum(c in r["cwes"] for r, c in planted)
            missed = [r["app"] for r, c in planted if c not in r["cwes"]]
            print(f"  {name:<34} {found:>3}/{len(planted):<3} fp {len(twins_hit)}"
                  + (f"  missed: {', '.join(missed)}" if missed else "")
                  + (f"  fp: {', '.join(twins_hit)}" if twins_hit else ""))  # fmt: skip
    other = sorted({c for _, c in flaws} - set().union(*CLASSES.values()))
    if other:
        print(f"  (CWEs in no class: {other})")
    print("\ntime per stage (seconds over all apps that ran it):")
    print(f"  {'stage':<9} {'runs':>4} {'mean':>6} {'median':>6} {'max':>6}")
    for name in STAGES:
        times = [r["stages"][name][1] for r in results if r["stages"].get(name, ("skipped",))[0] != "skipped"]
        if times:
            print(f"  {name:<9} {len(times):>4} {statistics.mean(times):6.2f} {statistics.median(times):6.2f} "
                  f"{max(times):6.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    bad = [r for r in results if r["verdict"] not in ("hit", "ok")]
    return 1 if bad else 0


def _verdict(res: dict[str, Any]) -> str:
    if not res["planted"]:
        if res["findings"]:
            return "FALSE POSITIVE"
        return "ok" if res["exit_code"] == 0 else f"TWIN EXIT {res['exit_code']}"
    found = [c for c in res["planted"] if c in res["cwes"]]
    if len(found) == len(res["planted"]):
        return "hit"
    if found:
        return "PARTIAL"
    return "UNTESTED" if res["inconclusive"] or res["exit_code"] in (2, 3) else "MISS"


if __name__ == "__main__":
    sys.exit(main())
