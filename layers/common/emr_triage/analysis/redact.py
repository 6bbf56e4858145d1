"""Remove secrets from log text before it leaves the function (Slack, DynamoDB, CloudWatch).

The engine and its catalogue live in :mod:`emr_triage.analysis.redaction`; this module keeps the import path
every caller uses.
"""

from __future__ import annotations

from emr_triage.analysis.redaction import redact, redact_lines

__all__ = ["redact", "redact_lines"]
