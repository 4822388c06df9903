"""Contract stage: schemathesis (4.x CLI, run as `python -m schemathesis.cli`) against the served OpenAPI
document, results read from its JUnit report: one <testcase> per operation ("GET /books"), failure text
holding the failed checks and a `curl` reproduction (auth header already filtered by schemathesis)."""

from __future__ import annotations

import copy
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend_implementor.verify.openapi_doc import METHODS, deref, operations
from backend_implementor.verify.proc import run_cmd

# `all` also enables checks that flag any undocumented 4xx or any 2xx on loosely typed input
# (negative_data_rejection, positive_data_acceptance, unsupported_method, missing_required_header);
# they are useful for strict specs but noisy on hand-written ones, so they are opt-in via --contract-checks.
DEFAULT_CHECKS = (
    "not_a_server_error,content_type_conformance,response_schema_conformance,"
    "use_after_free,ensure_resource_availability,ignored_auth"
)
_CURL = re.compile(r"^\s*(curl .+)$", re.MULTILINE)
_CHECK_LINE = re.compile(r"^- (.+)$", re.MULTILINE)
_STATUS = re.compile(r"^\[(\d{3})\] ", re.MULTILINE)


class ContractReportError(Exception):
    pass


@dataclass
class ContractFailure:
    operation: str  # "POST /books"
    checks: list[str]  # ["ST101 Server error", ...]
    request: str  # curl command that reproduces it
    status: int | None  # response status seen
    detail: str  # excerpt of schemathesis' explanation


@dataclass
class ContractResult:
    operations: int = 0
    failed_operations: int = 0
    errors: list[str] = field(default_factory=list)  # operations schemathesis could not test
    failures: list[ContractFailure] = field(default_factory=list)
    authenticated: bool = False
    auth_detail: str = ""
    checks: str = DEFAULT_CHECKS
    spec: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failure(operation: str, chunk: str, checks: list[str]) -> ContractFailure:
    curl = _CURL.search(chunk)
    status = _STATUS.search(chunk)
    return ContractFailure(
        operation=operation,
        checks=checks,
        request=curl.group(1).strip() if curl else "",
        status=int(status.group(1)) if status else None,
        detail="\n".join(chunk.strip().splitlines()[:20])[:1500],
    )


def _bodiless_content_type(f: ContractFailure) -> bool:
    """A 204/304 (or any empty answer) needs no Content-Type: schemathesis still asks for the documented
    one when a Swagger 2.0 document declares `produces` for every operation. Not a contract violation."""
    only_ct = all("Missing Content-Type" in c for c in f.checks)
    return only_ct and (f.status in (204, 304) or "<EMPTY>" in f.detail)


def _tool_crash(text: str) -> bool:
    """schemathesis labels an exception of its own "Runtime Error" (seen: its stateful phase handing
    requests an int cookie). It carries a reproduction, but says nothing about the API."""
    return text.lstrip().startswith("Runtime Error")


def _crash_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^\w+(Error|Exception)\b:", line)]
    return raised[-1] if raised else " ".join(lines[1:2]) or "no message"


def parse_junit(path: Path) -> ContractResult:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ContractReportError(f"schemathesis wrote no readable JUnit report: {exc}") from exc
    result = ContractResult()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        # schemathesis adds pseudo cases such as "Server" (server unavailable) and "Stateful tests".
        is_operation = re.match(r"^[A-Z]+ /", name) is not None
        result.operations += is_operation
        fails = case.findall("failure")
        failed = False
        for fail in fails:
            text = fail.text or ""
            # One <failure> may hold several numbered test cases ("1. Test Case ID: ..."): split them.
            chunks = [
                c for c in re.split(r"^\d+\. Test Case ID: \S+\s*$", text, flags=re.MULTILINE) if c.strip()
            ]
            for chunk in chunks or [text]:
                failure = _failure(name, chunk, [c.strip() for c in _CHECK_LINE.findall(chunk)]
                                   or [fail.get("message", "failure")])  # fmt: skip
                if not _bodiless_content_type(failure):
                    result.failures.append(failure)
                    failed = True
        errors = []
        for err in case.findall("error"):
            if not _tool_crash(err.text or ""):
                errors.append(err)
                continue
            crash = f"{name}: schemathesis crashed ({_crash_line(err.text or '')}); the rest of this phase did not run"
            if crash not in result.errors:
                result.errors.append(crash)
        for err in errors:
            text = err.text or ""
            curl = _CURL.search(text)
            if is_operation and curl:
                # Network errors (connection dropped mid-request) carry a reproduction: a real failure.
                result.failures.append(
                    _failure(name, text, [text.strip().splitlines()[0] if text.strip() else "error"])
                )
            else:
                result.errors.append(f"{name}: {' '.join(text.split())[:300]}")
        if is_operation and (failed or any(_CURL.search(e.text or "") for e in errors)):
            result.failed_operations += 1
    return result


