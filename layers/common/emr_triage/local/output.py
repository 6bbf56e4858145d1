"""How the command line shows replays, incidents and diagnoses in a terminal."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from emr_triage.alerts.message import neutralise
from emr_triage.alerts.render import render_terminal
from emr_triage.models.analysis import AnalysisReport, Diagnosis, ExitCode
from emr_triage.terminal import json_text, terminal_writer
from emr_triage.terminal import style as style

if TYPE_CHECKING:
    from emr_triage.local.items import EventReport
    from emr_triage.models.incident import Incident

WIDTH = 100


def _wrap(label: str, text: str, out: TextIO) -> None:
    # Names and log text are untrusted: no control character (ANSI or OSC escapes) reaches the terminal.
    text = neutralise(text)
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
    out = terminal_writer(out)
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
        if sent.action == "upload":
            out.write(f"\n  File uploaded in the thread (files_upload_v2): {sent.message.text}\n")
            continue
        if sent.action == "ephemeral":
            out.write(f"\n  Only {sent.ts} sees (chat.postEphemeral): {sent.message.text}\n")
            continue
        if sent.action == "reply":
            out.write("\n  Its reply in the thread:\n")
            out.write(textwrap.indent(render_terminal(sent.message, sent.channel, WIDTH - 4), "  ") + "\n")
            continue
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
            out.write(textwrap.indent(json_text(payload), "    ") + "\n")


def print_diagnosis(diagnosis: Diagnosis, out: TextIO) -> None:
    out = terminal_writer(out)
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
    out = terminal_writer(out)
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
    if incident.yarn_application_id:
        _wrap(
            "application", f"{incident.spark_app_name or '?'} ({incident.yarn_application_id}) · not an EMR step", out
        )
    if incident.virtual_cluster_id:
        on = f" · EKS {incident.eks_namespace}" if incident.eks_namespace else ""
        _wrap("virtual cluster", f"{incident.virtual_cluster_name or '?'} ({incident.virtual_cluster_id}){on}", out)
    if incident.job_run_id:
        owner = incident.application_id or incident.virtual_cluster_id
        _wrap("job run", f"{incident.job_run_name or '?'} ({owner}/{incident.job_run_id})", out)
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
    if incident.muted_under:
        _wrap("slack", f"no message of its own: a muted failure, alerted in the thread of {incident.muted_under}", out)
    if incident.acknowledged_by and incident.acknowledged_at:
        _wrap("acknowledged", f"by {incident.acknowledged_by} at {incident.acknowledged_at:%Y-%m-%d %H:%M:%S}", out)
    if incident.mute is not None:
        _wrap(
            "muted",
            f"by {incident.mute.by} until {incident.mute.until:%Y-%m-%d %H:%M:%S} ({incident.mute.job_key})",
            out,
        )
    if incident.resolved_by_user:
        _wrap("resolved", f"by {incident.resolved_by_user} from Slack", out)
    for entry in sorted(incident.timeline, key=lambda e: e.at):
        _wrap("timeline", f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.what}", out)
    if show_json:
        out.write("\n  Stored item (JSON):\n")
        out.write(textwrap.indent(json_text(incident.model_dump(mode="json")), "    ") + "\n")


# ── emr-triage analyze: the report, its JSON, the progress bar ─────────────────────────────────────

# Placeholders that only the TerminalWriter turns into colours (after it has sanitised the text around them).
_RESET, _BOLD, _DIM, _RED, _YELLOW, _GREEN = (style(code) for code in ("0", "1", "2", "31", "33", "32"))
# Wide enough for a step log (…/j-…/steps/s-…/stderr.gz) or a container log (…/container_…/stderr.gz).
SOURCE_WIDTH = 52


@dataclass(frozen=True)
class Palette:
    """ANSI styles, or nothing when colour is off (not a terminal, NO_COLOR, --color never)."""

    enabled: bool = False

    def paint(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        return "".join(styles) + text + _RESET

    def verdict(self, diagnosis: Diagnosis) -> str:
        """Green when nothing failed, red for a critical or high severity failure, yellow otherwise."""
        if diagnosis.category == "no_failure":
            return _GREEN
        return _RED if diagnosis.severity in ("critical", "high") else _YELLOW


def short_source(source: str, width: int = SOURCE_WIDTH) -> str:
    """A log's name short enough to precede a line of text: the bucket (for S3) and as many trailing
    path components as fit in ``width``, the rest replaced by ``…``. The file name and its folder are
    always kept."""
    if len(source) <= width:
        return source
    head = ""
    rest = source
    if "://" in source:
        scheme, _, remainder = source.partition("://")
        bucket, _, rest = remainder.partition("/")
        head = f"{scheme}://{bucket}/"
    parts = rest.split("/")
    kept = parts[-2:]  # the file and its folder (a container or step id) even when that is longer
    for part in reversed(parts[:-2]):
        if len(head) + len("…/") + len("/".join([part, *kept])) > width:
            break
        kept.insert(0, part)
    if len(kept) == len(parts):
        return source
    return f"{head}…/{'/'.join(kept)}"


def _megabytes(count: int) -> str:
    value = count / 1_000_000
    return f"{value:,.2f} MB" if value < 10 else f"{value:,.1f} MB" if value < 1000 else f"{value:,.0f} MB"


def _fix(retryable: bool | None) -> str:
    return {True: "retry likely to help", False: "needs a code, data or config fix", None: "cause unclear"}[retryable]


def _exit_code_words(code: ExitCode) -> str:
    name = f"exit code {code.code}" if code.code is not None else f"signal {code.signal}"
    times = f" (×{code.count})" if code.count > 1 else ""
    return f"{name}: {code.meaning}{times}"


def _block(label: str, text: str, out: TextIO, palette: Palette, style: tuple[str, ...] = ()) -> None:
    """A labelled paragraph, wrapped to the report's width (colour applied after wrapping)."""
    lines = textwrap.wrap(text, WIDTH - 16, break_on_hyphens=False, break_long_words=False) or [""]
    out.write(f"  {palette.paint(label, _BOLD)}{'':<{12 - len(label)}}  {palette.paint(lines[0], *style)}\n")
    for line in lines[1:]:
        out.write(f"  {'':<12}  {palette.paint(line, *style)}\n")


