"""A digest's figures in words: the Slack message of the weekly digest, and the same lines for the
terminal (``emr-triage incidents stats``). Pure: no I/O; job names and titles are escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from emr_triage.alerts.message import CONTEXT_LIMIT, HEADER_LIMIT, SECTION_LIMIT, SlackMessage
from emr_triage.alerts.mrkdwn import clip, code, escape, plain
from emr_triage.alerts.slow import minutes_text
from emr_triage.digest.figures import Figures


def _change(now: int, before: int) -> str:
    if before == 0:
        return "none the period before" if now else "none the period before either"
    change = (now - before) * 100 // before
    return f"{before} the period before ({'+' if change >= 0 else ''}{change}%)"


def _period(figures: Figures) -> str:
    last = figures.until - timedelta(seconds=1)
    return f"{figures.since.strftime('%a %d %b')} – {last.strftime('%a %d %b %Y')}"


def lines(figures: Figures, mark: bool = True) -> list[tuple[str, list[str]]]:
    """The digest as (heading, lines) sections, in mrkdwn when ``mark`` (Slack) or plain (terminal)."""

    def c(text: str) -> str:
        return code(text) if mark else text

    def b(text: str) -> str:
        return f"*{text}*" if mark else text

    def e(text: str) -> str:
        return escape(text) if mark else text

    sections: list[tuple[str, list[str]]] = []
    change = _change(figures.total, figures.previous_total)
    head = [f"{b(str(figures.total))} failure(s) in {figures.runs} run(s) that ended; {change}"]
    for category, count in figures.failures.most_common():
        before = figures.previous_failures.get(category, 0)
        head.append(f"• {c(category)}: {count} (before: {before})")
    gone = [cat for cat in figures.previous_failures if cat not in figures.failures]
    if gone:
        head.append("• gone since the period before: " + ", ".join(c(cat) for cat in sorted(gone)))
    sections.append(("Failures by category", head))
    if figures.signatures:
        sections.append(
            (
                "Recurring failures",
                [
                    f"• {b(str(s.count))}× {e(s.title)} ({c(s.category)}) in "
                    + ", ".join(c(job) for job in s.jobs[:3])
                    + (f" and {len(s.jobs) - 3} more" if len(s.jobs) > 3 else "")
                    for s in figures.signatures
                ],
            )
        )
    if figures.flaky:
        sections.append(
            (
                "Flakiest jobs (failed and succeeded)",
                [f"• {c(j.job_key)}: {j.failures} of {j.runs} runs failed ({j.rate:.0%})" for j in figures.flaky],
            )
        )
    recovery = []
    if (typical := Figures.typical(figures.recover_seconds)) is not None:
        worst = max(figures.recover_seconds)
        recovery.append(
            f"Time to recover (failure to the job's next success): median {minutes_text(typical)}, "
            f"longest {minutes_text(worst)}, over {len(figures.recover_seconds)} recovery(ies)"
        )
    if figures.unrecovered:
        recovery.append(f"{figures.unrecovered} job(s) have not succeeded since failing")
    if (acknowledged := Figures.typical(figures.acknowledge_seconds)) is not None:
        recovery.append(
            f"Time to acknowledge: median {minutes_text(acknowledged)} over {len(figures.acknowledge_seconds)} alert(s)"
        )
    if recovery:
        sections.append(("Recovery", recovery))
    if figures.slow_runs:
        sections.append(
            (
                "Slow runs (alerted while running)",
                [f"• {c(job)}: {count}" for job, count in figures.slow_runs.most_common(5)],
            )
        )
    return sections


def digest_text(figures: Figures, title: str) -> str:
    """The terminal's version."""
    out = [f"{title}: {_period(figures)}", ""]
    for heading, body in lines(figures, mark=False):
        out += [heading, *(f"  {line}" for line in body), ""]
    return "\n".join(out).rstrip() + "\n"


def digest_message(figures: Figures, channel: str, chart: bool) -> SlackMessage:
    """The weekly digest's Slack message (the chart, when there is one, follows in its thread)."""

    def mrkdwn(text: str, limit: int) -> dict[str, Any]:
        return {"type": "mrkdwn", "text": clip(text, limit), "verbatim": True}

    header = f":bar_chart: Weekly EMR digest: {_period(figures)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(plain(header), HEADER_LIMIT), "emoji": True}}
    ]
    for heading, body in lines(figures):
        blocks.append({"type": "section", "text": mrkdwn(f"*{heading}*\n" + "\n".join(body), SECTION_LIMIT)})
    note = "the chart of failures per day by category is in the thread" if chart else "no chart (nothing to draw)"
    blocks.append(
        {"type": "context", "elements": [mrkdwn(f"emr-triage digest for {escape(channel)} · {note}", CONTEXT_LIMIT)]}
    )
    text = f"Weekly EMR digest: {figures.total} failure(s), {_change(figures.total, figures.previous_total)}"
    return SlackMessage(text=escape(text), blocks=blocks[:50])
