"""Analyse one log given as a stream of byte chunks: read it safely, then classify its lines."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from emr_triage.analysis.catalogue import Catalogue
from emr_triage.analysis.classify import LineAnalysis, analyse_lines
from emr_triage.logs.reader import ReadStats, iter_log_lines
from emr_triage.models.analysis import LogRead


def _guarded(chunks: Iterable[bytes], stats: ReadStats, deadline: float | None = None) -> Iterator[bytes]:
    """Stop, noting why, when the *source* fails mid-stream (connection reset, object deleted), or when
    the time budget runs out (the function must keep time to store the incident and post the alert)."""
    iterator = iter(chunks)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            stats.stop(f"time budget reached after {stats.bytes_in:,} bytes; the rest of the log was not analysed")
            return
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            stats.stop(f"reading stopped after {stats.bytes_in:,} bytes: {type(exc).__name__}: {exc}")
            return
        yield chunk


def analyse_stream(
    chunks: Iterable[bytes],
    *,
    catalogue: Catalogue,
    source: str,
    source_weight: int = 1,
    etag: str | None = None,
    max_bytes: int = 1 << 30,
    max_line_chars: int = 16_384,
    deadline: float | None = None,
) -> tuple[LineAnalysis, LogRead]:
    """Read a log (gzip or plain) and find failure signatures in it.

    Returns
    -------
    (LineAnalysis, LogRead)
        The findings, and what was read (``partial`` with notes when the read was cut short).
    """
    stats = ReadStats()
    lines = iter_log_lines(
        _guarded(chunks, stats, deadline), max_bytes=max_bytes, max_line_chars=max_line_chars, stats=stats
    )
    analysis = analyse_lines(lines, catalogue=catalogue, source=source, source_weight=source_weight)
    read = LogRead(
        source=source,
        etag=etag,
        bytes_read=stats.bytes_in,
        lines=stats.lines,
        partial=stats.partial,
        notes=list(stats.notes),
    )
    return analysis, read
