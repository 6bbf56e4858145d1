"""Stream text lines out of log bytes: gzip or plain, in chunks, with memory independent of size.

Nothing here raises on bad input. Corrupt or truncated gzip, binary data, non-UTF-8 bytes, giant lines
and read budgets end or shorten the read and are recorded in :class:`ReadStats` (``partial`` + ``notes``),
so the caller analyses what could be read and says what could not.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE = 1 << 20
# Decompress at most this much per call so a tiny "gzip bomb" never inflates all at once. About one scan
# block: a call per block rather than two is fewer Python steps and fewer pieces to join into blocks.
_INFLATE_STEP = 1 << 20
# Compressed bytes of one gzip member kept to replay a damaged stretch exactly (see _inflate).
_RETAIN_LIMIT = 8 << 20
# Feed the inflater this much compressed input at a time: its output then stays in the CPU cache.
_INFLATE_INPUT = 1 << 16
MAX_LINE_BYTES = 1 << 20
BLOCK_BYTES = 1 << 20  # whole lines gathered into one block for the scan
PIECE_OVERLAP = 4096  # bytes a piece of an over-long line repeats from the piece before
_SNIFF_BYTES = 8192
_NUL_HOLD = 1 << 20
_SALVAGE_SLICE = 64
TRUNCATION_MARK = " …[line truncated]"


def _isal() -> ModuleType | None:
    """ISA-L's zlib-compatible inflater when installed (it ships in the layer), else None."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - the fallback is zlib-ng with exact salvage
        return None


def _zlib() -> ModuleType:
    """zlib-ng when installed (the same API and results as zlib, about twice as fast to inflate), else zlib."""
    try:
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:  # pragma: no cover - zlib-ng ships in the layer; plain zlib is the fallback
        return zlib


@dataclass
class ReadStats:
    """Counters and notes of one read. ``partial`` means some of the log was not analysed."""

    compressed: bool = False
    bytes_in: int = 0
    bytes_out: int = 0
    lines: int = 0
    truncated_lines: int = 0
    long_lines: int = 0
    partial: bool = False
    notes: list[str] = field(default_factory=list)

    def stop(self, note: str) -> None:
        self.partial = True
        self.notes.append(note)


def _looks_binary(sample: bytes) -> bool:
    """True when the first bytes are clearly not text: NULs, mostly control characters, or bytes that are
    mostly invalid UTF-8 (compressed, encrypted or otherwise high-entropy data; Latin-1 text with a few
    accented letters stays well below the threshold)."""
    if not sample:
        return False
    nul = sample.count(0)
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    if nul > len(sample) // 100 or control > len(sample) * 3 // 10:
        return True
    # Ignore a character cut at the end of the sample.
    invalid = sample[:-4].decode("utf-8", errors="replace").count("\ufffd") if len(sample) > 4 else 0
    return invalid > len(sample) // 10


