"""Evidence blocks: the lines a finding gathers (its stack, its context before), redacted whole, then cut,
and the headline that best says what went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from emr_triage.analysis.record import bound_line, clip, redact_record
from emr_triage.analysis.redact import redact
from emr_triage.analysis.text import (
    CONTINUATION,
    EXCEPTION_HEADLINE,
    LOG_PREFIX,
    MAX_EVIDENCE_LINE_CHARS,
    TRACEBACK,
    strip_log_prefix,
    user_java_frame,
    user_python_frame,
)
from emr_triage.models.analysis import Finding

MAX_EVIDENCE_LINES = 25


MAX_BLOCK_LINES = 400  # lines of one stack scanned for the user's code location


CONTEXT_LINES = 2  # lines before a finding's first line that are kept


@dataclass
class EvidenceBlock:
    """Lines that belong to one finding's first match, gathered as the log streams by."""

    finding: Finding
    lines: list[str]
    traceback: bool
    exception_line_seen: bool = False
    scanned: int = 0
    java_location: str | None = None
    python_location: str | None = None
    open: bool = True
    symptom_when: re.Pattern[str] | None = None
    exception_line: str | None = None  # the line that ends a Python traceback
    wrapped: str | None = None  # the Java exception a Py4JJavaError wraps (": org.apache...: message")
    frames: re.Pattern[str] | None = None  # a rule's frames: one line of the block must match
    frames_seen: bool = False
    before: list[str] = field(default_factory=list)  # the lines before the match, bounded, not redacted

    def feed(self, line: str) -> None:
        continuation = bool(CONTINUATION.match(line))
        if not continuation:
            # Two unindented lines still belong to the block, once: the exception line that ends a Python
            # traceback, and the throwable log4j prints right after its message line (its frames follow).
            traceback_end = self.traceback and line.strip()
            throwable = self.scanned == 0 and EXCEPTION_HEADLINE.match(line)
            if not self.exception_line_seen and (traceback_end or throwable):
                self.exception_line_seen = True
                if traceback_end:
                    self.exception_line = bound_line(line.strip())
            else:
                self.open = False
                return
        self.scanned += 1
        if self.frames is not None and not self.frames_seen and self.frames.search(line):
            self.frames_seen = True
        if self.exception_line and self.wrapped is None and line.startswith(": "):
            self.wrapped = bound_line(line[2:].strip())
        if len(self.lines) < MAX_EVIDENCE_LINES:
            self.lines.append(bound_line(line))
        if self.java_location is None:
            self.java_location = user_java_frame(line)
        if python_frame := user_python_frame(line):
            self.python_location = python_frame  # the innermost user frame is the last one
        if self.scanned >= MAX_BLOCK_LINES:
            self.open = False

    def close(self) -> bool:
        """Finish the finding; False when it does not stand (its rule's frames are not in its stack)."""
        self.open = False
        if self.frames is not None and not self.frames_seen:
            return False
        # Redacted whole, then cut: the lines before as one text (a private key that began above the lines
        # kept is recognised by its BEGIN line, and a key with no END line swallows only what is before the
        # match), the block as another.
        kept_before = redact_record(self.before)[-CONTEXT_LINES:]
        self.finding.context_before = [clip(line, MAX_EVIDENCE_LINE_CHARS) for line in kept_before]
        # ... with the line before the match in view, for a value whose key ends that line
        previous = self.before[-1] if self.before else None
        evidence = redact_record(self.lines, previous=previous)
        self.finding.evidence = [clip(line, MAX_EVIDENCE_LINE_CHARS) for line in evidence]
        location = self.python_location or self.java_location
        self.finding.location = clip(redact(location), MAX_EVIDENCE_LINE_CHARS) if location else None
        headline = _Headline(self.exception_line) if self.exception_line else _summarise(self.lines, previous)
        if self.symptom_when is not None and self.symptom_when.search(headline.shown):
            # A wrapper (a traceback ending in Py4JJavaError): the error is the Java exception inside,
            # found by its own rule if one knows it; this finding only shows that the job failed.
            self.finding.kind = "symptom"
            headline = _Headline(self.wrapped) if self.wrapped else headline
        self.finding.headline = headline.redacted()
        return True


class _Headline(NamedTuple):
    """A finding's headline before redaction: its text, and how much of it is kept (the summary of a
    log4j line keeps what followed the line's prefix within the line's first 500 characters, as it
    always has, so that its fingerprint stays the same)."""

    text: str
    limit: int = MAX_EVIDENCE_LINE_CHARS
    rstrip: bool = False
    previous: str | None = None  # the line before, when the text starts the match's line

    @property
    def shown(self) -> str:
        return self.text[: self.limit]

    def redacted(self) -> str:
        kept = clip(redact_record([self.text], previous=self.previous)[0], self.limit)
        return kept.rstrip() if self.rstrip else kept


def _summarise(lines: list[str], previous: str | None = None) -> _Headline:
    """The line that best says what went wrong in a block."""
    raw = lines[0]
    first = strip_log_prefix(raw)
    limit = MAX_EVIDENCE_LINE_CHARS - _text_start(raw)
    if TRACEBACK in first[:limit]:
        exception = next((ln for ln in lines[1:] if ln.strip() and not ln[:1].isspace()), None)
        if exception:
            return _Headline(exception.strip())
    # (a line whose log prefix was stripped does not start with a value continued from the line before)
    return _Headline(first, max(limit, 0), rstrip=True, previous=previous if first == raw else None)


def _text_start(line: str) -> int:
    """Where a line's text starts after its log4j prefix and the blanks around it."""
    prefix = LOG_PREFIX.match(line)
    start = prefix.end() if prefix else 0
    rest = line[start:]
    return start + len(rest) - len(rest.lstrip())
