"""The logs ``emr-triage analyze`` reads: local files and folders, s3:// objects and prefixes, analysed
together and diagnosed as an incident diagnoses its logs (same engine, merge order and verdict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from emr_triage.exceptions import EmrTriageError, LogReadError
from emr_triage.logs.locations import log_weight
from emr_triage.logs.reader import CHUNK_SIZE

if TYPE_CHECKING:
    from emr_triage.analysis.catalogue import Catalogue
    from emr_triage.local.output import ProgressBar
    from emr_triage.models.analysis import AnalysisReport, Diagnosis, KnownOutcome
    from emr_triage.ports import LogStore


# Show a progress bar (on a terminal) from this much raw input; smaller inputs finish too fast to need one.
PROGRESS_MIN_BYTES = 64 << 20


# At most this many objects are analysed under one s3:// prefix (a note says when there were more).
MAX_S3_OBJECTS = 1000


# Decompressed bytes read of one log by default. The functions keep their own budgets (they must alert in
# time); on a workstation a whole multi-GB log is what was asked for, and 16 GiB (~15 s) still stops a
# gzip bomb long before it fills a disk's worth of time.
DEFAULT_READ_BUDGET_GIB = 16


def is_log_name(name: str) -> bool:
    """Whether a file in a log folder (or an object under a prefix) is worth reading: not a Hadoop
    checksum (``*.crc``), a ``_SUCCESS`` marker, a dot-file or an S3 "folder" placeholder."""
    return bool(name) and not name.startswith(".") and name != "_SUCCESS" and not name.endswith(".crc")


@dataclass
class LogInput:
    """One log to analyse: a file or an S3 object, or what could not be read of a path the user gave."""

    source: str
    size: int = 0  # raw bytes when known (for the progress bar)
    weight: int = 1
    opener: Callable[[], Iterator[bytes]] | None = None  # raises when the log cannot be read
    etag: str | None = None
    error: str | None = None  # why it cannot be read (set instead of opener)


def _file_opener(path: Path) -> Callable[[], Iterator[bytes]]:
    def open_file() -> Iterator[bytes]:
        handle = path.open("rb")  # raises here, not at the first chunk, so the reason is clear

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK_SIZE):
                    yield chunk

        return chunks()

    return open_file


def local_inputs(raw: str) -> list[LogInput]:
    """The logs a local path names: the file itself, or every log file below a folder (name order)."""
    path = Path(raw)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and all(is_log_name(part) for part in p.relative_to(path).parts)
        )
        if not files:
            return [LogInput(raw, error="no log files in this folder")]
        return [LogInput(str(f), f.stat().st_size, log_weight(f.absolute().as_posix()), _file_opener(f)) for f in files]
    if path.exists():
        return [LogInput(raw, path.stat().st_size, log_weight(path.absolute().as_posix()), _file_opener(path))]
    return [LogInput(raw, error="no such file or folder")]


def s3_inputs(raw: str, store: LogStore) -> tuple[list[LogInput], str | None]:
    """The objects an s3:// URI names: the object itself, else every log object under it as a prefix
    (``s3://bucket/logs/j-XXX`` with or without the trailing slash). Returns them and a note when the
    prefix held more than :data:`MAX_S3_OBJECTS`."""
    from emr_triage.logs.locations import parse_s3_uri

    try:
        bucket, key = parse_s3_uri(raw)
    except ValueError as exc:
        raise EmrTriageError(str(exc)) from exc
    uri = f"s3://{bucket}/{key}"
    error: str | None = None
    prefix = key
    if key and not key.endswith("/"):
        try:
            stream = _s3_call(lambda: store.open_object(bucket, key), uri)
        except EmrTriageError as exc:
            error, prefix = str(exc), f"{key}/"
        else:
            return [LogInput(uri, stream.info.size, log_weight(key), lambda: stream.chunks, stream.info.etag)], None
    try:
        objects = _s3_call(lambda: store.list_objects(bucket, prefix, limit=MAX_S3_OBJECTS + 1), uri)
    except EmrTriageError as exc:
        return [LogInput(uri, error=error or str(exc))], None
    note = None
    if len(objects) > MAX_S3_OBJECTS:
        objects = objects[:MAX_S3_OBJECTS]
        note = f"more than {MAX_S3_OBJECTS:,} objects under it: only the first {MAX_S3_OBJECTS:,} were analysed"
    objects = [o for o in objects if is_log_name(o.key.rsplit("/", 1)[-1])]
    if not objects:
        return [LogInput(uri, error=error or f"no log objects under s3://{bucket}/{prefix}")], note

    def opener(object_key: str) -> Callable[[], Iterator[bytes]]:
        return lambda: _s3_call(lambda: store.open_object(bucket, object_key), f"s3://{bucket}/{object_key}").chunks

    inputs = [
        LogInput(f"s3://{bucket}/{o.key}", o.size, log_weight(o.key), opener(o.key), o.etag or None) for o in objects
    ]
    return inputs, note


_T = TypeVar("_T")


def _s3_call(call: Callable[[], _T], uri: str) -> _T:
    """Run an S3 call, turning botocore's own errors (no credentials, no endpoint) into ours; the log
    store already translates AWS's (AccessDenied, NoSuchKey ...)."""
    from botocore.exceptions import BotoCoreError

    try:
        return call()
    except BotoCoreError as exc:
        raise LogReadError(f"reading {uri} failed: {exc}") from exc


def _reading_order(item: LogInput) -> tuple[int, int, str]:
    """Logs in the order an incident reads them, so that ties between equally good findings are broken
    the same way: a step's own logs (stderr first), then the driver's container, then the rest."""
    from emr_triage.logs.locations import identify_log_object

    found = identify_log_object(
        "", item.source.split("://", 1)[-1].split("/", 1)[-1] if "://" in item.source else item.source
    )
    step = found is not None and found.kind == "step"
    return (0 if step else 1, -item.weight, item.source)


def analyse_inputs(
    inputs: Sequence[LogInput],
    catalogue: Catalogue,
    *,
    outcome: KnownOutcome = "unknown",
    progress: ProgressBar | None = None,
    max_bytes: int = DEFAULT_READ_BUDGET_GIB << 30,
) -> tuple[AnalysisReport, Diagnosis, list[str]]:
    """Analyse logs together and diagnose them, as ``analyze`` does (and as an incident does: the same
    engine, merge and :func:`~emr_triage.analysis.verdict.diagnose`).

    Returns the report, the diagnosis and, per input that could not be read at all, its reason.
    """
    from emr_triage.analysis.engine import analyse_stream
    from emr_triage.analysis.findings import LineAnalysis
    from emr_triage.analysis.verdict import build_report, diagnose
    from emr_triage.models.analysis import LogRead

    results: list[tuple[LineAnalysis, LogRead]] = []
    unreadable: list[str] = []
    for item in inputs:
        reason = item.error
        if item.opener is not None:
            try:
                chunks = item.opener()
            except (EmrTriageError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if reason is not None:
            unreadable.append(f"{item.source}: {reason}")
            results.append((LineAnalysis(), LogRead(source=item.source, partial=True, notes=[reason])))
            if progress:
                progress.end_input(item.size)
            continue
        analysis, read = analyse_stream(
            progress.track(chunks) if progress else chunks,
            catalogue=catalogue,
            source=item.source,
            source_weight=item.weight,
            etag=item.etag,
            max_bytes=max_bytes,
        )
        if progress:
            progress.end_input(item.size)
        if read.partial and read.bytes_scanned == 0:  # binary, or not even the start could be read
            unreadable.append(f"{item.source}: {'; '.join(read.notes)}")
        results.append((analysis, read))
    # Findings are merged in the order an incident reads its logs (ties are broken the same way); what was
    # read is reported in the order given.
    merge_order = sorted(range(len(results)), key=lambda index: _reading_order(inputs[index]))
    report = build_report([results[index] for index in merge_order])
    report.reads = [read for _, read in results]
    diagnosis = diagnose(report.findings, catalogue, report.reads, report.exit_codes, outcome=outcome)
    return report, diagnosis, unreadable
