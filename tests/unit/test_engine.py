"""The block engine: the fast scan must find exactly what a naive line-by-line loop over the rules finds,
wherever block boundaries fall, whatever the backend, and read the log structures EMR produces."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import threading
import time
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emr_triage.analysis import engine, findings, records, text
from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.engine import analyse_stream, read_ahead
from emr_triage.analysis.exit_codes import describe_exit_code
from emr_triage.analysis.extract import build_extract
from emr_triage.analysis.findings import analyse_blocks, analyse_lines
from emr_triage.analysis.scan import HyperscanScanner, PythonScanner, make_scanner, scan_block
from emr_triage.analysis.text import line_unwrapper
from emr_triage.analysis.verdict import diagnose

CATALOGUE = load_catalogue()

NOISE = [
    "26/11/20 02:14:07 INFO Executor: Running task 12.0 in stage 7.0 (TID 4242)",
    "26/11/20 02:14:08 INFO ShuffleBlockFetcherIterator: Getting 200 (12.3 MiB) non-empty blocks",
    "2026-11-20 02:14:09,123 INFO org.apache.hadoop.yarn.server.nodemanager.NodeManager: heartbeat ok",
    "26/11/20 02:14:10 WARN S3AInstrumentation: Slow request to s3://acme-raw/orders/part-1.parquet took 812 ms",
    "\tat org.apache.spark.rdd.RDD.iterator(RDD.scala:329)",
    "",
    "Ünïcödé ✓ 日本語 log line with émoji 🚀",
    "26/11/20 02:14:11 INFO Executor: Finished task 12.0 in stage 7.0 (TID 4242). 2211 bytes result sent",
]
# Lines the catalogue reacts to, with what follows them (frames, Caused by, traceback lines).
SIGNALS = [
    "java.lang.OutOfMemoryError: Java heap space",
    "26/11/20 02:15:00 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits. "
    "5.5 GB of 5.5 GB physical memory used.",
    "Traceback (most recent call last):",
    '  File "/mnt/tmp/job.py", line 12, in <module>',
    "ValueError: bad row",
    "Caused by: java.io.IOException: No space left on device",
    "26/11/20 02:15:01 INFO Client: Submitted application application_1700000000000_0042",
    "Container exited with a non-zero exit code 137",
    "26/11/20 02:15:02 ERROR CoarseGrainedExecutorBackend: RECEIVED SIGNAL TERM",
    "Exit status: -100. Diagnostics: Container released on a *lost* node",
    "23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job",
    "\tat com.acme.OutOfMemoryErrorHandler.handle(Handler.java:12)",
    "org.apache.spark.sql.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column cannot be resolved",
]


def _naive(lines: list[str], catalogue: Catalogue) -> dict[str, list[int]]:
    """The reference: every rule tried on every line, the way a naive analyser does it."""
    found: dict[str, list[int]] = {}
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("at ") and line[:1].isspace():
            continue  # stack frames are never evidence
        for rule in catalogue.rules:
            if rule.id not in CONTEXTUAL and rule.matches(line):
                found.setdefault(rule.id, []).append(number)
    return found


# Rules whose matches depend on the line's log record (its level) or on the other rules of the line (a
# fallback): the naive loop has neither, so they are left out of the comparison (test_outcome and
# test_catalogue check them).
CONTEXTUAL = frozenset(r.id for r in CATALOGUE.rules if r.levels or r.fallback)


def _found(analysis_findings: list) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
    return {f.rule_id: (f.line_no, f.count) for f in analysis_findings}


def _same_as_naive(findings: list, naive: dict[str, list[int]]) -> None:  # type: ignore[type-arg]
    """Every rule found on exactly the lines the naive loop finds: as often, first and last. (The
    evidence is the first match, or the first that is not an exception a WARN/INFO record printed.)"""
    findings = [f for f in findings if f.rule_id not in CONTEXTUAL]
    assert {f.rule_id for f in findings} == set(naive)
    for f in findings:
        lines = naive[f.rule_id]
        assert f.count == len(lines), f.rule_id
        assert f.line_no in lines, f.rule_id
        assert (f.last_line_no or f.line_no) == lines[-1] or f.count == 1, f.rule_id
        if not f.quiet:
            assert all(n >= lines[0] for n in [f.line_no]) and (f.line_no == lines[0] or f.count > 1)


def _blocks(text: bytes, cuts: list[int]) -> Iterator[bytes]:
    """``text`` split at arbitrary byte offsets (not only line breaks) into blocks."""
    start = 0
    for cut in sorted({c for c in cuts if 0 < c < len(text)}):
        yield text[start:cut]
        start = cut
    yield text[start:]


log_lines = st.lists(st.sampled_from(NOISE + SIGNALS), min_size=1, max_size=120)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=log_lines, chunk=st.integers(min_value=1, max_value=5000), gz=st.booleans())
def test_the_engine_finds_what_a_naive_loop_finds_whatever_the_chunking(lines: list[str], chunk: int, gz: bool) -> None:
    # Given a log mixing noise and failure lines, maybe gzip-compressed, arriving in chunks of any size
    text = ("\n".join(lines) + "\n").encode()
    raw = gzip.compress(text) if gz else text
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    # When the engine analyses it
    analysis, read = analyse_stream(chunks, catalogue=CATALOGUE, source="log")
    # Then it finds every rule on the same lines, as often, as trying every rule on every line
    _same_as_naive(analysis.findings, _naive(lines, CATALOGUE))
    assert read.lines == len(lines)
    assert not read.partial


@settings(max_examples=60, deadline=None)
@given(lines=log_lines, budget=st.sampled_from([0, 200, 1 << 20]))
def test_lines_seen_before_are_judged_exactly_as_the_first_time(lines: list[str], budget: int) -> None:
    # Given a log whose lines repeat (as a failing log's do), in both line endings
    text = "".join(line + ("\r\n" if n % 3 == 0 else "\n") for n, line in enumerate(lines * 3)).encode()
    # When it is analysed with what each line decides remembered (within any budget, 0: cleared at once)
    # and repeats only counted, and with nothing remembered and every line weighed in full
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(findings, "_PLAN_CACHE_BYTES", budget)
        kept = analyse_blocks([text], catalogue=CATALOGUE, source="log")
        patch.setattr(findings, "_PLAN_LINE_BYTES", -1)
        planned = findings._Scan._plan
        patch.setattr(findings._Scan, "_plan", lambda *a: planned(*a)._replace(counted=(), single=None))
        fresh = analyse_blocks([text], catalogue=CATALOGUE, source="log")
    # Then everything found is the same: findings, counts, line numbers, evidence, exit codes, ids
    assert [f.model_dump() for f in kept.findings] == [f.model_dump() for f in fresh.findings]
    assert (kept.lines, kept.exit_codes, kept.application_ids, kept.interactive) == (
        fresh.lines,
        fresh.exit_codes,
        fresh.application_ids,
        fresh.interactive,
    )


def test_a_repeat_of_a_handled_exception_that_is_not_handled_becomes_the_evidence() -> None:
    # Given an exception first printed under a WARN record (handled), then the same line under ERROR
    handled = [
        "26/11/20 02:14:07 WARN DiskBlockManager: could not write",
        "java.io.IOException: No space left on device",
    ]
    fatal = ["26/11/20 02:15:07 ERROR Executor: task failed", "java.io.IOException: No space left on device"]
    lines = handled * 3 + fatal + handled
    # When the log is analysed
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    # Then the unhandled one is the evidence, and every match is counted
    (disk,) = [f for f in analysis.findings if f.rule_id == "disk_full"]
    assert (disk.line_no, disk.quiet, disk.count, disk.last_line_no) == (8, False, 5, 10)


def _record_by_decoding_every_line(line: str, data: bytes, start: int, previous: bytes, unwrap) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """The walk back to a line's record as it reads: every line above decoded and looked at."""
    own = text.LEVEL.match(line)
    if own:
        return (own["level"], False, line)
    if line.startswith(records.PRINTED_BY_ITSELF) or not (
        text.EXCEPTION_HEADLINE.match(line) or line.startswith(records.THROWABLE_LEADS)
    ):
        return (None, False, None)
    above = list(itertools.islice(records.lines_back(data, start, previous, unwrap), records.RECORD_LOOKBACK))
    for before in above:
        if record := text.LEVEL.match(before):
            return (record["level"], True, before)
        if before.startswith(records.UNCAUGHT):
            return (None, False, None)
        if before.strip() and not (text.CONTINUATION.match(before) or text.EXCEPTION_HEADLINE.match(before)):
            return (None, False, None)
    return (None, False, None) if len(above) < records.RECORD_LOOKBACK else ("?", True, None)


