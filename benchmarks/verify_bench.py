"""Recall and false positives of `bimpl verify` over the vulnerable/fixed corpus, and time per stage.

    python benchmarks/verify_bench.py [--corpus tests/fixtures/vulnerable] [--only sqli,idor] [--fuzz-time 0]
                                      [--json out.json]
    python benchmarks/verify_bench.py --generated examples/shop.yaml [--runs 3] [--fuzz-time 0]

--generated times `verify` of a backend `bimpl new` makes from SPEC (target: a 5-resource app <= 20 s
without fuzzing): it is generated and installed once (npm ci from the shared cache, timed apart), then
verified --runs times; each run's stage times are printed.

Each app dir holds expected.json ({"cwe": 89 | null, "twin": ..., optional "db_dir_env"}). A vulnerable app
is a hit when a finding carries its planted CWE; any finding on a twin (cwe null) is a false positive.
The corpus' node_modules must be installed first (`npm ci --ignore-scripts` in the corpus folder)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backend_implementor.generate import generate_project
from backend_implementor.spec.loader import load_spec
from backend_implementor.verify.engine import STAGES, VerifyOptions, VerifyUsageError, verify_project

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "tests" / "fixtures" / "vulnerable"


def corpus_apps(corpus: Path, only: list[str] | None) -> list[tuple[Path, dict[str, Any]]]:
    apps = []
    for exp in sorted(corpus.glob("*/expected.json")):
        name = exp.parent.name
        if only and not any(name == o or name == f"{o}-fixed" for o in only):
            continue
        apps.append((exp.parent, json.loads(exp.read_text())))
    return apps


def run_one(app: Path, expected: dict[str, Any], fuzz_time: float, probe_budget: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bimpl-bench-") as tmp:
        env, db_url = {}, None
        if expected.get("db_dir_env"):
            db_dir = Path(tmp) / "db"
            db_dir.mkdir()
            env[expected["db_dir_env"]] = str(db_dir)
            db_url = str(db_dir)
        opts = VerifyOptions(fuzz_time=fuzz_time, probe_budget=probe_budget, out_dir=Path(tmp) / "out", env=env,
                             db_url=db_url)  # fmt: skip
        t0 = time.monotonic()
        report = verify_project(app, opts)
        cwes = sorted({f.cwe for f in report.findings})
        return {
            "app": app.name,
            "planted": expected.get("cwe"),
            "cwes": cwes,
            "findings": [f"{f.id} (CWE-{f.cwe})" for f in report.findings],
            "exit_code": report.exit_code,
            "fatal": report.fatal,
            "failed_stages": [s.name for s in report.stages if s.status in ("failed", "error")],
            "stages": {s.name: (s.status, s.duration_s) for s in report.stages},
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
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--only", help="comma list of app names (a name selects its -fixed twin too)")
    ap.add_argument(
        "--fuzz-time", type=float, default=0.0, help="schemathesis seconds per app (0: no contract)"
    )
    ap.add_argument("--probe-budget", type=float, default=60.0)
    ap.add_argument("--json", type=Path, help="also write the per-app results here")
    ap.add_argument(
        "--generated", type=Path, metavar="SPEC", help="time verify of the backend generated from SPEC"
    )
    ap.add_argument("--runs", type=int, default=2, help="with --generated: verify runs (default 2)")
    args = ap.parse_args(argv)
    if args.generated:
        return bench_generated(args.generated, args.runs, args.fuzz_time)

    if not (args.corpus / "node_modules").is_dir():
        print(
            f"error: {args.corpus}/node_modules missing; run `npm ci --ignore-scripts` there first",
            file=sys.stderr,
        )
        return 2
    apps = corpus_apps(args.corpus, args.only.split(",") if args.only else None)
    if not apps:
        print(f"error: no apps with expected.json under {args.corpus}", file=sys.stderr)
        return 2

    results = []
    for app, expected in apps:
        try:
            res = run_one(app, expected, args.fuzz_time, args.probe_budget)
        except VerifyUsageError as exc:
            res = {"app": app.name, "planted": expected.get("cwe"), "cwes": [], "findings": [], "exit_code": 2,
                   "fatal": str(exc), "failed_stages": [], "stages": {}, "seconds": 0.0}  # fmt: skip
        planted = res["planted"]
        if planted is None:
            verdict = "ok" if not res["findings"] else "FALSE POSITIVE"
        else:
            verdict = "hit" if planted in res["cwes"] else "MISS"
        if res["fatal"]:
            verdict += f" (error: {res['fatal'][:80]})"
        res["verdict"] = verdict
        results.append(res)
        found = ", ".join(res["findings"]) or "-"
        print(f"{res['app']:<28} planted={planted!s:<5} exit={res['exit_code']} {res['seconds']:5.1f}s  {verdict:<15} "
              f"{found}", flush=True)  # fmt: skip

    vulnerable = [r for r in results if r["planted"] is not None]
    twins = [r for r in results if r["planted"] is None]
    hits = sum(r["planted"] in r["cwes"] for r in vulnerable)
    fps = [r for r in twins if r["findings"]]
    twin_nonzero = [r for r in twins if r["exit_code"] != 0]
    print()
    if vulnerable:
        print(f"recall: {hits}/{len(vulnerable)} = {100 * hits / len(vulnerable):.1f}%")
    print(f"false positives: {len(fps)} twin(s) with findings out of {len(twins)}"
          + (f" ({', '.join(r['app'] for r in fps)})" if fps else ""))  # fmt: skip
    if twin_nonzero:
        print(
            f"twins not exiting 0: {', '.join(r['app'] + ' (' + ','.join(r['failed_stages']) + ')' for r in twin_nonzero)}"
        )
    print("\ntime per stage (seconds over all apps that ran it):")
    print(f"  {'stage':<9} {'runs':>4} {'mean':>6} {'median':>6} {'max':>6}")
    names = [n for n in ("install", "build", "test", "boot", "contract", "security", "static")
             if any(n in r["stages"] for r in results)]  # fmt: skip
    for name in names:
        times = [
            r["stages"][name][1] for r in results if name in r["stages"] and r["stages"][name][0] != "skipped"
        ]
        if times:
            print(f"  {name:<9} {len(times):>4} {statistics.mean(times):6.2f} {statistics.median(times):6.2f} "
                  f"{max(times):6.2f}")  # fmt: skip
    total = sum(r["seconds"] for r in results)
    print(f"  {'total':<9} {len(results):>4} {total / len(results):6.2f} per app, {total:.1f}s overall")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if (not vulnerable or hits == len(vulnerable)) and not fps else 1


if __name__ == "__main__":
    sys.exit(main())
