"""Redaction: secrets never leave the function. See ``secrets.yaml`` for the forms and their sources."""

from emr_triage.analysis.redaction.engine import redact, redact_lines

__all__ = ["redact", "redact_lines"]