RECORD_LINES = [
    "26/11/20 02:14:07 ERROR Executor: Exception in task 1.0",
    "26/11/20 02:14:07 WARN BlockManager: Failed to fetch",
    "java.io.IOException: No space left on device",
    "Caused by: java.io.IOException: Stream closed",
    "\tat org.apache.spark.rdd.RDD.iterator(RDD.scala:329)",
    "    at org.apache.spark.rdd.RDD.compute(RDD.scala:12)",
    " \x00\tat odd.Frame(X.java:1)",
    "\t",
    "",
    "\t... 12 more",
    "plain text in between",
    'Exception in thread "main" java.lang.RuntimeException: boom',
]


@settings(max_examples=200, deadline=None)
@given(
    above=st.lists(st.sampled_from(RECORD_LINES), max_size=50),
    tail=st.lists(st.sampled_from(RECORD_LINES), max_size=30),
    prefixed=st.booleans(),
)
def test_the_walk_back_to_a_record_finds_what_decoding_every_line_finds(
    above: list[str], tail: list[str], prefixed: bool
) -> None:
    # Given an exception line below any mix of records, frames and other lines, part of them at the end
    # of the block before, with or without a prefix every line carries (docker-compose's)
    lead = "web-1  | " if prefixed else ""
    unwrap = line_unwrapper(("\n".join(lead + "x" for _ in range(10)) + "\n").encode()) or records.unchanged_line
    previous = "".join(lead + line + "\n" for line in tail).encode()
    data = "".join(lead + line + "\n" for line in above).encode()
    line = "java.lang.IllegalStateException: bad state"
    # When its record is looked for
    found = records.record_of(line, data + (lead + line).encode(), len(data), previous, unwrap)
    # Then it is the one found by decoding every line above
    assert tuple(found) == _record_by_decoding_every_line(
        line, data + (lead + line).encode(), len(data), previous, unwrap
    )


