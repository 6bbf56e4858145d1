"""What a person reads first: the extract shown in Slack and the terminal, and the full redacted
extract attached to an alert."""

from __future__ import annotations

from emr_triage.analysis.text import mask_variables
from emr_triage.models.analysis import ExtractLine, Finding

MAX_EXTRACT_LINES = 40
MAX_EXTRACT_LINE_CHARS = 300


def build_extract(findings: list[Finding]) -> list[ExtractLine]:
    """The lines a person reads first: the root cause's block with the lines just before it, then the
    first line of each other finding; runs of lines that differ only in numbers and ids are folded into
    one line with a repeat count; capped in lines and characters."""
    extract: list[ExtractLine] = []
    folded_key: str | None = None
    shown: set[tuple[str, int]] = set()

    def add(source: str, line_no: int, text: str) -> None:
        nonlocal folded_key
        if (source, line_no) in shown:
            return
        shown.add((source, line_no))
        key = mask_variables(text)
        if extract and key == folded_key and extract[-1].source == source:
            extract[-1].repeat += 1
            return
        if len(extract) < MAX_EXTRACT_LINES:
            clipped = text if len(text) <= MAX_EXTRACT_LINE_CHARS else text[:MAX_EXTRACT_LINE_CHARS] + " …"
            extract.append(ExtractLine(source=source, line_no=line_no, text=clipped))
            folded_key = key

    if not findings:
        return extract
    root, others = findings[0], findings[1:]
    for offset, text in enumerate(root.context_before):
        if text.strip():
            add(root.source, root.line_no - len(root.context_before) + offset, text)
    for offset, text in enumerate(root.evidence):
        add(root.source, root.line_no + offset, text)
    for finding in others:
        if finding.evidence:
            folded_key = None
            add(finding.source, finding.line_no, finding.evidence[0])
    return extract
