"""Errors shown to the user, and the exceptions that end an agent run.

Each run ends by raising an `AgentExit`; its `exit_status` is what the summary, the trajectory and the
process exit code report.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (a flag, a file); the CLI prints the message and exits 2."""


class AgentExit(Exception):
    exit_status = "error"
    exit_code = 1


class Finished(AgentExit):
    """The model called `finish`; the message is its summary."""

    exit_status = "finished"
    exit_code = 0

    def __init__(self, summary: str, deliverables: dict[str, str] | None = None):
        super().__init__(summary)
        self.deliverables = deliverables or {}


class Unverified(Finished):
    """The model called `finish`, but `verify` kept failing past the retry budget."""

    exit_status = "unverified"
    exit_code = 1


class LimitsExceeded(AgentExit):
    exit_status = "limits_exceeded"


class StuckDetected(AgentExit):
    exit_status = "stuck"


class FormatErrorLimit(AgentExit):
    exit_status = "format_error"


class ModelFailed(AgentExit):
    exit_status = "model_error"


class ScriptEnded(AgentExit):
    """A scripted model ran out of entries before the run finished."""

    exit_status = "script_exhausted"


class Interrupted(AgentExit):
    exit_status = "interrupted"
    exit_code = 130
