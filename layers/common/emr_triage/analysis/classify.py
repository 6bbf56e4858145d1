"""Find failure signatures in log lines and choose the root cause among them.

Pure functions: lines in, findings and a diagnosis out. Each finding keeps the first line that matched a
rule in a log, the lines that belong to it (stack frames, ``Caused by:`` chain, a Python traceback up to
its exception line), how often the rule matched, and the first frame of the user's own code. All kept
text is redacted here, before anything else sees it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from emr_triage.analysis.catalogue import Catalogue, Rule
from emr_triage.analysis.redact import redact, redact_lines
from emr_triage.models.analysis import AnalysisReport, Diagnosis, Finding, LogRead, SecondaryFinding

MAX_EVIDENCE_LINES = 25
MAX_EVIDENCE_LINE_CHARS = 500
MAX_BLOCK_LINES = 400  # lines of one stack scanned for the user's code location
MAX_FINDINGS_KEPT = 12

_CONTINUATION = re.compile(r"^(?:\s|Caused by:|Suppressed:|\.\.\. \d+ more|Driver stacktrace:|: )")
_TRACEBACK = "Traceback (most recent call last)"
# log4j prints "<message>: <exception>" and then the throwable itself, unindented, then its frames.
_EXCEPTION_HEADLINE = re.compile(
    r'^(?:Exception in thread "[^"]*" )?(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable)(?::|\s*$)'
)
_JAVA_FRAME = re.compile(r"^\s*at\s+(?P<cls>[\w$.]+)\.(?P<method>[\w$<>]+)\((?P<file>[^)]*)\)")
_PYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_FRAMEWORK_CLASS = re.compile(
    r"^(?:java|javax|jdk|sun|scala|org\.apache|org\.spark_project|org\.sparkproject|com\.amazon|com\.amazonaws"
    r"|software\.amazon|io\.netty|py4j|com\.google|com\.fasterxml|org\.slf4j|org\.eclipse|org\.glassfish"
    r"|net\.razorvine|org\.json4s|akka|com\.esotericsoftware|org\.codehaus)\."
)
_FRAMEWORK_PATH = re.compile(r"(?:/pyspark/|pyspark\.zip|/py4j|/site-packages/|/dist-packages/|/lib/python\d|<frozen )")
_LOG_PREFIX = re.compile(
    r"^(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\s+"
    r"(?:\[[^\]]*\]\s*)?(?:[\w.$-]+(?:\s\([^)]*\))?:\s)?"
)
_APPLICATION_ID = re.compile(
    r"\b(?:Submitted application|Application report for|Application Id:?)\s+(application_\d+_\d+)"
)

# Masks for fingerprints: variable parts become placeholders (Drain-style templates).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:application|appattempt)_\d+_\d+(?:_\d+)?"), "<app>"),
    (re.compile(r"\bcontainer_(?:e\d+_)?\d+_\d+_\d+_\d+"), "<container>"),
    (re.compile(r"\bj-[A-Z0-9]{6,}\b"), "<cluster>"),
    (re.compile(r"\bs-[A-Z0-9]{6,}\b"), "<step>"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b"), "<instance>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<uri>"),
    (re.compile(r"\bip-\d+-\d+-\d+-\d+(?:\.[\w.-]+)?"), "<host>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?:/[\w.@%+=-]+){2,}/?"), "<path>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:[.,]\d+)*"), "<n>"),
)


def strip_log_prefix(line: str) -> str:
    """Drop a log4j/controller timestamp, level and logger name from the front of a line."""
    return _LOG_PREFIX.sub("", line, count=1).strip()


def mask_variables(text: str) -> str:
    """Replace ids, hosts, paths, numbers and times with placeholders (for fingerprints)."""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def fingerprint(rule_id: str, summary: str, location: str | None) -> str:
    """A stable id of a failure: the same bug on tomorrow's run gets the same value.

    Ids, numbers, hosts, paths and times are masked; the rule, the wording of the error and the user's
    code location (without line numbers) are kept.
    """
    material = "|".join((rule_id, mask_variables(summary), mask_variables(location or "")))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _user_java_frame(line: str) -> str | None:
    match = _JAVA_FRAME.match(line)
    if not match or _FRAMEWORK_CLASS.match(match["cls"]):
        return None
    return f"{match['cls']}.{match['method']} ({match['file']})"


def _user_python_frame(line: str) -> str | None:
    match = _PYTHON_FRAME.match(line)
    if not match or _FRAMEWORK_PATH.search(match["path"]):
        return None
    name = match["path"].rsplit("/", 1)[-1]
    return f"{name}:{match['line']} in {match['func']}"


@dataclass
class _Block:
    """Lines that belong to one finding's first match, gathered as the log streams by."""

    finding: Finding
    lines: list[str]
    traceback: bool
    exception_line_seen: bool = False
    scanned: int = 0
    java_location: str | None = None
    python_location: str | None = None
    open: bool = True

    def feed(self, line: str) -> None:
        continuation = bool(_CONTINUATION.match(line))
        if not continuation:
            # Two unindented lines still belong to the block, once: the exception line that ends a Python
            # traceback, and the throwable log4j prints right after its message line (its frames follow).
            traceback_end = self.traceback and line.strip()
            throwable = self.scanned == 0 and _EXCEPTION_HEADLINE.match(line)
            if not self.exception_line_seen and (traceback_end or throwable):
                self.exception_line_seen = True
            else:
                self.open = False
                return
        self.scanned += 1
        if len(self.lines) < MAX_EVIDENCE_LINES:
            self.lines.append(line[:MAX_EVIDENCE_LINE_CHARS])
        if self.java_location is None:
            self.java_location = _user_java_frame(line)
        if python_frame := _user_python_frame(line):
            self.python_location = python_frame  # the innermost user frame is the last one
        if self.scanned >= MAX_BLOCK_LINES:
            self.open = False

    def close(self) -> None:
        self.open = False
        evidence = redact_lines(self.lines)
        self.finding.evidence = evidence
        self.finding.location = self.python_location or self.java_location
        self.finding.headline = redact(_summarise(self.lines))