def drop_alternative_auth(result: ContractResult, doc: dict[str, Any] | None) -> None:
    """schemathesis' ignored_auth sends invalid credentials for one scheme while the valid header of
    another stays on the request; where an operation accepts either (security: [{apiKey}, {bearer}]), the
    API rightly lets it in. Those failures say nothing about the API and are dropped."""
    either = {
        str(op) for op in operations(doc) if len(op.op.get("security") or doc.get("security") or []) > 1
    }
    if not either:
        return
    kept = [
        f for f in result.failures
        if not (f.operation in either and all("invalid authentication" in c for c in f.checks))
    ]  # fmt: skip
    dropped = {f.operation for f in result.failures} - {f.operation for f in kept}
    result.failures = kept
    result.failed_operations -= len(dropped)


# Continuation tokens a server hands out (`next_cursor`, `nextPageToken`…) and accepts back: no schema can
# say which strings are its own, so a schema-valid made-up one is rightly refused (400) and "positive data
# acceptance" would blame the API for it.
OPAQUE_TOKENS = {
    "cursor", "page_cursor", "pagecursor", "page_token", "pagetoken", "next_token", "nexttoken",
    "continuation", "continuation_token", "continuationtoken", "starting_after", "ending_before",
}  # fmt: skip


def without_opaque_tokens(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The document without its query parameters that are continuation tokens (free strings named like
    one), so schemathesis does not make them up; and which it left out ("GET /books ?cursor")."""
    out = copy.deepcopy(doc)
    left_out: list[str] = []

    def opaque(param: Any) -> bool:
        p = deref(doc, param)
        schema = deref(doc, p.get("schema") or {}) if isinstance(p, dict) else {}
        return (
            isinstance(p, dict)
            and p.get("in") == "query"
            and str(p.get("name", "")).lower() in OPAQUE_TOKENS
            and schema.get("type", "string") == "string"
            and not schema.get("enum")
            and not schema.get("format")
        )

    for path, item in (out.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params = op.get("parameters") or []
            kept = [p for p in params if not opaque(p)]
            if len(kept) != len(params):
                names = [deref(doc, p).get("name") for p in params if opaque(p)]
                left_out += [f"{method.upper()} {path} ?{n}" for n in names]
                op["parameters"] = kept
    return out, left_out


# Operations (schemathesis names them "METHOD /path") that can end the caller's session: logouts, and DELETE on
# sessions or one session (schemathesis follows GET /auth/sessions to the caller's own session id).
SESSION_ENDING = r"^[A-Z]+ .*(?i:log-?out|sign-?out)[^/]*$|^DELETE .*/(?i:sessions)(/[^/]+)?/?$"


def run_schemathesis(
    spec: str,
    *,
    base_url: str,
    out_dir: Path,
    fuzz_time_s: float,
    headers: dict[str, str] | None = None,
    checks: str = DEFAULT_CHECKS,
    max_examples: int = 50,
) -> tuple[int | None, ContractResult | None, str]:
    """Returns (exit code, parsed result or None, log tail). `spec` is a URL or a file path; `headers` are
    the logged-in user's (a token, or a session cookie with its CSRF token), kept out of logs."""
    junit = out_dir / "contract-junit.xml"
    junit.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", spec,
        "--url", base_url,
        "--max-time", str(max(1, int(fuzz_time_s))),
        "-n", str(max_examples),
        "-c", checks,
        "--request-timeout", "10",
        "--generation-database", "none",  # no .hypothesis folder left in the project
        "--no-color",
        "--report", "junit",
        "--report-junit-path", str(junit),
    ]  # fmt: skip
    hidden = [v for v in (headers or {}).values() if v]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if headers:
        # Called with the logged-in user's own credentials, these would end that session halfway through the
        # run, and every later operation would be tested as a stranger.
        cmd += ["--exclude-name-regex", SESSION_ENDING]

    def scrub(text: str) -> str:
        for value in hidden:
            text = text.replace(value, "[credentials]")
        return text

    # Headroom over --max-time for schema loading, the coverage phase and shutdown.
    res = run_cmd(
        cmd,
        cwd=out_dir,
        log_path=out_dir / "contract.log",
        timeout_s=fuzz_time_s * 2 + 60,
        display=scrub(" ".join(cmd)),
    )
    tail = scrub(res.tail(25))
    if res.timed_out or res.error:
        return None, None, res.error or f"schemathesis did not finish in {fuzz_time_s * 2 + 60:.0f}s\n{tail}"
    try:
        parsed = parse_junit(junit)
    except ContractReportError:
        return res.returncode, None, tail
    parsed.checks = checks
    parsed.spec = spec
    return res.returncode, parsed, tail