def test_what_lines_decide_is_kept_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a log of many different candidate lines and a small budget for remembering them
    monkeypatch.setattr(findings, "_PLAN_CACHE_BYTES", 4096)
    lines = [f"java.io.IOException: No space left on device (attempt {n})" for n in range(2000)]
    scan = findings._Scan(catalogue=CATALOGUE, source="log", source_weight=1, scanner=CATALOGUE.prefilter.scanner())
    # When it is scanned
    scan.block(("\n".join(lines) + "\n").encode())
    # Then what is kept stays within the budget (and one line), and every line was still counted
    assert sum(len(raw) for raw, _ in scan.plans) <= 4096 + findings._PLAN_LINE_BYTES
    assert scan.finish().findings[0].count == 2000


@settings(max_examples=100, deadline=None)
@given(lines=log_lines, data=st.data())
def test_block_boundaries_at_any_line_break_change_nothing(lines: list[str], data: st.DataObject) -> None:
    # Given the same text cut into blocks at any of its line breaks (the reader's guarantee for lines
    # within the line budget)
    text = ("\n".join(lines) + "\n").encode()
    breaks = [i + 1 for i, byte in enumerate(text) if byte == 10]
    cuts = data.draw(st.lists(st.sampled_from(breaks), max_size=8))
    whole = analyse_blocks([text], catalogue=CATALOGUE, source="log")
    # When analysed block by block
    pieces = analyse_blocks(list(_blocks(text, cuts)), catalogue=CATALOGUE, source="log")
    # Then everything found is the same, evidence included
    assert [f.model_dump() for f in pieces.findings] == [f.model_dump() for f in whole.findings]
    assert pieces.lines == whole.lines
    assert pieces.exit_codes == whole.exit_codes