def print_analysis(
    diagnosis: Diagnosis,
    out: TextIO,
    *,
    logs_read: int,
    logs_unreadable: int = 0,
    catalogue_version: str,
    elapsed: float,
    color: bool = False,
) -> None:
    """Print ``emr-triage analyze``'s readable report: what was read, the verdict and its evidence.

    Parameters
    ----------
    diagnosis:
        The verdict for all the logs.
    out:
        Where to write.
    logs_read, logs_unreadable:
        How many logs were read, and how many could not be (their reasons are in the partial notes).
    catalogue_version:
        The version of the rules in force (ours, plus the user's files).
    elapsed:
        Seconds the analysis took.
    color:
        Use ANSI colours (the caller decides: a terminal, NO_COLOR, ``--color``).
    """
    out = terminal_writer(out)
    palette = Palette(color)
    skipped = f" ({logs_unreadable} could not be read)" if logs_unreadable else ""
    out.write(
        f"Analysed {logs_read} log{'s' if logs_read != 1 else ''}{skipped} · {_megabytes(diagnosis.bytes_scanned)} "
        f"scanned in {elapsed:.1f} s · catalogue {catalogue_version}\n\n"
    )
    style = (_BOLD, palette.verdict(diagnosis))
    _block("verdict", f"{diagnosis.category}: {diagnosis.title}", out, palette, style)
    if diagnosis.category == "no_failure":
        _block("", f"confidence {diagnosis.confidence:.2f}", out, palette)
    else:
        _block(
            "",
            f"{diagnosis.severity} severity · {_fix(diagnosis.retryable)} · confidence {diagnosis.confidence:.2f}",
            out,
            palette,
        )
    _block("summary", diagnosis.summary, out, palette)
    if diagnosis.location:
        _block("where", diagnosis.location, out, palette)
    if diagnosis.extract:
        out.write(f"  {palette.paint('evidence', _BOLD)}\n")
        for line in diagnosis.extract:
            where = palette.paint(f"{short_source(line.source)}:{line.line_no}", _DIM)
            repeat = f"  ×{line.repeat}" if line.repeat > 1 else ""
            out.write(f"    {where}{repeat}  {line.text}\n")
    elif diagnosis.source and diagnosis.line_no is not None:
        out.write(f"  {palette.paint('evidence', _BOLD)}\n")
        for offset, text in enumerate(diagnosis.evidence):
            where = palette.paint(f"{short_source(diagnosis.source)}:{diagnosis.line_no + offset}", _DIM)
            out.write(f"    {where}  {text}\n")
    if diagnosis.remediation:
        _block("what to do", diagnosis.remediation, out, palette)
    if diagnosis.explanation:
        _block("why", diagnosis.explanation, out, palette)
    for index, code in enumerate(diagnosis.exit_codes):
        _block("exit codes" if index == 0 else "", _exit_code_words(code), out, palette)
        out.write(f"  {'':<12}    {palette.paint(f'{short_source(code.source)}:{code.line_no}', _DIM)}\n")
    for index, seen in enumerate(diagnosis.secondary):
        times = f" ×{seen.count}" if seen.count > 1 else ""
        _block("also seen" if index == 0 else "", f"{seen.category}: {seen.title}{times}", out, palette)
    if diagnosis.fingerprint:
        _block("fingerprint", diagnosis.fingerprint, out, palette, (_DIM,))
    for index, note in enumerate(diagnosis.partial_notes):
        _block("partial" if index == 0 else "", note, out, palette, (_YELLOW,))