def _summarise(lines: list[str]) -> str:
    """The line that best says what went wrong in a block."""
    first = strip_log_prefix(lines[0])
    if _TRACEBACK in first:
        exception = next((ln for ln in lines[1:] if ln.strip() and not ln[:1].isspace()), None)
        if exception:
            return exception.strip()[:MAX_EVIDENCE_LINE_CHARS]
    return first[:MAX_EVIDENCE_LINE_CHARS]


@dataclass
class LineAnalysis:
    """Findings and application ids of one log, filled as its lines stream by."""

    findings: list[Finding] = field(default_factory=list)
    application_ids: list[str] = field(default_factory=list)


BATCH_LINES = 512


@dataclass
class _Scan:
    """The state of one log's scan: findings so far, evidence blocks still collecting lines."""

    catalogue: Catalogue
    source: str
    source_weight: int
    result: LineAnalysis = field(default_factory=LineAnalysis)
    by_rule: dict[str, Finding] = field(default_factory=dict)
    open_blocks: list[_Block] = field(default_factory=list)
    line_no: int = 0

    def batch(self, lines: list[str]) -> None:
        prefilter = self.catalogue.prefilter
        # The common case: no block open and no hint anywhere in the batch, decided in C.
        if not self.open_blocks and not prefilter.always and not prefilter.hit("\n".join(lines).lower()):
            self.line_no += len(lines)
            return
        for line in lines:
            self.line_no += 1
            if self.open_blocks:
                for block in self.open_blocks:
                    block.feed(line)
                    if not block.open:
                        block.close()
                self.open_blocks = [b for b in self.open_blocks if b.open]
            if prefilter.hit(line.lower()):
                self._application_id(line)
                self._match(line, prefilter.filtered)
            if prefilter.always:
                self._match(line, prefilter.always)

    def _application_id(self, line: str) -> None:
        app = _APPLICATION_ID.search(line)
        if app and app[1] not in self.result.application_ids:
            self.result.application_ids.append(app[1])

    def _match(self, line: str, rules: tuple[Rule, ...]) -> None:
        for rule in rules:
            if not rule.matches(line):
                continue
            existing = self.by_rule.get(rule.id)
            if existing is not None:
                existing.count += 1
                continue
            finding = Finding(
                rule_id=rule.id,
                category=rule.category,
                kind=rule.kind,
                rank=rule.rank,
                severity=rule.severity,
                retryable=rule.retryable,
                requires_failure=rule.requires_failure,
                title=rule.title,
                source=self.source,
                source_weight=self.source_weight,
                line_no=self.line_no,
                headline="",
            )
            self.by_rule[rule.id] = finding
            self.result.findings.append(finding)
            self.open_blocks.append(
                _Block(finding=finding, lines=[line[:MAX_EVIDENCE_LINE_CHARS]], traceback=_TRACEBACK in line)
            )

    def finish(self) -> LineAnalysis:
        for block in self.open_blocks:
            block.close()
        self.open_blocks = []
        # Findings were appended as rules matched; keep them in line order.
        self.result.findings.sort(key=lambda f: f.line_no)
        return self.result