@settings(max_examples=60, deadline=None)
@given(lines=log_lines)
def test_hyperscan_and_the_python_scanner_agree(lines: list[str]) -> None:
    text = ("\n".join(lines) + "\n").encode()
    fast = analyse_blocks([text], catalogue=CATALOGUE, source="log", scanner=CATALOGUE.prefilter.scanner("hyperscan"))
    slow = analyse_blocks([text], catalogue=CATALOGUE, source="log", scanner=CATALOGUE.prefilter.scanner("python"))
    assert [f.model_dump() for f in fast.findings] == [f.model_dump() for f in slow.findings]
    assert [e.model_dump() for e in fast.exit_codes] == [e.model_dump() for e in slow.exit_codes]
    assert fast.application_ids == slow.application_ids


def test_scanners_report_every_occurrence_caselessly_with_end_offsets() -> None:
    literals = [b"killed by yarn", b"exit code", b"a.b*c"]
    block = b"x Container KILLED BY YARN ... exit code 1\nEXIT CODE 2 a.b*c aXb*c\n"
    lowered = block.lower()
    expected = [
        (lowered.find(b"killed by yarn") + 14, 0),
        (lowered.find(b"exit code") + 9, 1),
        (lowered.rfind(b"exit code") + 9, 1),
        (lowered.find(b"a.b*c") + 5, 2),
    ]
    assert PythonScanner(literals).scan(block) == expected
    assert HyperscanScanner(literals).scan(block) == expected  # regex syntax in a literal stays literal


@pytest.mark.parametrize("backend", ["hyperscan", "python"])
def test_a_literal_that_ends_with_its_lines_break_hits_that_line_once(backend: str) -> None:
    # Given literals of one line, one of them ending with the line break ("failed\n"), and a next line
    block = b"ERROR request failed\nnext failed: again\n"
    scanned = scan_block(make_scanner(["request", "failed\n", "failed:"], backend), block)
    # Then each line is one candidate, holding all of its own literals and none of the next line's
    assert [(s, e, n, sorted(i)) for s, e, n, i in scanned.candidates] == [(0, 20, 0, [0, 1]), (21, 39, 1, [2])]


