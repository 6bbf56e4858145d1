"""Find, in a block of log text, every place one of many literals occurs (caselessly).

This is where the analyser spends its time on a multi-gigabyte log: every byte passes through here once,
and only the few lines with a hit are decoded and matched against the rules' regular expressions.

Two interchangeable backends:

- :class:`HyperscanScanner`: Intel's Hyperscan (Vectorscan on arm64) through the ``hyperscan`` wheel: all
  literals in one SIMD pass, in C, several GB/s.
- :class:`PythonScanner`: ``bytes.lower()`` then ``bytes.find`` per literal: no dependency, about 20x
  slower; used when hyperscan cannot be imported, and by the tests as the reference the fast one must
  agree with.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from emr_triage.cache import write_atomically


def _simd_counter() -> Callable[[bytes, bytes, int, int], int] | None:
    """StringZilla's SIMD substring count (~7x faster than ``bytes.count``, which checks one byte at a
    time), or None when it is not installed."""
    try:
        from stringzilla import count
    except ImportError:  # pragma: no cover - stringzilla ships in the layer; bytes.count counts the same
        return None
    return cast("Callable[[bytes, bytes, int, int], int]", count)


_sz_count = _simd_counter()


def count_newlines(data: bytes, start: int = 0, end: int | None = None) -> int:
    """The line breaks in ``data[start:end]``, as ``data.count(b"\\n", start, end)`` counts them.

    Counting every line break of the text is, after inflating and the literal scan, the biggest piece of
    a big log's scan: StringZilla does it with SIMD when installed, ``bytes.count`` otherwise.
    """
    stop = len(data) if end is None else end
    if _sz_count is None:
        return data.count(b"\n", start, stop)
    return _sz_count(data, b"\n", start, stop)


class LiteralScanner(Protocol):
    """Finds literals in blocks of bytes."""

    name: str

    def scan(self, block: bytes) -> list[tuple[int, int]]:
        """``(end offset, literal index)`` of every occurrence; an occurrence ends before ``end offset``."""
        ...


class PythonScanner:
    """The reference scanner: ASCII case folding, then one substring search per literal."""

    name = "python"

    def __init__(self, literals: Sequence[bytes]) -> None:
        self._literals = [literal.lower() for literal in literals]

    def scan(self, block: bytes) -> list[tuple[int, int]]:
        lowered = block.lower()
        hits: list[tuple[int, int]] = []
        for index, literal in enumerate(self._literals):
            start = lowered.find(literal)
            while start >= 0:
                hits.append((start + len(literal), index))
                start = lowered.find(literal, start + 1)
        hits.sort()
        return hits


class HyperscanScanner:
    """All literals at once with Hyperscan, caseless (ASCII), reporting every occurrence."""

    name = "hyperscan"

    def __init__(self, literals: Sequence[bytes], cache_dir: Path | None = None) -> None:
        import hyperscan

        self._database: Any = _database(hyperscan, literals, cache_dir)
        self._scratch_type: Any = hyperscan.Scratch
        # Hyperscan's scratch space serves one scan at a time: one per thread (Lambda runs one invocation
        # per process, but the replay command, the tests and the load bench run handlers in threads).
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch_type(self._database)
        return scratch

    def scan(self, block: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []
        append = hits.append

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> bool:
            append((end, index))
            return False  # keep scanning

        self._database.scan(block, match_event_handler=on_match, scratch=self._scratch())
        hits.sort()
        return hits


# A line with a hit: its start and end offsets in the block, the line breaks before it in the block, and
# the indexes of the literals that hit on it.
Candidate = tuple[int, int, int, set[int]]


@dataclass(slots=True)
class ScannedBlock:
    """A block of text, its line breaks, and the lines in it where literals hit (in line order)."""

    data: bytes
    newlines: int
    candidates: list[Candidate]


def scan_block(scanner: LiteralScanner, data: bytes) -> ScannedBlock:
    """Find the literals in ``data``, the lines they hit and those lines' places, in one pass.

    The bytes work of a block, apart from the decoding of the lines that hit: it needs no state from the
    blocks before, so it can run on any thread, ahead of the ordered part of the scan. Every line break
    is counted once, each stretch between two candidate lines with one :func:`count_newlines`.
    """
    hits = scanner.scan(data)
    if not hits:
        return ScannedBlock(data, count_newlines(data), [])
    count = _sz_count or bytes.count  # the same arguments: (data, b"\n", start, end)
    rfind, find = data.rfind, data.find
    candidates: list[Candidate] = []
    indexes: set[int] = set()
    line_end = -1
    counted_at = counted = 0
    for end, index in hits:
        if end - 1 <= line_end:  # a literal may end with its line's break ("failed\n")
            indexes.add(index)
            continue
        start = rfind(b"\n", 0, end - 1) + 1
        line_end = find(b"\n", end - 1)
        if line_end < 0:
            line_end = len(data)
        counted += count(data, b"\n", counted_at, start)
        counted_at = start
        indexes = {index}
        candidates.append((start, line_end, counted, indexes))
    return ScannedBlock(data, counted + count(data, b"\n", counted_at, len(data)), candidates)


_DB_MAGIC = b"emr-triage hyperscan database 1\n"


def _database(hyperscan: Any, literals: Sequence[bytes], cache_dir: Path | None) -> Any:
    """The compiled database for these literals: read back from ``cache_dir`` when it holds the one for
    exactly this literal set and Hyperscan version, else compiled (and kept there for the next process).

    Compiling takes a noticeable part of a command's start-up; reading one back takes a millisecond. Any
    problem with the cache (missing, unreadable, stale, damaged, from another CPU) means compiling; a
    cache that cannot be written is skipped.
    """
    key = hashlib.sha256(b"\0".join([str(hyperscan.__version__).encode(), *literals])).hexdigest().encode()
    path = cache_dir / "hyperscan.db" if cache_dir is not None else None
    if path is not None:
        try:
            raw = path.read_bytes()
            head = _DB_MAGIC + key + b"\n"
            digest, payload = raw[len(head) : len(head) + 64], raw[len(head) + 65 :]
            if raw.startswith(head) and digest == hashlib.sha256(payload).hexdigest().encode():
                return hyperscan.loadb(payload, hyperscan.HS_MODE_BLOCK)
        except Exception:  # noqa: S110 - any problem with the cache means compiling
            pass
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=[_hyperscan_literal(literal) for literal in literals],
        ids=list(range(len(literals))),
        elements=len(literals),
        flags=[hyperscan.HS_FLAG_CASELESS] * len(literals),
    )
    if path is not None:
        try:
            payload = hyperscan.dumpb(database)
            write_atomically(
                path, b"".join((_DB_MAGIC, key, b"\n", hashlib.sha256(payload).hexdigest().encode(), b"\n", payload))
            )
        except Exception:  # noqa: S110 - a cache that cannot be written is no cache
            pass
    return database


def _hyperscan_literal(literal: bytes) -> bytes:
    """A literal as a Hyperscan (PCRE syntax) expression: every byte that is not a letter or digit is
    written as a hex escape, so no byte can be read as syntax."""
    return b"".join(
        bytes([b]) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else b"\\x%02x" % b for b in literal
    )


def make_scanner(literals: Sequence[str], backend: str | None = None, cache_dir: Path | None = None) -> LiteralScanner:
    """The fastest scanner available for these literals.

    Parameters
    ----------
    literals:
        Text to find; matched caselessly (ASCII), as UTF-8 bytes.
    backend:
        ``"hyperscan"``, ``"python"`` or ``None``/``"auto"`` (hyperscan when it can be imported).
    cache_dir:
        Where the compiled Hyperscan database is kept between processes (the command line's start-up);
        ``None``: compiled in memory only.
    """
    encoded = [literal.encode("utf-8") for literal in literals]
    choice = (backend or "auto").lower()
    if choice not in ("auto", "hyperscan", "python"):
        raise ValueError(f"scanner {choice!r}: expected auto, hyperscan or python")
    if choice == "python":
        return PythonScanner(encoded)
    try:
        return HyperscanScanner(encoded, cache_dir)
    except ImportError:
        if choice == "hyperscan":
            raise
        return PythonScanner(encoded)