def analysis_json(
    diagnosis: Diagnosis, report: AnalysisReport, *, catalogue_version: str, outcome: str = "unknown"
) -> dict[str, Any]:
    """``emr-triage analyze --json``: the verdict, its evidence and what was read, as one JSON object.

    ``file``/``line`` name where a line is (``source``/``line_no`` in the models); ``null`` stands for a
    value the verdict does not have (no user frame, no evidence for ``no_failure`` ...).
    """
    evidence = [
        {
            "file": diagnosis.source,
            "line": diagnosis.line_no + offset if diagnosis.line_no is not None else None,
            "text": text,
        }
        for offset, text in enumerate(diagnosis.evidence)
    ]
    return {
        "category": diagnosis.category,
        "rule_id": diagnosis.rule_id,
        "title": diagnosis.title,
        "severity": diagnosis.severity,
        "retryable": diagnosis.retryable,
        "confidence": diagnosis.confidence,
        "basis": diagnosis.root_kind or "none",
        "outcome": outcome,
        "summary": diagnosis.summary,
        "explanation": diagnosis.explanation or None,
        "remediation": diagnosis.remediation or None,
        "user_frame": diagnosis.location,
        "fingerprint": diagnosis.fingerprint,
        "exit_codes": [
            {
                "code": c.code,
                "signal": c.signal,
                "meaning": c.meaning,
                "file": c.source,
                "line": c.line_no,
                "count": c.count,
            }
            for c in diagnosis.exit_codes
        ],
        "secondary": list(dict.fromkeys(s.category for s in diagnosis.secondary)),
        "secondary_findings": [
            {
                "rule_id": s.rule_id,
                "category": s.category,
                "title": s.title,
                "file": s.source,
                "line": s.line_no,
                "count": s.count,
            }
            for s in diagnosis.secondary
        ],
        "evidence": evidence,
        "extract": [
            {"file": e.source, "line": e.line_no, "text": e.text, "repeat": e.repeat} for e in diagnosis.extract
        ],
        "bytes_scanned": diagnosis.bytes_scanned,
        "partial": diagnosis.partial,
        "partial_notes": diagnosis.partial_notes,
        "catalogue_version": catalogue_version,
        "application_ids": report.application_ids,
        "inputs": [
            {
                "file": r.source,
                "bytes_read": r.bytes_read,
                "bytes_scanned": r.bytes_scanned,
                "lines": r.lines,
                "partial": r.partial,
                "notes": r.notes,
            }
            for r in report.reads
        ],
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


class ProgressBar:
    """One self-rewriting line on a terminal: percent of the raw input read, MB/s and time left.

    Wrap each input's chunks with :meth:`track` (the bytes are counted as the analyser consumes them, in
    its read-ahead thread); call :meth:`end_input` when an input is done (it may stop early, e.g. on
    binary data) and :meth:`close` at the end, which erases the line.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.1,
        width: int = 24,
    ) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._clock = clock
        self._interval = interval
        self._width = width
        self._started = clock()
        self._shown_at: float | None = None
        self._done = 0  # bytes of finished inputs (their full size) plus what the current one has read
        self._base = 0
        self._drawn = False

    def track(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._done += len(chunk)
            self._render()
            yield chunk

    def end_input(self, size: int) -> None:
        self._base += size
        self._done = max(self._done, self._base)
        self._render(force=True)

    def _render(self, force: bool = False) -> None:
        now = self._clock()
        if not force and self._shown_at is not None and now - self._shown_at < self._interval:
            return
        self._shown_at = now
        done = min(self._done, self._total)
        fraction = done / self._total
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        eta = _duration((self._total - done) / rate) if rate > 0 else "?"
        filled = int(fraction * self._width)
        bar = "█" * filled + "░" * (self._width - filled)
        self._stream.write(
            f"\r  analysing {bar} {fraction:4.0%}  {_megabytes(done)} of {_megabytes(self._total)}"
            f"  {rate / 1_000_000:,.1f} MB/s  ETA {eta}\x1b[K"
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