def test_one_hyperscan_scanner_serves_threads_scanning_at_once() -> None:
    # Given one compiled scanner (one per process, like the catalogue's) and blocks to scan from 4 threads
    literals = [b"killed by yarn", b"exit code"]
    scanner = HyperscanScanner(literals)
    block = b"Container killed by YARN, exit code 137\n" * 20_000
    expected = PythonScanner(literals).scan(block)
    results: list[list[tuple[int, int]]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def scan() -> None:
        barrier.wait()
        try:
            for _ in range(5):
                results.append(scanner.scan(block))
        except BaseException as exc:  # Hyperscan's ScratchInUseError with a shared scratch space
            errors.append(exc)

    # When they scan at the same time
    threads = [threading.Thread(target=scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then none fails, and each finds everything
    assert not errors, errors
    assert len(results) == 20 and all(r == expected for r in results)


def test_an_unknown_scanner_backend_is_rejected_with_the_choices() -> None:
    with pytest.raises(ValueError, match="expected auto, hyperscan or python"):
        make_scanner(["abcd"], "grep")


def test_a_failure_inside_a_giant_line_is_found_and_line_numbers_after_it_stay_right() -> None:
    # Given a 5 MB line with an OutOfMemoryError in its middle, then a memory kill two lines later
    giant = "x" * 2_500_000 + " java.lang.OutOfMemoryError: Java heap space " + "y" * 2_500_000
    text = "\n".join(["start", giant, "between", SIGNALS[1]]) + "\n"
    # When it is read with a 1 MiB line budget
    raw = text.encode()
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]  # as S3 and files deliver it
    analysis, read = analyse_stream(chunks, catalogue=CATALOGUE, source="log", max_line_bytes=1 << 20)
    found = _found(analysis.findings)
    # Then both are found on their lines, the read is complete and says the line was read in pieces
    assert found["oom_heap"][0] == 2
    assert found["yarn_memory_kill"][0] == 4
    assert read.lines == 4
    assert not read.partial
    assert any("read in pieces" in note for note in read.notes)


def test_evidence_keeps_collecting_across_a_block_boundary() -> None:
    # Given an exception whose stack frames continue in the next block
    head = b"26/11/20 02:14:07 ERROR Executor: Exception in task 1.0\njava.lang.OutOfMemoryError: Java heap space\n"
    tail = b"\tat java.util.Arrays.copyOf(Arrays.java:3236)\n\tat com.acme.etl.Orders.enrich(Orders.scala:88)\nnext\n"
    # When the blocks are analysed separately
    analysis = analyse_blocks([head, tail], catalogue=CATALOGUE, source="log")
    oom = next(f for f in analysis.findings if f.rule_id == "oom_heap")
    # Then the finding has the frames of both blocks and the user's frame as its location
    assert oom.evidence[-1].strip().startswith("at com.acme.etl.Orders.enrich")
    assert oom.location == "com.acme.etl.Orders.enrich (Orders.scala:88)"
    assert oom.context_before == ["26/11/20 02:14:07 ERROR Executor: Exception in task 1.0"]


def test_a_class_name_inside_a_stack_frame_is_never_evidence() -> None:
    lines = ["26/11/20 INFO Handler: retrying", "\tat com.acme.OutOfMemoryErrorHandler.handle(Handler.java:12)"]
    assert analyse_lines(lines, catalogue=CATALOGUE, source="log").findings == []


def test_log4j2_json_events_are_read_like_pattern_layout_lines() -> None:
    # Given a log4j2 JsonLayout event carrying an OutOfMemoryError with its frames and cause
    event = {
        "timeMillis": 1700000000000,
        "thread": "Executor task launch worker for task 12",
        "level": "ERROR",
        "loggerName": "org.apache.spark.executor.Executor",
        "message": "Exception in task 12.0 in stage 7.0 (TID 4242)",
        "thrown": {
            "name": "org.apache.spark.SparkException",
            "message": "Task failed while writing rows",
            "extendedStackTrace": [
                {
                    "class": "org.apache.spark.sql.execution.datasources.FileFormatWriter",
                    "method": "write",
                    "file": "FileFormatWriter.scala",
                    "line": 500,
                },
            ],
            "cause": {
                "name": "java.lang.OutOfMemoryError",
                "message": "Java heap space",
                "extendedStackTrace": [
                    {"class": "com.acme.etl.Orders", "method": "enrich", "file": "Orders.scala", "line": 88},
                ],
            },
        },
    }
    lines = ['{"level":"INFO","message":"Running task 1.0"}', json.dumps(event), "plain line after"]
    # When it is analysed
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    oom = next(f for f in analysis.findings if f.rule_id == "oom_heap")
    # Then the heap OOM is found on the JSON line, with the user's frame from the cause's stack
    assert oom.line_no == 2
    assert oom.location == "com.acme.etl.Orders.enrich (Orders.scala:88)"
    assert "Caused by: java.lang.OutOfMemoryError: Java heap space" in oom.evidence[0]


def test_yarn_logs_sections_name_the_container_and_the_driver_weighs_more() -> None:
    # Given `yarn logs -applicationId` output with an executor and the AM (driver) container
    lines = [
        "Container: container_1700000000000_0042_01_000003 on ip-10-0-1-7.ec2.internal_8041",
        "LogAggregationType: AGGREGATED",
        "LogType:stderr",
        "LogLength:120",
        "LogContents:",
        "java.lang.OutOfMemoryError: Java heap space",
        "End of LogType:stderr",
        "Container: container_1700000000000_0042_01_000001 on ip-10-0-1-5.ec2.internal_8041",
        "LogType:stderr",
        "LogContents:",
        "26/11/20 02:15:00 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits.",
    ]
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="app.log", source_weight=1)
    by_rule = {f.rule_id: f for f in analysis.findings}
    assert by_rule["oom_heap"].section == "container_1700000000000_0042_01_000003 stderr"
    assert by_rule["oom_heap"].source_weight == 1
    assert by_rule["yarn_memory_kill"].section == "container_1700000000000_0042_01_000001 stderr"
    assert by_rule["yarn_memory_kill"].source_weight == 2


def test_exit_codes_and_signals_are_decoded_counted_and_zero_is_ignored() -> None:
    lines = [
        "Container exited with a non-zero exit code 137",
        "Exit code from container container_1700000000000_0042_01_000002 is : 137",
        "Final app status: SUCCEEDED, exitCode: 0",
        "26/11/20 02:15:02 ERROR CoarseGrainedExecutorBackend: RECEIVED SIGNAL TERM",
        "exitCode: -104",
    ]
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    seen = [(e.code, e.signal, e.count, e.line_no) for e in analysis.exit_codes]
    assert seen == [(137, None, 2, 1), (None, "TERM", 1, 4), (-104, None, 1, 5)]
    assert "memory-limit kill" in analysis.exit_codes[0].meaning
    assert "physical memory limit" in describe_exit_code(-104)
    assert describe_exit_code(130) == "killed by SIGINT"


def test_the_extract_folds_repeated_lines_and_numbers_them() -> None:
    lines = [
        "26/11/20 02:14:06 INFO Executor: Running task 1.0",
        "26/11/20 02:14:07 ERROR Executor: Exception in task 1.0",
        "java.lang.OutOfMemoryError: Java heap space",
        *[f"\tat com.acme.Recursive.step(Recursive.java:{n})" for n in range(10, 16)],
        "\tat com.acme.Main.main(Main.java:3)",
        "after",
    ]
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    extract = build_extract(analysis.findings)
    shown = [(e.line_no, e.repeat, e.text.strip()[:30]) for e in extract]
    assert shown[:5] == [
        (1, 1, "26/11/20 02:14:06 INFO Executo"),
        (2, 1, "26/11/20 02:14:07 ERROR Execut"),
        (3, 1, "java.lang.OutOfMemoryError: Ja"),
        (4, 6, "at com.acme.Recursive.step(Rec"),
        (10, 1, "at com.acme.Main.main(Main.jav"),
    ]


def test_a_success_marker_after_recovered_failures_is_no_failure_with_high_confidence() -> None:
    lines = [
        "23/05/04 10:05:01 WARN TaskSetManager: Lost task 3.0 in stage 4.0 (TID 41): java.lang.OutOfMemoryError",
        "java.lang.OutOfMemoryError: Java heap space",
        "23/05/04 10:09:00 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0",
    ]
    analysis, read = analyse_stream([("\n".join(lines) + "\n").encode()], catalogue=CATALOGUE, source="log")
    diagnosis = diagnose(analysis.findings, CATALOGUE, [read], analysis.exit_codes)
    assert diagnosis.category == "no_failure"
    assert diagnosis.confidence == 0.9
    assert "recovering from" in diagnosis.summary


def test_read_ahead_passes_errors_on_and_stops_its_producer_when_the_consumer_stops() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a\n"
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        list(read_ahead(failing()))

    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        for n in range(1_000_000):
            produced.append(n)
            yield b"x\n"

    for _ in read_ahead(endless(), depth=2):
        break
    assert len(produced) < 10
    assert not [t for t in threading.enumerate() if t.name == "emr-triage-read-ahead"]


def test_read_ahead_with_work_does_each_items_work_once_on_either_thread_and_yields_results_in_order() -> None:
    # Given work that records which thread did it, a producer slower than the consumer for the first half
    # (the consumer does the work), then a consumer slower than the producer (which, finding the queue
    # full, does the work of queued items itself)
    done: list[tuple[int, str]] = []

    def square(n: int) -> int:
        done.append((n, threading.current_thread().name))
        return n * n

    def items() -> Iterator[int]:
        for n in range(200):
            if n < 100:
                time.sleep(0.001)
            yield n

    results = []
    for result in read_ahead(items(), depth=3, work=square):
        results.append(result)
        if result >= 100 * 100:
            time.sleep(0.001)
    # Then every result comes once, in order, each item's work was done exactly once, by both threads
    assert results == [n * n for n in range(200)]
    assert sorted(n for n, _ in done) == list(range(200))
    assert {name for _, name in done} == {"MainThread", "emr-triage-read-ahead"}


def test_read_ahead_leaves_the_work_to_the_consumer_while_it_may_not_steal() -> None:
    # Given a consumer slower than the producer (which would do the work of queued items) that lets the
    # producer work only on the items after the first 100 (as the scan lets it only while blocks have
    # few candidate lines: the match callback's GIL switches make a scan beside Python slow)
    done: list[tuple[int, str]] = []
    results: list[int] = []

    def square(n: int) -> int:
        done.append((n, threading.current_thread().name))
        return n * n

    for result in read_ahead(iter(range(200)), depth=3, work=square, steal_while=lambda: len(results) >= 100):
        results.append(result)
        time.sleep(0.001)
    # Then every result comes once, in order; the first 100 items' work was done here
    assert results == [n * n for n in range(200)]
    assert sorted(n for n, _ in done) == list(range(200))
    assert all(name == "MainThread" for n, name in done if n < 100)
    assert {name for _, name in done} == {"MainThread", "emr-triage-read-ahead"}


def test_the_scan_is_left_to_the_analysing_thread_once_blocks_are_full_of_candidates() -> None:
    # Given the pace of a log's scan, and a block of few candidate lines and one of many
    pace = engine._Pace(CATALOGUE.prefilter.scanner())
    sparse = ("\n".join(NOISE) + "\n").encode()
    dense = ("java.lang.OutOfMemoryError: Java heap space\n" * (engine._STEAL_CANDIDATES + 1)).encode()
    # When they are scanned, then analysed
    assert pace.sparse()
    blocks = [pace.scan(dense)]
    after_dense = pace.sparse()
    blocks.append(pace.scan(sparse))
    after_sparse = pace.sparse()
    while_analysed = [pace.sparse() for _ in pace.watch(blocks)]
    # Then the read-ahead thread may scan ahead only while the block scanned last and the one being
    # analysed both have few
    assert (after_dense, after_sparse, while_analysed, pace.sparse()) == (False, True, [False, True], True)


def test_an_error_in_the_work_is_raised_where_its_item_comes_in_order() -> None:
    def work(n: int) -> int:
        if n == 5:
            raise ValueError("bad block 5")
        return n

    got: list[int] = []

    def consume() -> None:
        for result in read_ahead(iter(range(50)), depth=2, work=work):
            got.append(result)
            time.sleep(0.001)

    with pytest.raises(ValueError, match="bad block 5"):
        consume()
    assert got == [0, 1, 2, 3, 4]
    assert not [t for t in threading.enumerate() if t.name == "emr-triage-read-ahead"]


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=0, max_size=4096), gz=st.booleans(), cut=st.floats(min_value=0, max_value=1))
def test_random_bytes_and_truncated_gzip_never_crash_the_engine(data: bytes, gz: bool, cut: float) -> None:
    raw = gzip.compress(data) if gz else data
    raw = raw[: int(len(raw) * cut)] if gz else raw
    analysis, read = analyse_stream([raw], catalogue=CATALOGUE, source="random")
    diagnosis = diagnose(analysis.findings, CATALOGUE, [read])
    assert diagnosis.category  # a verdict, whatever the input
    assert read.bytes_read == len(raw)


