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
from emr_triage.models.analysis import (
    AnalysisReport,
    Diagnosis,
    ExitCode,
    Finding,
    KnownOutcome,
    LogRead,
    SecondaryFinding,
)

MAX_FINDINGS_KEPT = 12


_KIND_ORDER = {"cause": 0, "success": 1, "symptom": 2}


def _last(finding: Finding) -> int:
    return finding.last_line_no or finding.line_no


def succeeded(findings: Iterable[Finding], interactive: frozenset[str] = frozenset()) -> bool:
    """Whether the logs show the application finishing successfully after every failure they show.

    A success marker (``Final app status: SUCCEEDED``, ``Step succeeded with exitCode 0``, a driver's
    ``Job 6 finished``) overrides the task failures, lost executors and ERROR lines before it in its log:
    Spark retried and recovered. It does not override a failure after it in the same log, nor a failure
    outcome (a symptom) in another log. Lines that healthy runs print too (lost executors, fetch failures,
    network blips, a handled exception) never override it, wherever they are: executors are lost and
    connections reset while an application shuts down. In an interactive session's log (``interactive``:
    their sources), a statement's failure is not recovered from by a later statement's success.
    """
    findings = list(findings)
    last_success: dict[str, int] = {}
    for f in findings:
        if f.kind == "success":
            last_success[f.source] = max(last_success.get(f.source, 0), _last(f))
    if not last_success:
        return False
    for f in findings:
        if f.kind == "success" or f.requires_failure or f.quiet:
            continue
        if f.source in last_success:
            if _last(f) > last_success[f.source] or f.source in interactive:
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


def _verdict_key(finding: Finding) -> tuple[int, int, int, int]:
    # Ties keep their order (sorted() is stable): within a log, earlier lines first; across logs, the
    # log analysed first (a step's own logs, then logs that arrive later). Success markers sort before
    # symptoms so that capping the list never drops the evidence that the job recovered. An exception a
    # WARN record printed (caught and logged) comes after everything that was not handled.
    return (int(finding.quiet), _KIND_ORDER[finding.kind], finding.rank, -finding.source_weight)


def _is_catch_all(catalogue: Catalogue, finding: Finding) -> bool:
    rule = catalogue.get(finding.rule_id)
    return rule is not None and rule.fallback


def _confidence(root: Finding | None, failed: bool, shown: bool, partial: bool) -> float:
    """How sure the verdict is (the calibration table of ``make accuracy`` checks these against the share
    of verdicts that were right): ``failed``, the run is known or shown to have failed; ``shown``, for
    ``no_failure``, the logs show it succeeding."""
    if root is None:
        value = 0.9 if shown else (0.2 if failed else 0.6)
    elif root.quiet:
        value = 0.35  # only a handled exception, in a run known to have failed
    elif root.kind == "symptom":
        value = 0.8 if root.category == "app_killed_or_am_failed" else 0.75
    elif root.requires_failure:
        value = 0.75 if failed else 0.7  # lines healthy runs print too
    elif failed:
        value = 0.9
    else:
        value = 0.8 if root.rank <= 30 else 0.7
    return round(value - (0.1 if partial else 0.0), 2)


def diagnose(
    findings: list[Finding],
    catalogue: Catalogue,
    reads: Iterable[LogRead] = (),
    exit_codes: Iterable[ExitCode] = (),
    outcome: KnownOutcome = "unknown",
) -> Diagnosis:
    """Choose the root cause among findings and explain it.

    Parameters
    ----------
    findings, reads, exit_codes:
        What the logs showed (merged over every log read), and what was read of them.
    catalogue:
        The rules the findings came from (for the explanation and remediation).
    outcome:
        What is known of the run besides its logs: ``failed`` (EMR's state, the final status), ``succeeded``
        or ``unknown``. A run known to have succeeded is ``no_failure``. Otherwise, unless an unknown run's
        logs show it succeeding after every failure (:func:`succeeded`), the verdict is the most specific
        finding: the *cause* with the lowest rank (earliest in a failure chain: node lost < memory kill <
        ... < Python traceback), preferring driver-side logs, then the earliest line; lines that healthy
        runs print too (``requires_failure``) count, with a confidence that says so; an exception a WARN
        record printed (handled) counts only in a run known or shown to have failed. With only symptoms,
        the verdict is ``app_killed_or_am_failed`` when they are YARN's or the ApplicationMaster's words
        that the application failed, else ``other`` (an error no rule covers). A location found only in a
        symptom (the traceback of the action that triggered the failed job) is used when the cause has
        none.

    Returns
    -------
    Diagnosis
        The verdict with its evidence, the other findings and a confidence.
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
    interactive = frozenset(r.source for r in reads if r.interactive)
    if outcome == "succeeded" or (outcome == "unknown" and succeeded(findings, interactive)):
        problems = sorted({f.title for f in findings if f.kind != "success"})
        return Diagnosis(
            category="no_failure",
            title="The application finished successfully",
            severity="low",
            summary=("The run succeeded" if outcome == "succeeded" else "The logs show the application succeeding")
            + (f" after recovering from: {'; '.join(problems)}." if problems else "."),
            confidence=_confidence(None, False, True, partial),
            **common,
        )
    # (a symptom healthy runs print too, such as an exception no rule knows, does not show a failure)
    symptoms = any(f.kind == "symptom" and not f.quiet and not f.requires_failure for f in findings)
    failed = outcome == "failed" or symptoms
    ordered = sorted(
        (f for f in findings if f.kind != "success" and (failed or not f.quiet)),
        key=_verdict_key,
    )
    if not ordered:
        return Diagnosis(
            category="no_failure",
            title="No failure signature found in the logs",
            severity="low",
            summary="The logs read show no known failure." if from_logs else "No logs were read.",
            confidence=_confidence(None, outcome == "failed", False, partial) if from_logs else 0.0,
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
        if root.kind == "cause" and f.kind == "symptom" and _is_catch_all(catalogue, f):
            continue  # an error no rule knows, next to a cause that explains it: its wrapper, or noise
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
    explanation = rule.explanation if rule else ""
    remediation = rule.remediation if rule else ""
    summary = root.headline
    category, title, retryable = root.category, root.title, root.retryable
    if root.kind == "symptom" and root.category == "app_killed_or_am_failed":
        title = f"{root.title}; the logs read do not say why"
    elif root.kind == "symptom":
        category, title = "other", "The job failed with an error no known signature covers"
        # The deepest cause in the chain says best what failed (a wrapper's "Caused by: ..." at the bottom).
        deepest = next((line for line in reversed(root.evidence) if line.startswith("Caused by: ")), None)
        summary = deepest.removeprefix("Caused by: ").strip() if deepest else summary
        explanation = "The logs show that the application failed and the error it failed with. " + explanation
        remediation = "Read the error in the evidence and the driver's log (YARN container ..._000001 stderr)."
    return Diagnosis(
        category=category,
        rule_id=root.rule_id,
        title=title,
        severity=root.severity,
        retryable=retryable,
        summary=summary,
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
        root_kind=root.kind,
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
