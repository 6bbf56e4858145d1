"""Choose the root cause among the findings of one or more logs, and explain it.

Pure functions: findings in, a :class:`~emr_triage.models.analysis.Diagnosis` out. The CLI (``analyze``)
and the incident service both come here, so the same logs give the same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emr_triage.analysis.catalogue import Catalogue
from emr_triage.analysis.extract import build_extract
from emr_triage.analysis.findings import MAX_EXIT_CODES, LineAnalysis
from emr_triage.analysis.text import fingerprint
from emr_triage.models.analysis import AnalysisReport, Diagnosis, ExitCode, Finding, LogRead, SecondaryFinding

MAX_FINDINGS_KEPT = 12


_KIND_ORDER = {"cause": 0, "success": 1, "symptom": 2}


def _verdict_key(finding: Finding) -> tuple[int, int, int]:
    # Ties keep their order (sorted() is stable): within a log, earlier lines first; across logs, the
    # log analysed first (a step's own logs, then logs that arrive later). Success markers sort before
    # symptoms so that capping the list never drops the evidence that the job recovered.
    return (_KIND_ORDER[finding.kind], finding.rank, -finding.source_weight)


def _last(finding: Finding) -> int:
    return finding.last_line_no or finding.line_no


def succeeded(findings: Iterable[Finding]) -> bool:
    """Whether the logs show the application finishing successfully after every failure they show.

    A success marker (``Final app status: SUCCEEDED``, ``Step succeeded with exitCode 0``, a driver's
    ``Job 6 finished``) overrides the task failures, lost executors and ERROR lines before it in its log:
    Spark retried and recovered. It does not override anything failing after it in the same log, nor a
    failure outcome (a symptom) in another log.
    """
    findings = list(findings)
    last_success: dict[str, int] = {}
    for f in findings:
        if f.kind == "success":
            last_success[f.source] = max(last_success.get(f.source, 0), _last(f))
    if not last_success:
        return False
    for f in findings:
        if f.kind == "success":
            continue
        if f.source in last_success:
            if _last(f) > last_success[f.source]:
                return False
        elif f.kind == "symptom":
            return False
    return True


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


def merge_exit_codes(existing: Iterable[ExitCode], new: Iterable[ExitCode]) -> list[ExitCode]:
    """Exit codes of several logs: one entry per code or signal (first seen), counts added up, capped."""
    merged: dict[tuple[int | None, str | None], ExitCode] = {}
    for seen in [*existing, *new]:
        key = (seen.code, seen.signal)
        if key in merged:
            merged[key] = merged[key].model_copy(update={"count": merged[key].count + seen.count})
        elif len(merged) < MAX_EXIT_CODES:
            merged[key] = seen
    return list(merged.values())


def attachment_text(diagnosis: Diagnosis, findings: Iterable[Finding]) -> str:
    """The full redacted extract, as a text file to attach to the alert: the verdict, then every finding's
    block (the lines before it, its headline and every line gathered with it), each line with its file
    and number, best candidates first. Every line in it was redacted when it was found."""
    out = [
        f"emr-triage diagnosis: {diagnosis.category}: {diagnosis.title}",
        f"summary: {diagnosis.summary}",
    ]
    if diagnosis.location:
        out.append(f"where in your code: {diagnosis.location}")
    out.extend(
        f"exit code {e.code if e.code is not None else 'SIG' + (e.signal or '')}: {e.meaning}"
        for e in diagnosis.exit_codes
    )
    out.extend(f"partial: {note}" for note in diagnosis.partial_notes)
    for finding in sorted(findings, key=_verdict_key):
        where = f"{finding.source}{f' ({finding.section})' if finding.section else ''}"
        times = f" ×{finding.count}" if finding.count > 1 else ""
        out += ["", f"== {finding.title} [{finding.rule_id}, {finding.kind}]{times}", f"   {where}"]
        first = finding.line_no - len(finding.context_before)
        out.extend(f"{first + i:>8}  {text}" for i, text in enumerate(finding.context_before))
        out.extend(
            f"{finding.line_no + i:>8}{'>' if i == 0 else ' '} {text}" for i, text in enumerate(finding.evidence)
        )
    return "\n".join(out) + "\n"


def _counts(finding: Finding, failed: bool) -> bool:
    """Whether a finding can be the verdict.

    When the logs show the job failing (a symptom), every cause counts. Otherwise, lines that also appear
    in healthy runs (``requires_failure``) count only as bare text with no log record around them (a stack
    pasted on its own), and exceptions a WARN record printed (caught, then logged) do not.
    """
    if finding.kind == "success":
        return False
    if failed or finding.kind == "symptom":
        return True
    if finding.quiet:
        return False
    return not finding.requires_failure or finding.level is None


def _confidence(root: Finding | None, failed: bool, success: bool, partial: bool) -> float:
    if root is None:
        value = 0.9 if success else 0.6
    elif root.kind == "symptom":
        value = 0.3
    elif failed:
        value = 0.9
    elif root.requires_failure:
        value = 0.45  # evidence of a kind healthy runs also show, and no sign of the job failing
    else:
        value = 0.75 if root.rank <= 30 else 0.6
    return round(value - (0.1 if partial else 0.0), 2)


def diagnose(
    findings: list[Finding],
    catalogue: Catalogue,
    reads: Iterable[LogRead] = (),
    exit_codes: Iterable[ExitCode] = (),
) -> Diagnosis:
    """Choose the root cause among findings and explain it.

    The verdict is the *cause* with the lowest rank (earliest in a failure chain: node lost < memory kill
    < ... < Python traceback), preferring driver-side logs, then the earliest line. If only symptoms were
    found, the verdict is ``other``; if nothing, or a success marker after every failure, ``no_failure``.
    Causes marked ``requires_failure`` count only when a symptom shows the job failing. A location found
    only in a symptom (the traceback of the action that triggered the failed job) is used when the cause
    has none.
    """
    reads = list(reads)
    partial_notes = [f"{r.source}: {note}" for r in reads if r.partial for note in r.notes]
    partial = any(r.partial for r in reads)
    from_logs = bool(reads)
    common: dict[str, Any] = {
        "partial": partial,
        "partial_notes": partial_notes,
        "from_logs": from_logs,
        "exit_codes": list(exit_codes),
        "bytes_scanned": sum(r.bytes_scanned for r in reads),
    }
    recovered = succeeded(findings)
    failed = any(f.kind == "symptom" for f in findings)
    if recovered:
        problems = sorted({f.title for f in findings if f.kind != "success"})
        return Diagnosis(
            category="no_failure",
            title="The application finished successfully",
            severity="low",
            summary="The logs show the application succeeding"
            + (f" after recovering from: {'; '.join(problems)}." if problems else "."),
            confidence=_confidence(None, failed, True, partial),
            **common,
        )
    ordered = sorted((f for f in findings if _counts(f, failed)), key=_verdict_key)
    if not ordered:
        return Diagnosis(
            category="no_failure",
            title="No failure signature found in the logs",
            severity="low",
            summary="The logs read show no known failure." if from_logs else "No logs were read.",
            confidence=_confidence(None, failed, False, partial) if from_logs else 0.0,
            **common,
        )
    root = ordered[0]
    rule = catalogue.get(root.rule_id)
    location = root.location or next((f.location for f in ordered if f.location), None)
    # One line per thing said: the same rule in several logs, or rules with the same title (a traceback
    # and its headless tail), is one finding seen several times.
    secondary: dict[tuple[str, str], SecondaryFinding] = {}
    for f in ordered[1:]:
        if f.rule_id == root.rule_id or (f.category == root.category and root.kind == "cause"):
            continue  # the verdict itself, said by another log or in other words
        key = (f.category, f.title)
        if key in secondary:
            seen = secondary[key]
            # The same thing said by a second rule in the same log (a traceback and its frames, a kill and
            # its exit status) is not a second occurrence; the same rule in another log is.
            if seen.rule_id == f.rule_id or seen.source != f.source:
                seen.count += f.count
        else:
            secondary[key] = SecondaryFinding(
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
        confidence=_confidence(root, failed, False, partial),
        extract=build_extract(
            [root, *(f for f in ordered[1:] if f.rule_id in {s.rule_id for s in secondary.values()})]
        ),
        **common,
    )


def build_report(analyses: Iterable[tuple[LineAnalysis, LogRead]]) -> AnalysisReport:
    """Collect the per-log results of several logs into one report."""
    report = AnalysisReport()
    for analysis, read in analyses:
        report.findings = merge_findings(report.findings, analysis.findings)
        report.exit_codes = merge_exit_codes(report.exit_codes, analysis.exit_codes)
        report.reads.append(read)
        for app in analysis.application_ids:
            if app not in report.application_ids:
                report.application_ids.append(app)
    return report