def test_a_corrupt_gzip_keeps_the_failure_before_the_damage() -> None:
    # Given a gzip log with a failure in the first half and corrupt data in the second
    first = ("\n".join(random.Random(1).choice(NOISE) for _ in range(3000)) + "\n" + SIGNALS[0] + "\n").encode()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    damaged = compressor.compress(first) + compressor.flush(zlib.Z_FULL_FLUSH) + b"\xff" * 64
    # When it is analysed
    analysis, read = analyse_stream([damaged], catalogue=CATALOGUE, source="log")
    # Then the OOM is found and the read is partial, saying why
    assert "oom_heap" in _found(analysis.findings)
    assert read.partial
    assert read.notes[0].startswith("corrupt gzip data after ")


def test_a_yarn_diagnostics_block_is_one_piece_of_evidence() -> None:
    # Given an AM container failure as the YARN client prints it, unindented lines and all
    lines = [
        "26/11/20 02:10:00 INFO Client: Application report for application_1700000000000_0042 (state: FAILED)",
        "Application application_1700000000000_0042 failed 2 times due to AM Container for "
        "appattempt_1700000000000_0042_000002 exited with  exitCode: -104",
        "Failing this attempt.Diagnostics: [2026-11-20 02:09:58.120]Container "
        "[pid=4242,containerID=container_1700000000000_0042_02_000001] is running 99B beyond the 'PHYSICAL' "
        "memory limit. Current usage: 2.1 GB of 2 GB physical memory used. Killing container.",
        "[2026-11-20 02:09:58.121]Container killed on request. Exit code is 143",
        "[2026-11-20 02:09:58.122]Container exited with a non-zero exit code 143. ",
        "For more detailed output, check the application tracking page: http://ip-10-0-0-1:8088/cluster/app/x",
        "26/11/20 02:10:01 INFO ShutdownHookManager: Shutdown hook called",
    ]
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="step-stderr")
    am = next(f for f in analysis.findings if f.line_no == 2)
    # Then the finding carries the whole block, and nothing after it
    assert len(am.evidence) == 5
    assert am.evidence[-1].startswith("For more detailed output")


