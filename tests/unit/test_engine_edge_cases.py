"""Edge cases of the log engine (reader, scanners, block scanner, read-ahead), each found by a review: each test failed
before its fix."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.engine import analyse_stream, read_ahead
from emr_triage.analysis.findings import analyse_blocks, analyse_lines
from emr_triage.exceptions import CatalogueError

CATALOGUE = load_catalogue()
OOM = "java.lang.OutOfMemoryError: Java heap space"


def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "emr-triage-read-ahead" and t.is_alive()]


def _returns_within(seconds: float, action: object) -> bool:
    """Run ``action`` in a daemon thread; whether it returned in time (a hang must not hang the suite)."""
    worker = threading.Thread(target=action, daemon=True)  # type: ignore[arg-type]
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


@pytest.mark.parametrize("ending", ["done", "error"])
def test_a_consumer_that_stops_while_the_producer_waits_to_queue_its_end_does_not_hang(ending: str) -> None:
    # Given a read-ahead one block deep whose producer has read everything (or failed) and now waits for
    # room in the full queue to hand over its end marker (or its error)
    exhausted = threading.Event()

    def blocks() -> Iterator[bytes]:
        yield b"a\n"
        yield b"b\n"
        exhausted.set()
        if ending == "error":
            raise OSError("connection reset")

    ahead = read_ahead(blocks(), depth=1)
    assert next(ahead) == b"a\n"
    assert exhausted.wait(5)
    time.sleep(0.2)  # the producer is now blocked on the full queue
    # When the consumer stops (an exception in the scan closes the generator)
    # Then it returns promptly and the producer thread is gone
    assert _returns_within(5, ahead.close)
    assert not _read_ahead_threads()


def test_a_scan_that_raises_leaves_no_read_ahead_thread_behind() -> None:
    # Given a scanner that fails on the second block of a long log
    class ExplodingScanner:
        name = "exploding"
        calls = 0

        def scan(self, block: bytes) -> list[tuple[int, int]]:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("scanner broke")
            return []

    chunks = [b"26/11/20 02:14:07 INFO Executor: Running task\n" * 1000] * 200
    # When the analysis raises (and the caller still holds the exception and its traceback)
    with pytest.raises(RuntimeError, match="scanner broke"):
        analyse_stream(chunks, catalogue=CATALOGUE, source="log", scanner=ExplodingScanner())
    # Then the read-ahead producer has already stopped: no thread left polling a full queue
    assert not _read_ahead_threads()


def test_the_exit_code_pattern_cannot_backtrack_over_blanks() -> None:
    # Given the exit-code pattern, which once took quadratic time on "exit code" + a long run of blanks
    # (12.7 s for 20,000 blanks): its blanks are matched possessively, so a failed match never retries
    # a shorter run of them (checked on the pattern itself, not with a clock)
    from emr_triage.analysis.exit_codes import EXIT_CODE

    assert r"\s*+" in EXIT_CODE.pattern and not re.search(r"\\s\*(?!\+)", EXIT_CODE.pattern)
    # And the codes around such a line are still read
    line = "Container exited with exit code" + " " * 20_000 + "x"
    analysis = analyse_lines([line, "Exit code: 137"], catalogue=CATALOGUE, source="log")
    assert [(e.code, e.line_no) for e in analysis.exit_codes] == [(137, 2)]


def test_no_catalogue_pattern_has_an_unbounded_wildcard_before_its_end() -> None:
    # Given the shipped catalogue: ".*" in the middle of a pattern rescans the rest of a line from every
    # occurrence of the text before it (21 s for a 200 KB line once); the loader rejects it
    from emr_triage.analysis.patterns import unbounded_wildcard

    offenders = [
        (rule.id, pattern)
        for rule in CATALOGUE.rules
        for pattern in [*rule.patterns, *rule.not_patterns, *rule.symptom_when]
        if unbounded_wildcard(pattern)
    ]
    assert offenders == []
    # And the check sees through groups and alternations, and allows a trailing or bounded wildcard
    assert unbounded_wildcard(r"HDFS_DELEGATION_TOKEN\b.*expired")
    assert unbounded_wildcard(r"a(?:b|c.+)d")
    assert not unbounded_wildcard(r"Job \d+ failed: .{0,1000}? took")
    assert not unbounded_wildcard(r"Path does not exist: .*")


def test_a_user_rule_with_an_unbounded_wildcard_is_rejected_at_load(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - {id: slow_rule, category: odd, rank: 5, severity: low, retryable: false,"
        " title: A slow rule, patterns: ['AcmeError.*timed out'], explanation: e e e, remediation: r r r}\n"
    )
    with pytest.raises(CatalogueError, match=r"rule 'slow_rule': patterns\[1\] .* quadratic time .* bound it"):
        load_catalogue([rules])


@pytest.mark.parametrize(
    "line",
    [
        # Nested deeper than json's recursion limit
        '{"message": "' + OOM + '", "a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        # A log4j-like event whose stack trace is not a list of frames
        json.dumps({"message": "task failed", "thrown": {"name": OOM, "extendedStackTrace": 5}}),
    ],
)
def test_a_json_line_of_any_shape_never_crashes_the_analysis(line: str) -> None:
    # Given a JSON line the log4j expansion does not expect
    # When it is analysed
    analysis = analyse_lines([line], catalogue=CATALOGUE, source="log")
    # Then the analysis completes and still finds the failure the line names
    assert "oom_heap" in {f.rule_id for f in analysis.findings}


def test_a_json_message_without_level_or_logger_does_not_join_the_evidence_before_it() -> None:
    # Given an exception, then a JSON event (not log4j: no level, no logger) about something else
    lines = [
        OOM,
        json.dumps({"message": "Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB "}),
    ]
    # When analysed
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="log")
    oom = next(f for f in analysis.findings if f.rule_id == "oom_heap")
    # Then the event is not read as a continuation (": ...") of the exception's block
    assert oom.evidence == [OOM]


def test_a_json_message_with_a_python_traceback_is_read_line_by_line() -> None:
    # Given a Python logger's JSON event whose message is a whole traceback
    traceback = (
        'Traceback (most recent call last):\n  File "/mnt/job.py", line 3, in <module>\n    main()\nValueError: bad'
    )
    line = json.dumps({"levelname": "ERROR", "message": traceback})
    # When analysed
    analysis = analyse_lines([line], catalogue=CATALOGUE, source="log")
    # Then the finding's headline is the exception the traceback ends with, and the user's frame is found
    finding = analysis.findings[0]
    assert finding.headline == "ValueError: bad"
    assert finding.location == "job.py:3 in <module>"


def test_the_level_of_an_exception_is_the_same_when_its_stack_straddles_a_block_boundary() -> None:
    # Given an exception a WARN record printed, whose "Caused by:" comes after more than 2 KB of frames
    head = ["26/11/20 02:14:07 WARN BlockManager: Putting block rdd_1 failed", "java.lang.RuntimeException: wrap"]
    head += ["\tat org.apache.spark.rdd.RDD.computeOrReadCheckpoint(RDD.scala:373)"] * 30
    tail = ["Caused by: " + OOM, "\tat com.acme.Job.run(Job.java:1)", "26/11/20 02:14:08 INFO Executor: done"]
    first, second = ("\n".join(head) + "\n").encode(), ("\n".join(tail) + "\n").encode()
    whole = analyse_blocks([first + second], catalogue=CATALOGUE, source="log")
    # When the block boundary falls just before the "Caused by:" line
    split = analyse_blocks([first, second], catalogue=CATALOGUE, source="log")
    # Then the finding is the same: printed by the WARN record, so quiet
    assert [f.model_dump() for f in split.findings] == [f.model_dump() for f in whole.findings]
    assert split.findings[0].quiet


def test_the_time_budget_is_kept_inside_one_highly_compressed_chunk() -> None:
    # Given one 1 MiB-or-less gzip chunk that inflates to 30 MB of lines the scan must look at closely
    line = b"Container exited with a non-zero exit code 137\n"
    raw = gzip.compress(line * (30_000_000 // len(line)))
    assert len(raw) < 1 << 20
    # When it is analysed with 0.2 s left
    started = time.monotonic()
    analysis, read = analyse_stream([raw], catalogue=CATALOGUE, source="log", deadline=started + 0.2)
    # Then the analysis stops short of the end, and says why
    assert analysis.lines < 30_000_000 // len(line)
    assert read.partial
    assert any(note.startswith("time budget reached") for note in read.notes)


def test_a_log_that_starts_with_a_run_of_nul_bytes_is_still_analysed() -> None:
    # Given a log truncated while its writer kept its offset (logrotate's copytruncate): NULs, then text
    text = b"\x00" * 20_000 + b"26/11/20 02:14:07 ERROR Executor: Exception in task 1.0\n" + OOM.encode() + b"\n"
    # When it is analysed
    analysis, read = analyse_stream([text], catalogue=CATALOGUE, source="log")
    # Then it is read as text: the failure is found on its line
    assert [(f.rule_id, f.line_no) for f in analysis.findings] == [("oom_heap", 2)]
    assert read.lines == 2
    assert not read.partial