def analyse_lines(lines: Iterable[str], *, catalogue: Catalogue, source: str, source_weight: int = 1) -> LineAnalysis:
    """Match every rule against every line of one log.

    Lines are taken in batches; a literal prefilter (see :class:`~emr_triage.analysis.catalogue.Prefilter`)
    rules out, in C, the batches and lines no rule can match, so the cost is close to reading the log.

    Parameters
    ----------
    lines:
        The log's lines (e.g. from :func:`emr_triage.logs.reader.iter_log_lines`).
    catalogue:
        The rules.
    source:
        Where the lines come from (S3 URI or path), recorded on each finding.
    source_weight:
        How much this log counts when findings tie (driver-side logs weigh more than executors').

    Returns
    -------
    LineAnalysis
        One finding per rule that matched (its first match, with a count of all), in order of appearance.
    """
    scan = _Scan(catalogue=catalogue, source=source, source_weight=source_weight)
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH_LINES:
            scan.batch(batch)
            batch = []
    if batch:
        scan.batch(batch)
    return scan.finish()


_KIND_ORDER = {"cause": 0, "success": 1, "symptom": 2}


def _verdict_key(finding: Finding) -> tuple[int, int, int]:
    # Ties keep their order (sorted() is stable): within a log, earlier lines first; across logs, the
    # log analysed first (a step's own logs, then logs that arrive later). Success markers sort before
    # symptoms so that capping the list never drops the evidence that the job recovered.
    return (_KIND_ORDER[finding.kind], finding.rank, -finding.source_weight)


def succeeded(findings: Iterable[Finding]) -> bool:
    """Whether the logs show the application finishing successfully after every failure they show.

    A success marker (``Final app status: SUCCEEDED``, ``Step succeeded with exitCode 0`` ...) overrides
    earlier task failures, lost executors and ERROR lines: Spark retried and recovered. It does not
    override a failure outcome (a symptom) that comes after it in the same log, or that is in another log.
    """
    findings = list(findings)
    last_success: dict[str, int] = {}
    for f in findings:
        if f.kind == "success":
            last_success[f.source] = max(last_success.get(f.source, 0), f.line_no)
    if not last_success:
        return False
    return all(
        f.source in last_success and f.line_no < last_success[f.source] for f in findings if f.kind == "symptom"
    )


def merge_findings(existing: Iterable[Finding], new: Iterable[Finding]) -> list[Finding]:
    """Combine findings from several logs: one per (rule, log), best candidates first, capped.

    ``existing`` come before ``new`` among equals, so an incident's verdict only changes when a later
    log brings a better-ranked cause.
    """
    merged: dict[tuple[str, str], Finding] = {}
    for finding in [*existing, *new]:
        key = (finding.rule_id, finding.source)
        if key not in merged:
            merged[key] = finding
    return sorted(merged.values(), key=_verdict_key)[:MAX_FINDINGS_KEPT]


