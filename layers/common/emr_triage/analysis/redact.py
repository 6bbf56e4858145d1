"""Remove secrets from log text before it leaves the function (Slack, DynamoDB, CloudWatch).

The engine and its catalogue live in :mod:`emr_triage.analysis.redaction`; this module keeps the import path
every caller uses.
"""

from __future__ import annotations

from typing import Any

from emr_triage.analysis.redaction import redact, redact_lines

__all__ = ["redact", "redact_lines", "redact_strings"]


def redact_strings(value: Any) -> Any:
    """``value`` (a JSON-like document: a stored incident, a log line's fields, ``--json`` output) with every
    string in it redacted, dict keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_strings(v) for v in value]
    return value
