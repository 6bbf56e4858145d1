"""Reading log bytes into lines: gzip or plain, chunked, and never raising on bad input."""

from __future__ import annotations

import gzip
import random
import re
import time
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from emr_triage.logs.reader import (
    CHUNK_SIZE,
    TRUNCATION_MARK,
    ReadStats,
    iter_file_chunks,
    iter_log_lines,
)


@pytest.fixture(params=["isal", "zlib-ng"], autouse=True)
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both inflaters: ISA-L (the fast path, with its replay for exact salvage) and
    zlib-ng alone (what runs where ISA-L is not installed)."""
    from emr_triage.logs import reader

    if request.param == "zlib-ng":
        monkeypatch.setattr(reader, "_isal", lambda: None)
    else:
        assert reader._isal() is not None, "isal is a runtime dependency: the fast path must be tested"
    return str(request.param)


# A few lines as Spark on YARN writes them to a step's stderr.
SPARK_LINES = [
    "23/05/04 10:00:00 INFO SparkContext: Running Spark version 3.3.1-amzn-0",
    "23/05/04 10:00:01 INFO Client: Submitted application application_1683190000000_0007",
    "23/05/04 10:05:00 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits. "
    "5.5 GB of 5.5 GB physical memory used. Consider boosting spark.executor.memoryOverhead.",
    "23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job",
]
SPARK_TEXT = ("\n".join(SPARK_LINES) + "\n").encode()


def _numbered_lines(count: int) -> list[str]:
    """Distinct, realistic lines (varying numbers keep the compressed size proportional)."""
    return [
        f"23/05/04 10:{i // 60 % 60:02d}:{i % 60:02d} INFO TaskSetManager: Finished task {i}.0 in stage "
        f"{i % 17}.0 (TID {i * 7919 % 100_003}) in {i * 31 % 9973} ms on ip-10-0-{i % 250}-{i % 199}.ec2.internal"
        for i in range(count)
    ]


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read(chunks: Iterable[bytes], **kwargs: int) -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    lines = list(iter_log_lines(chunks, stats=stats, **kwargs))
    return lines, stats


# ---------------------------------------------------------------------------------------------------
# Plain text and gzip
# ---------------------------------------------------------------------------------------------------
def test_plain_text_is_read_line_by_line() -> None:
    # Given a plain-text log
    # When it is read
    lines, stats = _read([SPARK_TEXT])
    # Then every line comes back without its line ending, and the read is complete
    assert lines == SPARK_LINES
    assert stats.compressed is False
    assert stats.partial is False
    assert stats.notes == []
    assert stats.lines == len(SPARK_LINES)
    assert stats.bytes_in == stats.bytes_out == len(SPARK_TEXT)


@pytest.mark.parametrize("chunk_size", [2, 3, 7, 64, CHUNK_SIZE])
def test_gzip_is_decompressed_whatever_the_chunk_size(chunk_size: int) -> None:
    # Given a gzip-compressed log arriving in chunks of any size (7 bytes splits headers and lines)
    compressed = gzip.compress(SPARK_TEXT)
    # When it is read
    lines, stats = _read(_pieces(compressed, chunk_size))
    # Then the decompressed lines come back and the counters say what happened
    assert lines == SPARK_LINES
    assert stats.compressed is True
    assert stats.partial is False
    assert stats.bytes_in == len(compressed)
    assert stats.bytes_out == len(SPARK_TEXT)


def test_gzip_is_detected_when_the_first_chunk_is_a_single_byte() -> None:
    # Given a gzip log whose first chunk holds one byte only (chunking is the transport's choice)
    compressed = gzip.compress(SPARK_TEXT)
    # When it is read
    lines, stats = _read([compressed[:1], compressed[1:]])
    # Then it is still recognised as gzip
    assert stats.compressed is True
    assert lines == SPARK_LINES


def test_gzip_and_plain_text_are_told_apart_by_magic_bytes_not_file_name(tmp_path: Path) -> None:
    # Given a gzip file without .gz and a plain-text file named .gz (EMR names aside, people rename files)
    gzip_named_plain = tmp_path / "stderr"
    gzip_named_plain.write_bytes(gzip.compress(SPARK_TEXT))
    plain_named_gz = tmp_path / "stderr.gz"
    plain_named_gz.write_bytes(SPARK_TEXT)
    # When both are read from disk in small chunks
    gz_lines, gz_stats = _read(iter_file_chunks(gzip_named_plain, chunk_size=5))
    txt_lines, txt_stats = _read(iter_file_chunks(plain_named_gz, chunk_size=5))
    # Then each is read by what it contains
    assert gz_lines == txt_lines == SPARK_LINES
    assert (gz_stats.compressed, txt_stats.compressed) == (True, False)


def test_iter_file_chunks_yields_the_file_in_chunks_of_the_given_size(tmp_path: Path) -> None:
    # Given a 10-byte file
    path = tmp_path / "controller"
    path.write_bytes(b"0123456789")
    # When it is read in chunks of 4
    # Then the chunks are 4, 4 and 2 bytes long and nothing more
    assert list(iter_file_chunks(path, chunk_size=4)) == [b"0123", b"4567", b"89"]


@pytest.mark.parametrize("chunk_size", [1_000_000, 7])
def test_concatenated_gzip_members_are_all_read(chunk_size: int) -> None:
    # Given a multi-member gzip (what appending to a .gz or `cat a.gz b.gz` produces), valid per RFC 1952
    compressed = gzip.compress(b"first member line 1\nfirst member line 2\n") + gzip.compress(b"second member line 1\n")
    # When it is read
    lines, stats = _read(_pieces(compressed, chunk_size))
    # Then the lines of both members come back, and it is not flagged as garbage
    assert lines == ["first member line 1", "first member line 2", "second member line 1"]
    assert stats.partial is False
    assert stats.notes == []


def test_gzip_members_split_at_every_possible_byte_are_all_read() -> None:
    # Given two gzip members, split in two chunks at every position from the second byte on
    compressed = gzip.compress(b"a\nb\n") + gzip.compress(b"c\nd\n")
    for cut in range(2, len(compressed)):
        # When they are read
        lines, stats = _read([compressed[:cut], compressed[cut:]])
        # Then no boundary loses or garbles a line
        assert (cut, lines, stats.partial) == (cut, ["a", "b", "c", "d"], False)


# ---------------------------------------------------------------------------------------------------
# Broken gzip
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_size", [7, 4096, CHUNK_SIZE])
def test_truncated_gzip_keeps_the_lines_before_the_cut(chunk_size: int) -> None:
    # Given a gzip log cut in half (an object still being uploaded, or a truncated copy)
    original = _numbered_lines(4000)
    compressed = gzip.compress(("\n".join(original) + "\n").encode())
    cut = compressed[: len(compressed) // 2]
    # When it is read
    lines, stats = _read(_pieces(cut, chunk_size))
    # Then the lines before the cut are yielded unchanged (only the very last one may be partial)
    assert len(lines) > 1000
    assert lines[:-1] == original[: len(lines) - 1]
    assert original[len(lines) - 1].startswith(lines[-1])
    # And the read says it is partial, and why
    assert stats.partial is True
    assert stats.notes == [
        "gzip stream ends early (truncated object, or still being uploaded); analysed what was there"
    ]


def _gzip_corrupt_after_first_half(lines: list[str]) -> tuple[bytes, int]:
    """A gzip whose first half is intact and flushed, followed by an invalid deflate block."""
    half = len(lines) // 2
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = compressor.compress(("\n".join(lines[:half]) + "\n").encode())
    head += compressor.flush(zlib.Z_FULL_FLUSH)  # everything so far decodes on its own
    tail = compressor.compress(("\n".join(lines[half:]) + "\n").encode()) + compressor.flush()
    # 0xFF starts a final block of the reserved type 3: "invalid block type", a hard zlib error.
    return head + b"\xff" * 16 + tail[16:], half


def test_corrupt_gzip_in_the_middle_is_partial_and_keeps_earlier_lines() -> None:
    # Given a gzip log whose second half is corrupt, read in 4 KiB chunks
    original = _numbered_lines(2000)
    damaged, intact = _gzip_corrupt_after_first_half(original)
    # When it is read
    lines, stats = _read(_pieces(damaged, 4096))
    # Then the lines read are the start of the log, unchanged (the last may be cut short)
    assert len(lines) > intact // 2
    assert lines[:-1] == original[: len(lines) - 1]
    assert original[len(lines) - 1].startswith(lines[-1])
    # And the read is partial with a note naming the corruption
    assert stats.partial is True
    assert len(stats.notes) == 1
    assert stats.notes[0].startswith("corrupt gzip data after ")
    assert "invalid block type" in stats.notes[0]


@pytest.mark.parametrize(
    "chunk_size",
    [
        7,
        4096,
        # S3 bodies arrive in 1 MiB chunks: most compressed logs are a single chunk.
        CHUNK_SIZE,
    ],
)
def test_corrupt_gzip_in_the_middle_keeps_every_line_before_the_damage(chunk_size: int) -> None:
    # Given a gzip log whose first half is intact (and flushed) and whose second half is corrupt
    original = _numbered_lines(2000)
    damaged, intact = _gzip_corrupt_after_first_half(original)
    # When it is read
    lines, stats = _read(_pieces(damaged, chunk_size))
    # Then every line of the intact first half is yielded, and nothing after the damage
    assert lines == original[:intact]
    assert stats.partial is True


@pytest.mark.parametrize("chunk_size", [1_000_000, 7])
def test_trailing_garbage_after_gzip_is_ignored_with_a_note(chunk_size: int) -> None:
    # Given a complete gzip stream followed by 16 bytes that are not gzip
    data = gzip.compress(SPARK_TEXT) + b"this is not gzip"
    # When it is read
    lines, stats = _read(_pieces(data, chunk_size))
    # Then all lines of the gzip stream come back and the garbage is reported, not parsed
    assert lines == SPARK_LINES
    assert stats.partial is True
    assert len(stats.notes) == 1
    assert re.fullmatch(r"\d+ bytes of non-gzip data after the end of the gzip stream were ignored", stats.notes[0])


def test_trailing_garbage_note_counts_the_bytes_in_one_chunk() -> None:
    # Given a gzip stream and 16 bytes of garbage in one chunk
    data = gzip.compress(SPARK_TEXT) + b"this is not gzip"
    # When it is read
    _, stats = _read([data])
    # Then the note gives the exact count
    assert stats.notes == ["16 bytes of non-gzip data after the end of the gzip stream were ignored"]


# ---------------------------------------------------------------------------------------------------
# Odd content
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunks", [[], [b""], [b"", b"", b""]], ids=["no-chunks", "one-empty", "many-empty"])
def test_empty_input_is_an_empty_log_not_a_partial_read(chunks: list[bytes]) -> None:
    # Given an object with no bytes
    # When it is read
    lines, stats = _read(chunks)
    # Then nothing is yielded, and the note says the log is empty without calling it partial
    assert lines == []
    assert stats.notes == ["empty log"]
    assert stats.partial is False
    assert stats.lines == 0


def test_non_utf8_bytes_are_replaced_and_noted() -> None:
    # Given a log with Latin-1 bytes (a JVM with file.encoding=ISO-8859-1), split inside the bad byte run
    data = b"INFO Caf\xe9 r\xe9sum\xe9 loaded\nINFO next line\n"
    # When it is read
    lines, stats = _read(_pieces(data, 5))
    # Then the undecodable bytes become U+FFFD, the rest of the text survives, and a note says so
    assert lines == ["INFO Caf\ufffd r\ufffdsum\ufffd loaded", "INFO next line"]
    assert stats.notes == ["non-UTF-8 bytes were replaced with U+FFFD"]
    assert stats.partial is False


def test_utf8_characters_split_across_chunks_are_decoded_whole() -> None:
    # Given UTF-8 text whose multi-byte characters straddle 1-byte chunks
    data = "ERROR Zürich → 東京 failed\n".encode()
    # When it is read one byte at a time (after a plain first chunk)
    lines, stats = _read([data[:6], *_pieces(data[6:], 1)])
    # Then no replacement character appears
    assert lines == ["ERROR Zürich → 東京 failed"]
    assert stats.notes == []


ELF_LIKE = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00\x10\x40\x00" * 4000
CONTROL_HEAVY = bytes(i % 32 for i in range(20_000)).replace(b"\n", b"\x01")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ELF_LIKE, id="nul-heavy-executable"),
        pytest.param(CONTROL_HEAVY, id="control-characters"),
        pytest.param(gzip.compress(ELF_LIKE), id="gzip-of-binary"),
        pytest.param(
            random.Random(7).randbytes(64_000),
            id="high-entropy",
        ),
    ],
)
def test_binary_data_is_not_analysed(data: bytes) -> None:
    # Given an object that is not a text log
    # When it is read
    lines, stats = _read(_pieces(data, 4096))
    # Then nothing is yielded, and the read says why
    assert lines == []
    assert stats.partial is True
    assert stats.notes == ["binary data, not a text log: nothing analysed"]


def test_nul_bytes_sprinkled_in_text_are_stripped_and_the_log_is_still_text() -> None:
    # Given a text log with a stray NUL about every 200 bytes (a process writing C strings to stderr)
    original = _numbered_lines(300)
    data = "\n".join(f"{line}\x00" if i % 2 == 0 else line for i, line in enumerate(original)).encode()
    assert 0 < data.count(0) < len(data) // 150
    # When it is read
    lines, stats = _read(_pieces(data, 1000))
    # Then the NULs are gone and every line is there
    assert lines == original
    assert stats.partial is False
    assert all("\x00" not in line for line in lines)


def test_crlf_line_endings_are_removed_even_when_split_across_chunks() -> None:
    # Given a log with Windows line endings, chunked so a CR and its LF land in different chunks
    data = b"INFO first\r\nWARN second\r\nERROR third\r\n"
    # When it is read
    lines, _ = _read([data[:11], data[11:]])
    # Then no line keeps a trailing CR
    assert data[10:12] == b"\r\n"
    assert lines == ["INFO first", "WARN second", "ERROR third"]


def test_last_line_without_newline_is_yielded() -> None:
    # Given a log whose last line has no line ending (the process was killed mid-write)
    lines, stats = _read([b"INFO one\nERROR killed mid-wri"])
    # Then the last line is still read
    assert lines == ["INFO one", "ERROR killed mid-wri"]
    assert stats.lines == 2


# ---------------------------------------------------------------------------------------------------
# Long lines and budgets
# ---------------------------------------------------------------------------------------------------
def test_a_10_mb_line_is_cut_and_the_next_line_is_still_read_in_bounded_memory() -> None:
    # Given a log with an 11 MiB line (a serialized plan or a base64 blob), streamed in 64 KiB chunks
    piece = b"x" * 65_536

    def chunks() -> Iterator[bytes]:
        yield b"INFO before the long line\n"
        for _ in range(176):
            yield piece
        yield b"\nERROR after the long line\n"

    # When it is read with a 1,000-character line limit
    tracemalloc.start()
    try:
        lines, stats = _read(chunks(), max_line_chars=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the long line is cut to the limit and marked, and the next line is intact
    assert lines == ["INFO before the long line", "x" * 1000 + TRUNCATION_MARK, "ERROR after the long line"]
    assert stats.truncated_lines == 1
    assert stats.notes == ["1 over-long line(s) cut to 1,000 characters"]
    assert stats.partial is False
    assert stats.bytes_out == 26 + 176 * 65_536 + 27
    # And memory stays a few chunks' worth, not the size of the line
    assert peak < 2 * 1024 * 1024


def test_a_long_line_inside_gzip_uses_the_default_limit() -> None:
    # Given a gzip log with a 10 MB line between two short ones
    data = gzip.compress(b"start\n" + b"y" * 10_000_000 + b"\nend\n", compresslevel=1)
    # When it is read with default settings
    lines, stats = _read(_pieces(data, 65_536))
    # Then the line is cut at 16,384 characters
    assert [len(line) for line in lines] == [5, 16_384 + len(TRUNCATION_MARK), 3]
    assert lines[1].endswith(TRUNCATION_MARK)
    assert stats.truncated_lines == 1


def test_a_line_exactly_at_the_limit_is_not_cut() -> None:
    # Given lines of exactly 10 and 11 characters with a 10-character limit
    lines, stats = _read([b"0123456789\n0123456789A\n"], max_line_chars=10)
    # Then only the longer one is cut
    assert lines == ["0123456789", "0123456789" + TRUNCATION_MARK]
    assert stats.truncated_lines == 1


def test_a_crlf_line_exactly_at_the_limit_is_not_cut() -> None:
    # Given a CRLF line of exactly the limit
    lines, stats = _read([b"0123456789\r\nnext\r\n"], max_line_chars=10)
    # Then it is not cut (the CR is a line ending, not content)
    assert lines == ["0123456789", "next"]
    assert stats.truncated_lines == 0


def test_read_budget_stops_the_read_with_a_note() -> None:
    # Given a 100-line log and a budget of 10 lines' worth of bytes
    original = [f"INFO line {i:04d}" for i in range(100)]  # 14 characters + newline
    data = ("\n".join(original) + "\n").encode()
    # When it is read
    lines, stats = _read(_pieces(data, 64), max_bytes=150)
    # Then exactly the budget is decoded: ten lines, and nothing of the rest
    assert lines == original[:10]
    assert stats.bytes_out == 150
    # And the read is partial, saying why
    assert stats.partial is True
    assert stats.notes == ["read budget of 150 bytes reached; the rest of the log was not analysed"]


def _single_member_gzip(block: bytes, repeat: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(block) for _ in range(repeat)) + compressor.flush()


def test_gzip_bomb_of_text_stops_at_the_budget_without_inflating_it_all() -> None:
    # Given ~100 KB of gzip that inflates to 50 MiB of log text
    line = b"23/05/04 10:00:00 INFO BlockManager: cached block rdd_1_1 in memory\n"
    bomb = _single_member_gzip(line * ((1 << 20) // len(line) + 1), 50)
    assert len(bomb) < 200_000
    # When it is read in 1 KiB chunks with a 1 MiB budget
    started = time.perf_counter()
    lines, stats = _read(_pieces(bomb, 1024), max_bytes=1 << 20)
    elapsed = time.perf_counter() - started
    # Then it stops at the budget, having consumed only the start of the compressed stream
    assert stats.bytes_out == 1 << 20
    assert stats.bytes_in < len(bomb) // 4
    assert stats.partial is True
    assert stats.notes == ["read budget of 1,048,576 bytes reached; the rest of the log was not analysed"]
    assert len(lines) == (1 << 20) // len(line) + 1
    assert elapsed < 2.0


def test_gzip_bomb_of_zeros_stops_early() -> None:
    # Given 50 MiB of zeros compressed to ~50 KB
    bomb = _single_member_gzip(b"\x00" * (1 << 20), 50)
    assert len(bomb) < 100_000
    # When it is read with a small budget
    lines, stats = _read(_pieces(bomb, 1024), max_bytes=1 << 20)
    # Then nothing is yielded, and only the first kilobytes of the compressed stream were pulled
    assert lines == []
    assert stats.partial is True
    assert stats.bytes_in <= 8 * 1024
    assert stats.bytes_out <= 1 << 20


def test_damage_beyond_the_replay_window_loses_at_most_one_slice_and_says_so(
    inflater: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gzip log whose intact first half is longer than the compressed bytes kept for a replay
    from emr_triage.logs import reader

    monkeypatch.setattr(reader, "_RETAIN_LIMIT", 4096)
    original = _numbered_lines(20_000)
    damaged, intact = _gzip_corrupt_after_first_half(original)
    # When it is read
    lines, stats = _read(_pieces(damaged, CHUNK_SIZE))
    # Then the lines read are the start of the log, unchanged, and at most one input slice short of the
    # damage with ISA-L (zlib-ng alone keeps every line)
    assert lines[:-1] == original[: len(lines) - 1]
    assert stats.partial
    if inflater == "isal":
        lines_per_compressed_byte = len(original) / len(damaged)
        assert intact - len(lines) <= reader._INFLATE_INPUT * lines_per_compressed_byte
        assert "except up to 64 KiB of compressed data just before the damage" in stats.notes[0]
    else:
        assert len(lines) == intact