def diagnose(findings: list[Finding], catalogue: Catalogue, reads: Iterable[LogRead] = ()) -> Diagnosis:
    """Choose the root cause among findings and explain it.

    The verdict is the *cause* with the lowest rank (earliest in a failure chain: node lost < memory kill
    < ... < Python traceback), preferring driver-side logs, then the earliest line. If only symptoms were
    found, the verdict is ``other``; if nothing, ``no_failure``. A location found only in a symptom (the
    traceback of the action that triggered the failed job) is used when the cause has none.
    """
    reads = list(reads)
    partial_notes = [f"{r.source}: {note}" for r in reads if r.partial for note in r.notes]
    partial = any(r.partial for r in reads)
    from_logs = bool(reads)
    recovered = succeeded(findings)
    failed = any(f.kind == "symptom" for f in findings)
    ordered = (
        []
        if recovered
        else sorted(
            (f for f in findings if f.kind != "success" and (failed or not f.requires_failure)), key=_verdict_key
        )
    )
    if recovered:
        problems = sorted({f.title for f in findings if f.kind != "success"})
        return Diagnosis(
            category="no_failure",
            title="The application finished successfully",
            severity="low",
            summary="The logs show the application succeeding"
            + (f" after recovering from: {'; '.join(problems)}." if problems else "."),
            partial=partial,
            partial_notes=partial_notes,
            from_logs=from_logs,
        )
    if not ordered:
        return Diagnosis(
            category="no_failure",
            title="No failure signature found in the logs",
            severity="low",
            summary="The logs read show no known failure." if from_logs else "No logs were read.",
            partial=partial,
            partial_notes=partial_notes,
            from_logs=from_logs,
        )
    root = ordered[0]
    rule = catalogue.get(root.rule_id)
    location = root.location or next((f.location for f in ordered if f.location), None)
    # One line per other rule: the same rule in several logs is one symptom seen several times.
    secondary: dict[str, SecondaryFinding] = {}
    for f in ordered[1:]:
        if f.rule_id == root.rule_id:
            continue
        if f.rule_id in secondary:
            secondary[f.rule_id].count += f.count
        else:
            secondary[f.rule_id] = SecondaryFinding(
                rule_id=f.rule_id,
                category=f.category,
                title=f.title,
                source=f.source,
                line_no=f.line_no,
                count=f.count,
            )
    if root.kind == "symptom":
        category, title = "other", "The job failed, but no known signature explains why"
        explanation = "The logs show that the application failed, not why. " + (rule.explanation if rule else "")
        remediation = "Read the evidence and the driver's log (YARN container ..._000001 stderr)."
        retryable = None
    else:
        category, title = root.category, root.title
        explanation = rule.explanation if rule else ""
        remediation = rule.remediation if rule else ""
        retryable = root.retryable
    return Diagnosis(
        category=category,
        rule_id=root.rule_id,
        title=title,
        severity=root.severity,
        retryable=retryable,
        summary=root.headline,
        explanation=explanation.strip(),
        remediation=remediation.strip(),
        headline=root.headline,
        evidence=root.evidence,
        source=root.source,
        line_no=root.line_no,
        location=location,
        fingerprint=fingerprint(root.rule_id, root.headline, location),
        secondary=list(secondary.values()),
        partial=partial,
        partial_notes=partial_notes,
        from_logs=from_logs,
    )


def build_report(analyses: Iterable[tuple[LineAnalysis, LogRead]]) -> AnalysisReport:
    """Collect the per-log results of several logs into one report."""
    report = AnalysisReport()
    for analysis, read in analyses:
        report.findings = merge_findings(report.findings, analysis.findings)
        report.reads.append(read)
        for app in analysis.application_ids:
            if app not in report.application_ids:
                report.application_ids.append(app)
    return report
