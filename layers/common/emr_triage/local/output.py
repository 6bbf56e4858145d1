"""How the command line shows replays, incidents and diagnoses in a terminal."""

from __future__ import annotations

import json
import textwrap
from typing import TextIO

from emr_triage.local.replay import EventReport
from emr_triage.models.analysis import Diagnosis
from emr_triage.models.incident import Incident
from emr_triage.notify.render import render_terminal

WIDTH = 100


def _wrap(label: str, text: str, out: TextIO) -> None:
    lines = textwrap.wrap(text, WIDTH - 16, break_on_hyphens=False, break_long_words=False) or [""]
    out.write(f"  {label:<12}  {lines[0]}\n")
    for line in lines[1:]:
        out.write(f"  {'':<12}  {line}\n")


def _changes(before: str, after: str) -> list[str]:
    """The lines of a rendered message that an edit added (+) or removed (-)."""
    import difflib

    diff = difflib.ndiff(before.splitlines(), after.splitlines())
    return [line for line in diff if line.startswith(("+ ", "- "))]


def print_event_report(
    report: EventReport,
    out: TextIO,
    *,
    show_json: bool,
    verbose: bool = False,
    shown: dict[str, str] | None = None,
) -> None:
    """Print what happened to one event. ``shown`` maps a Slack message ts to its last rendering, so an
    edit prints only what changed."""
    shown = shown if shown is not None else {}
    out.write(f"\n▶ {report.item.path.name} · {report.label}\n")
    if report.not_delivered:
        out.write(f"  · not delivered: {report.not_delivered}\n")
    for invocation in report.invocations:
        out.write(f"  → {invocation.function} (rule {invocation.rule})\n")
        if invocation.error:
            out.write(
                f"  ✗ failed: {invocation.error}\n"
                "    (in Lambda the event would be retried twice, then sent to the dead-letter queue)\n"
            )
            continue
        outcome = invocation.outcome or {}
        if verbose and invocation.output.strip():
            out.write(textwrap.indent(invocation.output.rstrip(), "    | ") + "\n")
        mark = "✗" if outcome.get("action") == "rejected" else "✓"
        incident = f" {outcome['incident_id']}" if outcome.get("incident_id") else ""
        out.write(f"  {mark} {outcome.get('action')}{incident}: {outcome.get('detail')}\n")
        if outcome.get("slack") not in (None, "none"):
            out.write(f"    Slack: {outcome['slack']}\n")
    if report.expectation_failure:
        out.write(f"  ✗ scenario expectation not met: {report.expectation_failure}\n")
    for sent in report.slack:
        rendered = render_terminal(sent.message, sent.channel, WIDTH - 4)
        previous = shown.get(sent.ts)
        shown[sent.ts] = rendered
        if sent.action == "update" and previous is not None and not show_json:
            out.write(f"\n  Slack message {sent.ts} edited in place (chat.update):\n")
            for line in _changes(previous, rendered):
                out.write(f"    {line}\n")
            continue
        verb = "posts" if sent.action == "post" else "edits in place (chat.update)"
        out.write(f"\n  The Slack message emr-triage {verb}:\n")
        out.write(textwrap.indent(rendered, "  ") + "\n")
        if show_json:
            out.write("\n  Block Kit JSON:\n")
            payload = {"channel": sent.channel, "text": sent.message.text, "blocks": sent.message.blocks}
            out.write(textwrap.indent(json.dumps(payload, indent=2, ensure_ascii=False), "    ") + "\n")


def print_diagnosis(diagnosis: Diagnosis, out: TextIO) -> None:
    if diagnosis.category == "no_failure":
        _wrap("verdict", f"no_failure: {diagnosis.summary}", out)
    else:
        fix = {
            True: "retry likely to help",
            False: "needs a code, data or config fix",
            None: "cause unclear",
        }[diagnosis.retryable]
        _wrap("verdict", f"{diagnosis.category}: {diagnosis.title} ({diagnosis.severity}, {fix})", out)
        _wrap("summary", diagnosis.summary, out)
        if diagnosis.location:
            _wrap("where", diagnosis.location, out)
        if diagnosis.source:
            _wrap("evidence", f"{diagnosis.source} line {diagnosis.line_no}", out)
            for line in diagnosis.evidence[:8]:
                out.write(f"  {'':<12}  | {line[: WIDTH - 20]}\n")
        if diagnosis.remediation:
            _wrap("what to do", diagnosis.remediation, out)
        if diagnosis.fingerprint:
            _wrap("fingerprint", diagnosis.fingerprint, out)
    if diagnosis.secondary:
        _wrap(
            "also seen",
            "; ".join(f"{s.rule_id}{f' ×{s.count}' if s.count > 1 else ''}" for s in diagnosis.secondary),
            out,
        )
    for note in diagnosis.partial_notes:
        _wrap("partial", note, out)


def print_incident(incident: Incident, table: str, out: TextIO, *, show_json: bool) -> None:
    out.write(f"\nIncident {incident.incident_id}  (DynamoDB table {table}, version {incident.version})\n")
    _wrap("status", f"{incident.status} · {incident.kind} {incident.state} · severity {incident.severity}", out)
    if incident.cluster_id:
        _wrap(
            "cluster",
            f"{incident.cluster_name or '?'} ({incident.cluster_id}) · {incident.release_label or '?'}",
            out,
        )
    if incident.step_id:
        _wrap(
            "step",
            f"{incident.step_name or '?'} ({incident.step_id}) · action on failure {incident.action_on_failure}",
            out,
        )
    if incident.job_run_id:
        _wrap(
            "job run",
            f"{incident.job_run_name or '?'} ({incident.application_id}/{incident.job_run_id})",
            out,
        )
    if incident.emr_reason:
        _wrap("EMR says", incident.emr_reason, out)
    if incident.diagnosis:
        print_diagnosis(incident.diagnosis, out)
    else:
        _wrap("verdict", "awaiting logs", out)
    for read in incident.logs_analysed:
        partial = " (partial)" if read.partial else ""
        _wrap("log read", f"{read.source}: {read.lines} lines, {read.bytes_read:,} bytes{partial}", out)
    if incident.application_ids:
        _wrap("YARN apps", ", ".join(incident.application_ids), out)
    if incident.children:
        _wrap("folded", "; ".join(incident.children), out)
    for problem in incident.lookup_errors:
        _wrap("note", problem, out)
    if incident.slack:
        _wrap("slack", f"channel {incident.slack.channel}, message ts {incident.slack.ts}", out)
    for entry in sorted(incident.timeline, key=lambda e: e.at):
        _wrap("timeline", f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.what}", out)
    if show_json:
        out.write("\n  Stored item (JSON):\n")
        out.write(textwrap.indent(incident.model_dump_json(indent=2), "    ") + "\n")