@pytest.mark.parametrize("offset", [0, 30, (1 << 20) - 10, (1 << 20) - 30, (1 << 20) + 4096 * 2 - 20])
def test_a_failure_cut_by_a_piece_boundary_inside_a_giant_line_is_still_found(offset: int) -> None:
    # Given a 3 MiB line, arriving in 64 KiB chunks, so that it is read in pieces of exactly 1 MiB (the
    # first piece ends at offset 1 MiB), with an OutOfMemoryError at, before and across that boundary
    needle = b"java.lang.OutOfMemoryError: Java heap space"
    line = bytearray(b"x" * (3 << 20))
    line[offset : offset + len(needle)] = needle
    raw = bytes(line) + b"\nend\n"
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    # When it is read with a 1 MiB line budget
    analysis, read = analyse_stream(chunks, catalogue=CATALOGUE, source="log", max_line_bytes=1 << 20)
    # Then the OOM is found, on line 1, and the line count is right
    assert _found(analysis.findings)["oom_heap"][0] == 1
    assert read.lines == 2


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=120_000),
    where=st.floats(min_value=0, max_value=1),
    chunk=st.integers(min_value=1, max_value=20_000),
)
def test_a_failure_anywhere_in_a_long_line_is_found_whatever_the_chunking(
    length: int, where: float, chunk: int
) -> None:
    # Given a line longer than the line budget (16 KiB here), with an OutOfMemoryError somewhere in it
    needle = b"java.lang.OutOfMemoryError: Java heap space"
    offset = int(length * where)
    line = b"y" * offset + needle + b"z" * (length - offset)
    raw = b"first\n" + line + b"\nlast\n"
    # When it arrives in chunks of any size
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    analysis, read = analyse_stream(chunks, catalogue=CATALOGUE, source="log", max_line_bytes=16_384)
    # Then the OOM is found on line 2 and the lines are counted right
    assert _found(analysis.findings)["oom_heap"][0] == 2
    assert read.lines == 3
