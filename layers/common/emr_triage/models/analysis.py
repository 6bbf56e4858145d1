"""Results of log analysis: findings in one log, and the diagnosis an incident keeps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["critical", "high", "medium", "low"]
# cause: explains a failure by itself; symptom: shows that the job failed, not why; success: shows that
# the application or step finished successfully (what came before it was recovered from).
FindingKind = Literal["cause", "symptom", "success"]
# What is known of the run besides its logs: EMR or YARN said it failed (or succeeded), or nothing.
KnownOutcome = Literal["failed", "succeeded", "unknown"]


class LogRead(BaseModel):
    """What was read of one log object or file, and whether the read was complete."""

    source: str
    etag: str | None = None
    bytes_read: int = 0
    bytes_scanned: int = 0
    lines: int = 0
    partial: bool = False
    notes: list[str] = Field(default_factory=list)
    # The log of an interactive session (shell, notebook, Livy, Thrift server): a statement's failure is
    # not recovered from by a later statement's success.
    interactive: bool = False


class ExitCode(BaseModel):
    """An exit code or signal seen in a log, in words."""

    code: int | None = None
    signal: str | None = None
    meaning: str
    source: str
    line_no: int
    count: int = 1


class ExtractLine(BaseModel):
    """One line of the extract shown to people: where it is, and how often it repeats right there."""

    source: str
    line_no: int
    text: str
    repeat: int = 1


class Finding(BaseModel):
    """One rule matching in one log. Text fields are redacted before they are stored here."""

    rule_id: str
    category: str
    kind: FindingKind
    rank: int
    severity: Severity
    retryable: bool | None
    title: str
    source: str
    source_weight: int = 0
    line_no: int
    headline: str
    evidence: list[str] = Field(default_factory=list)
    location: str | None = None
    count: int = 1
    last_line_no: int | None = None  # the rule's last match in this log (None: only the first)
    requires_failure: bool = False
    # Up to two lines just before the headline (for the extract), and the `yarn logs` section it is in.
    context_before: list[str] = Field(default_factory=list)
    section: str | None = None
    # The log level of the record the match belongs to (its own, or the record that printed the exception)
    # and whether it is an exception printed under a WARN record (caught and logged, not fatal by itself).
    level: str | None = None
    quiet: bool = False


class AnalysisReport(BaseModel):
    """Everything found in a set of logs, before a verdict is chosen."""

    findings: list[Finding] = Field(default_factory=list)
    reads: list[LogRead] = Field(default_factory=list)
    application_ids: list[str] = Field(default_factory=list)
    exit_codes: list[ExitCode] = Field(default_factory=list)


class SecondaryFinding(BaseModel):
    rule_id: str
    category: str
    title: str
    source: str
    line_no: int
    count: int = 1


class Diagnosis(BaseModel):
    """The verdict: the root cause with its evidence, and the symptoms it explains."""

    category: str
    rule_id: str | None = None
    title: str
    severity: Severity
    retryable: bool | None = None
    summary: str
    explanation: str = ""
    remediation: str = ""
    headline: str | None = None
    evidence: list[str] = Field(default_factory=list)
    source: str | None = None
    line_no: int | None = None
    location: str | None = None
    fingerprint: str | None = None
    secondary: list[SecondaryFinding] = Field(default_factory=list)
    partial: bool = False
    partial_notes: list[str] = Field(default_factory=list)
    from_logs: bool = False
    # How sure the verdict is, calibrated on the development half of the corpus (make accuracy prints the
    # share of verdicts right per confidence group): see emr_triage.analysis.verdict._confidence.
    confidence: float = 0.0
    exit_codes: list[ExitCode] = Field(default_factory=list)
    extract: list[ExtractLine] = Field(default_factory=list)
    bytes_scanned: int = 0
    # What the verdict rests on: a cause, only symptoms (the failure shown, its cause not), or no finding.
    root_kind: FindingKind | None = None