def _sliced(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if len(chunk) <= _INFLATE_INPUT:
            yield chunk
        else:
            view = memoryview(chunk)
            for start in range(0, len(chunk), _INFLATE_INPUT):
                yield bytes(view[start : start + _INFLATE_INPUT])


def _salvage(decompressor: Any, data: bytes) -> bytes:
    """Decompress ``data`` from a saved state, keeping everything that precedes the damage.

    zlib discards the whole output of a ``decompress()`` call that hits corrupt data. Replaying the same
    input in small slices, and the slice that fails byte by byte, recovers the intact lines before it.
    """
    recovered = bytearray()

    def feed(piece: bytes) -> None:
        recovered.extend(decompressor.decompress(piece, _INFLATE_STEP))
        while decompressor.unconsumed_tail:
            recovered.extend(decompressor.decompress(decompressor.unconsumed_tail, _INFLATE_STEP))

    for start in range(0, len(data), _SALVAGE_SLICE):
        piece = data[start : start + _SALVAGE_SLICE]
        before = decompressor.copy()
        try:
            feed(piece)
        except (zlib.error, _zlib().error):
            decompressor = before
            for offset in range(len(piece)):
                try:
                    feed(piece[offset : offset + 1])
                except (zlib.error, _zlib().error):
                    break
            break
        if decompressor.eof:
            break
    return bytes(recovered)


def _inflate(chunks: Iterable[bytes], stats: ReadStats) -> Iterator[bytes]:
    """Yield decompressed bytes of a (possibly multi-member) gzip stream, noting where it breaks.

    ISA-L (``isal``) inflates about 1.5x faster than zlib-ng but cannot copy its state, which the
    byte-exact salvage of a damaged stream needs. So the fast path keeps the compressed bytes of the
    current gzip member (up to ``_RETAIN_LIMIT``) and, if ISA-L hits damage, replays them with zlib-ng to
    recover every line before it; past that limit, at most one input slice before the damage is lost.
    """
    fast = _isal()
    if fast is None:
        yield from _inflate_with(_zlib(), chunks, stats, exact=True)
    else:
        yield from _inflate_with(fast, chunks, stats, exact=False)


def _inflate_precisely(chunks: Iterable[bytes], stats: ReadStats) -> Iterator[bytes]:
    """:func:`_inflate` with zlib-ng (or zlib): slower, but it keeps every byte before damage."""
    return _inflate_with(_zlib(), chunks, stats, exact=True)


def _inflate_with(inflater: ModuleType, chunks: Iterable[bytes], stats: ReadStats, *, exact: bool) -> Iterator[bytes]:
    """The inflate loop. ``exact``: the inflater can copy its state, and damage is salvaged byte by byte
    from the state saved before each call; otherwise the current member's compressed bytes are kept (up
    to ``_RETAIN_LIMIT``) and replayed with zlib-ng when damage is hit."""
    decompressor = inflater.decompressobj(wbits=31)
    member = bytearray()  # compressed bytes of the current member, while under _RETAIN_LIMIT
    retaining = not exact
    produced = 0  # bytes yielded from the current member
    for data in _sliced(chunks):
        if retaining:
            member += data
            if len(member) > _RETAIN_LIMIT:
                retaining, member = False, bytearray()
        while data:
            saved = decompressor.copy() if exact else None
            try:
                out = decompressor.decompress(data, _INFLATE_STEP)
            except inflater.error as exc:
                if saved is not None:
                    salvaged = _salvage(saved, data)
                    if salvaged:
                        yield salvaged
                    stats.stop(
                        f"corrupt gzip data after {stats.bytes_in:,} compressed bytes ({exc}); analysed what came "
                        "before"
                    )
                elif retaining:
                    replay = ReadStats()
                    recovered = b"".join(_inflate_precisely([bytes(member)], replay))
                    if len(recovered) > produced:
                        yield recovered[produced:]
                    stats.stop(_corrupt_note(stats, replay, exc))
                else:
                    stats.stop(
                        f"corrupt gzip data after {stats.bytes_in:,} compressed bytes ({exc}); analysed what came "
                        f"before, except up to {_INFLATE_INPUT // 1024} KiB of compressed data just before the damage"
                    )
                return
            if out:
                produced += len(out)
                yield out
            if decompressor.unconsumed_tail:
                data = decompressor.unconsumed_tail
                continue
            if decompressor.eof:
                rest = decompressor.unused_data
                if not rest:
                    data = b""
                elif rest.startswith(GZIP_MAGIC) or (len(rest) == 1 and rest == GZIP_MAGIC[:1]):
                    # Concatenated gzip members are valid gzip: start the next member.
                    decompressor = inflater.decompressobj(wbits=31)
                    data = rest
                    member, retaining, produced = bytearray(b"" if exact else rest), not exact, 0
                else:
                    stats.stop(f"{len(rest)} bytes of non-gzip data after the end of the gzip stream were ignored")
                    return
            else:
                data = b""
    if not decompressor.eof and (decompressor.unconsumed_tail or stats.bytes_in):
        stats.stop("gzip stream ends early (truncated object, or still being uploaded); analysed what was there")


_CORRUPT_DETAIL = re.compile(r"^corrupt gzip data after [\d,]+ compressed bytes \((.*)\); analysed")


def _corrupt_note(stats: ReadStats, replay: ReadStats, exc: Exception) -> str:
    """The note for damage found by ISA-L, with zlib's own wording of it when the replay found it too."""
    found = next((m for n in replay.notes if (m := _CORRUPT_DETAIL.search(n))), None)
    detail = found[1] if found else str(exc)
    return f"corrupt gzip data after {stats.bytes_in:,} compressed bytes ({detail}); analysed what came before"


def _counted(chunks: Iterable[bytes], stats: ReadStats) -> Iterator[bytes]:
    for chunk in chunks:
        stats.bytes_in += len(chunk)
        yield chunk


def iter_log_lines(
    chunks: Iterable[bytes],
    *,
    max_bytes: int = 1 << 30,
    max_line_chars: int = 16_384,
    stats: ReadStats | None = None,
) -> Iterator[str]:
    """Yield the text lines of a log given as an iterable of byte chunks.

    Parameters
    ----------
    chunks:
        The raw object (e.g. an S3 body's ``iter_chunks()``), gzip-compressed or not: gzip is detected
        by its magic bytes, not by the file name.
    max_bytes:
        Budget of decompressed bytes to read; beyond it the read stops and is flagged partial.
    max_line_chars:
        Longer lines are cut to this length (marked with ``…[line truncated]``) and the rest skipped.
    stats:
        Filled in as the read goes; pass one to learn bytes, lines and why a read was partial.

    Yields
    ------
    str
        Each line without its line ending. Undecodable bytes become U+FFFD.
    """
    stats = stats if stats is not None else ReadStats()
    text = _decode(_open(chunks, stats, max_bytes), stats)
    yield from _split_lines(text, max_line_chars, stats)
    if stats.bytes_out == 0 and not stats.partial:
        stats.notes.append("empty log")
    if stats.truncated_lines:
        stats.notes.append(f"{stats.truncated_lines} over-long line(s) cut to {max_line_chars:,} characters")


def iter_text_blocks(
    chunks: Iterable[bytes],
    *,
    max_bytes: int = 1 << 30,
    max_line_bytes: int = MAX_LINE_BYTES,
    stats: ReadStats | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[bytes]:
    """Yield the decompressed text of a log as byte blocks that end at a line break.

    The fast path of the analyser: it searches whole blocks at once and only decodes the lines it needs.
    A line longer than ``max_line_bytes`` is passed on in pieces of that size (a block that does not end
    in a line break), so a 50 MB line costs no more memory than a 1 MB one and nothing in it goes unread.

    Parameters
    ----------
    chunks, max_bytes, stats:
        As for :func:`iter_log_lines`.
    max_line_bytes:
        The most bytes of one line held at a time.
    block_bytes:
        Whole lines are gathered into blocks of about this size (each block costs the scan a few Python
        steps, whatever its size).

    Yields
    ------
    bytes
        Blocks of at most about ``block_bytes`` + ``max_line_bytes``; line breaks are left in.
    """
    stats = stats if stats is not None else ReadStats()
    lines: list[bytes | memoryview] = []  # whole lines not passed on yet, copied into one block when enough
    size = 0
    carry = b""  # the start of a line whose end has not come yet
    in_long_line = False
    for data in _open(chunks, stats, max_bytes):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry += data
            if len(carry) >= max_line_bytes:
                if lines:
                    yield _joined(lines)
                    lines, size = [], 0
                if not in_long_line:
                    stats.long_lines += 1
                    in_long_line = True
                yield carry
                # The next piece starts with the end of this one, so text cut in two here is still whole
                # in one of them (it may then be counted twice: a giant line is rare, a lost cause is not).
                carry = carry[-PIECE_OVERLAP:]
            continue
        in_long_line = False
        if carry:
            lines.append(carry)
        lines.append(data if cut == len(data) else memoryview(data)[:cut])
        size += len(carry) + cut
        carry = data[cut:]
        if size >= block_bytes:
            yield _joined(lines)
            lines, size = [], 0
    if lines:
        yield _joined(lines)
    if carry:
        yield carry
    if stats.bytes_out == 0 and not stats.partial:
        stats.notes.append("empty log")
    if stats.long_lines:
        stats.notes.append(f"{stats.long_lines} line(s) over {max_line_bytes:,} bytes were read in pieces")


def _joined(parts: list[bytes | memoryview]) -> bytes:
    """The parts as one bytes object: copied once, or not at all when there is only one."""
    first = parts[0]
    return first if len(parts) == 1 and isinstance(first, bytes) else b"".join(parts)


def _open(chunks: Iterable[bytes], stats: ReadStats, max_bytes: int) -> Iterator[bytes]:
    """The log's text as bytes: decompressed when it is gzip, checked to be text, within the byte budget."""
    source = iter(_counted(chunks, stats))
    first = b""
    for chunk in source:
        first += chunk
        if len(first) >= len(GZIP_MAGIC):  # the magic may straddle tiny first chunks
            break
    if not first:
        return

    def _rejoin() -> Iterator[bytes]:
        yield first
        yield from source

    stream: Iterable[bytes]
    if first.startswith(GZIP_MAGIC):
        stats.compressed = True
        stream = _inflate(_rejoin(), stats)
    else:
        stream = _rejoin()
    yield from _within_budget(_text_only(stream, stats), max_bytes, stats)


def _text_only(stream: Iterable[bytes], stats: ReadStats) -> Iterator[bytes]:
    """Pass the bytes through once the first few KiB (after any leading NULs) look like text; stop on
    binary data."""
    pieces = iter(stream)
    head = bytearray()
    nuls = 0  # leading NULs not passed on yet
    for data in pieces:
        if not head:
            # A log truncated while its writer kept its offset (logrotate's copytruncate) starts with a run
            # of NULs: judge the text after it. The NULs pass on once it is judged text (the budget counts
            # them; lines drop them); a long run passes on as it comes, so the budget still bounds it.
            text = data.lstrip(b"\x00")
            nuls += len(data) - len(text)
            if nuls > _NUL_HOLD:
                yield bytes(nuls)
                nuls = 0
            data = text
        head += data
        if len(head) >= _SNIFF_BYTES:
            break
    if _looks_binary(bytes(head[:_SNIFF_BYTES])):
        stats.stop("binary data, not a text log: nothing analysed")
        return
    if nuls:
        yield bytes(nuls)
    if head:
        yield bytes(head)
    yield from pieces


def _within_budget(stream: Iterable[bytes], max_bytes: int, stats: ReadStats) -> Iterator[bytes]:
    for data in stream:
        room = max_bytes - stats.bytes_out
        if len(data) > room:
            stats.bytes_out += max(room, 0)
            if room > 0:
                yield data[:room]
            stats.stop(f"read budget of {max_bytes:,} bytes reached; the rest of the log was not analysed")
            return
        stats.bytes_out += len(data)
        yield data


def _decode(stream: Iterable[bytes], stats: ReadStats) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    replaced = False
    for data in stream:
        if b"\x00" in data:
            data = data.replace(b"\x00", b"")
        text = decoder.decode(data)
        if not replaced and "\ufffd" in text:
            replaced = True
            stats.notes.append("non-UTF-8 bytes were replaced with U+FFFD")
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        if not replaced and "\ufffd" in tail:
            stats.notes.append("non-UTF-8 bytes were replaced with U+FFFD")
        yield tail


def _split_lines(texts: Iterable[str], max_line_chars: int, stats: ReadStats) -> Iterator[str]:
    """Split decoded text into lines; cut over-long lines and skip the rest of them."""
    pending: list[str] = []
    pending_len = 0
    skipping = False  # inside the remainder of a line already emitted as truncated
    for text in texts:
        start = 0
        while True:
            newline = text.find("\n", start)
            piece = text[start:] if newline < 0 else text[start:newline]
            if not skipping:
                pending.append(piece)
                pending_len += len(piece)
                # One character of slack: a line of exactly the limit may still end in "\r\n".
                if pending_len > max_line_chars + 1:
                    line = "".join(pending)[:max_line_chars]
                    pending, pending_len = [], 0
                    stats.truncated_lines += 1
                    stats.lines += 1
                    yield line + TRUNCATION_MARK
                    skipping = True
            if newline < 0:
                break
            if skipping:
                skipping = False
            else:
                line = "".join(pending)
                pending, pending_len = [], 0
                line = line[:-1] if line.endswith("\r") else line
                if len(line) > max_line_chars:
                    stats.truncated_lines += 1
                    line = line[:max_line_chars] + TRUNCATION_MARK
                stats.lines += 1
                yield line
            start = newline + 1
    if pending and not skipping:
        line = "".join(pending)
        line = line[:-1] if line.endswith("\r") else line
        if len(line) > max_line_chars:
            stats.truncated_lines += 1
            line = line[:max_line_chars] + TRUNCATION_MARK
        if line:
            stats.lines += 1
            yield line


def iter_file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read a local file in chunks (for the command line and tests)."""
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk
