"""Analyse one log given as a stream of byte chunks: read it safely, then classify its lines."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from typing import Generic, TypeVar, cast

from emr_triage.analysis.catalogue import Catalogue
from emr_triage.analysis.findings import LineAnalysis, analyse_blocks
from emr_triage.analysis.scan import LiteralScanner, ScannedBlock, scan_block
from emr_triage.logs.reader import MAX_LINE_BYTES, ReadStats, iter_text_blocks
from emr_triage.models.analysis import LogRead


def _guarded(chunks: Iterable[bytes], stats: ReadStats, deadline: float | None = None) -> Iterator[bytes]:
    """Stop, noting why, when the *source* fails mid-stream (connection reset, object deleted), or when
    the time budget runs out (the function must keep time to store the incident and post the alert)."""
    iterator = iter(chunks)
    while True:
        if _out_of_time(deadline, stats):
            return
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            stats.stop(f"reading stopped after {stats.bytes_in:,} bytes: {type(exc).__name__}: {exc}")
            return
        yield chunk


T = TypeVar("T")
U = TypeVar("U")
_OUT_OF_TIME = "time budget reached"


def _out_of_time(deadline: float | None, stats: ReadStats) -> bool:
    """Whether the time budget has run out; the first to find out notes it (reader and scan both look)."""
    if deadline is None or time.monotonic() <= deadline:
        return False
    if not any(note.startswith(_OUT_OF_TIME) for note in stats.notes):
        stats.stop(f"{_OUT_OF_TIME} after {stats.bytes_in:,} bytes; the rest of the log was not analysed")
    return True


def _until(deadline: float | None, stats: ReadStats, blocks: Iterable[T]) -> Iterator[T]:
    """The blocks until the time budget runs out. One compressed chunk can inflate to hundreds of MB, so
    the reader's check between chunks is not enough: the scan checks between blocks too."""
    for block in blocks:
        if _out_of_time(deadline, stats):
            return
        yield block


_READ_AHEAD = 4  # blocks read ahead of the scan (about 1 MiB each)
_DONE = object()


class _Job(Generic[T, U]):
    """One item and the work to do on it, done once, by whichever thread gets to it first."""

    __slots__ = ("claim", "done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: U | None = None
        self.error: BaseException | None = None
        self.done = False
        self.claim = threading.Lock()  # held by the thread doing the work

    def run(self, work: Callable[[T], U]) -> None:
        try:
            self.result = work(self.item)
        except BaseException as exc:  # raised where the consumer reaches this item, in order
            self.error = exc
        self.done = True

    def steal(self, work: Callable[[T], U]) -> bool:
        """Do the work here unless it is done or under way; whether it was done here. (Only the producer
        steals, and the consumer keeps the claim once it has it: a job is never done twice.)"""
        if self.done or not self.claim.acquire(blocking=False):
            return False
        try:
            self.run(work)
        finally:
            self.claim.release()
        return True

    def outcome(self, work: Callable[[T], U]) -> U:
        """The result: the work done here, or waited for when the producer is doing it."""
        if self.claim.acquire(blocking=False):  # kept: nobody else needs it once the consumer has it
            if not self.done:
                self.run(work)
        else:
            self.claim.acquire()
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def read_ahead(
    items: Iterable[T],
    depth: int = _READ_AHEAD,
    work: Callable[[T], U] | None = None,
    steal_while: Callable[[], bool] | None = None,
) -> Generator[U, None, None]:
    """Produce ``items`` in a background thread, up to ``depth`` ahead of the consumer; with ``work``,
    yield ``work(item)`` for each, in order, done by whichever thread is free.

    Reading the object and inflating it (ISA-L releases the GIL) then run on one core while the scan
    (Hyperscan releases it too) runs on the other. When the consumer falls behind (the queue is full),
    the producer does the work of the newest queued items instead of waiting (only while
    ``steal_while()`` says so, when given): on an easily inflated log both cores scan. Lambda shows two
    vCPUs to functions up to 3,008 MB but gives one vCPU's worth of time per 1,769 MB: below 3,538 MB the
    thread mostly costs a switch per block. Memory stays bounded by about ``2 * depth`` items; an error
    in the producer or in the work is raised in the consumer, in order; a consumer that stops early stops
    the producer.
    """
    out: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    recent: deque[_Job[T, U]] = deque(maxlen=depth + 1)  # the producer's newest jobs, to steal from

    def offer(item: object) -> bool:
        """Queue ``item`` unless the consumer stops first (then nobody would ever make room for it)."""
        while not stop.is_set():
            try:
                out.put_nowait(item)
                return True
            except queue.Full:
                pass
            may_steal = steal_while is None or steal_while()
            if work is not None and may_steal and any(job.steal(work) for job in reversed(recent)):
                continue  # did the work of a queued job while the consumer was busy
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                job: _Job[T, U] = _Job(item)
                if work is not None:
                    recent.append(job)
                if not offer(job):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="emr-triage-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            got = out.get()
            if got is _DONE:
                return
            if isinstance(got, BaseException):
                raise got
            job = cast("_Job[T, U]", got)
            # Without work, the items pass through as they are (U is T).
            yield cast(U, job.item) if work is None else job.outcome(work)
    finally:
        stop.set()
        producer.join()


# Candidate lines in a block above which the read-ahead thread stops scanning ahead (see _Pace).
_STEAL_CANDIDATES = 64


class _Pace:
    """Whether the read-ahead thread may scan blocks ahead: only while the block being analysed here and
    the block scanned last both have few candidate lines. Hyperscan's callback takes the GIL at every
    match, so a scan on the other thread while this one runs Python for a block full of candidates (or
    while both scan such blocks) waits for the GIL at each match, switch after switch: slower than
    scanning here afterwards. On a log with few candidates this thread mostly waits, and both scan."""

    def __init__(self, scanner: LiteralScanner) -> None:
        self.scanner = scanner
        self.analysing_dense = False
        self.scanned_dense = False

    def sparse(self) -> bool:
        return not (self.analysing_dense or self.scanned_dense)

    def scan(self, block: bytes) -> ScannedBlock:
        scanned = scan_block(self.scanner, block)
        self.scanned_dense = len(scanned.candidates) > _STEAL_CANDIDATES
        return scanned

    def watch(self, blocks: Iterable[ScannedBlock]) -> Iterator[ScannedBlock]:
        for block in blocks:
            self.analysing_dense = len(block.candidates) > _STEAL_CANDIDATES
            yield block
        self.analysing_dense = False


def analyse_stream(
    chunks: Iterable[bytes],
    *,
    catalogue: Catalogue,
    source: str,
    source_weight: int = 1,
    etag: str | None = None,
    max_bytes: int = 1 << 30,
    max_line_bytes: int = MAX_LINE_BYTES,
    deadline: float | None = None,
    scanner: LiteralScanner | None = None,
) -> tuple[LineAnalysis, LogRead]:
    """Read a log (gzip or plain) and find failure signatures in it, in one streaming pass.

    Memory stays flat whatever the size of the log: the text goes through in blocks of about 1 MiB,
    and only the findings (capped) are kept.

    Parameters
    ----------
    chunks:
        The raw object, e.g. an S3 body's ``iter_chunks()`` or :func:`~emr_triage.logs.reader.iter_file_chunks`.
    catalogue, source, source_weight, scanner:
        As for :func:`~emr_triage.analysis.findings.analyse_blocks`.
    etag:
        The object's ETag, recorded on the read (to recognise the same object delivered twice).
    max_bytes:
        Budget of decompressed bytes; beyond it the read stops and is flagged partial.
    max_line_bytes:
        Longer lines are read in pieces of this size.
    deadline:
        ``time.monotonic()`` value at which reading stops (flagged partial), leaving time to report.

    Returns
    -------
    (LineAnalysis, LogRead)
        The findings, and what was read (``partial`` with notes when the read was cut short).
    """
    stats = ReadStats()
    blocks = iter_text_blocks(
        _guarded(chunks, stats, deadline), max_bytes=max_bytes, max_line_bytes=max_line_bytes, stats=stats
    )
    scanner = scanner or catalogue.prefilter.scanner()
    # The bytes work of each block (the literal scan, line breaks, the places of the lines that hit) is
    # done ahead, by whichever thread is free; only the lines that hit are handled here, in order.
    # Closed on the way out, even when the scan raises: that stops and joins the producer thread at once
    # instead of whenever the exception's traceback lets go of the generator.
    pace = _Pace(scanner)
    with closing(read_ahead(blocks, work=pace.scan, steal_while=pace.sparse)) as ahead:
        analysis = analyse_blocks(
            _until(deadline, stats, pace.watch(ahead)),
            catalogue=catalogue,
            source=source,
            source_weight=source_weight,
            scanner=scanner,
        )
    read = LogRead(
        source=source,
        etag=etag,
        bytes_read=stats.bytes_in,
        bytes_scanned=stats.bytes_out,
        lines=analysis.lines,
        partial=stats.partial,
        notes=list(stats.notes),
        interactive=analysis.interactive,
    )
    return analysis, read
