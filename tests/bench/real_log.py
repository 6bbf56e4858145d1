"""A 1 GiB gzip log made of real log text, for `make bench` (generated, cached, never committed).

The text is every whole log in ``tests/corpus/`` (``wholelogs/``: files real jobs committed to public
repositories; ``spark_runs/``: real Spark 3.5 runs), in path order, repeated until 1 GiB (the excerpts and
fixtures are left out: they are nearly all failure lines, which bulk log text is not); or, when
``BENCH_REAL_LOGS`` names a folder, every file in it (e.g. the public loghub Spark and Hadoop logs, which
may not be committed here). Each file's text ends with a line break; the last repetition is cut at one.
It is gzip level 6, one member, as EMR's log pusher writes it, cached under ``tests/bench/.data/`` by the
sources' names, sizes and times.

Run alone: ``python tests/bench/real_log.py`` prints the cached file's path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / ".data"
GIB = 1 << 30
COMPRESS_LEVEL = 6  # EMR's log pusher
GENERATOR_VERSION = 1
_PIECE = 4 << 20
_KEEP_LIMIT = 256 << 20  # one pass of source text at most this big is kept in memory


@dataclass(frozen=True)
class RealLog:
    path: Path
    uncompressed_bytes: int
    compressed_bytes: int
    lines: int
    sources: int
    source_bytes: int
    origin: str
    generated_seconds: float | None  # None when reused from the cache


def real_sources() -> tuple[list[Path], str]:
    """The files the text comes from, and where they were looked for."""
    folder = os.environ.get("BENCH_REAL_LOGS", "").strip()
    if folder:
        files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
        return files, f"$BENCH_REAL_LOGS ({folder})"
    files = sorted(
        {
            p
            for where in ("tests/corpus/wholelogs", "tests/corpus/spark_runs")
            for pattern in ("*.log", "*.log.gz")
            for p in (ROOT / where).rglob(pattern)
            if p.is_file()
        }
    )
    return files, "the corpus's whole logs (tests/corpus/wholelogs, tests/corpus/spark_runs)"


def _pieces(path: Path) -> Iterator[bytes]:
    """A file's text in pieces (inflated when it is gzip, by its magic bytes), ending with a line break."""
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    last = b"\n"
    with gzip.open(path, "rb") if gz else path.open("rb") as handle:
        while piece := handle.read(_PIECE):
            last = piece[-1:]
            yield piece
    if last != b"\n":
        yield b"\n"


def _compressor() -> object:
    try:
        from zlib_ng import zlib_ng  # the same format as zlib, about 3x faster to write

        return zlib_ng.compressobj(COMPRESS_LEVEL, zlib_ng.DEFLATED, 31)
    except ImportError:
        return zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)


def _repeated(files: list[Path], target: int) -> Iterator[bytes]:
    """The files' text over and over, up to ``target`` bytes, cut at a line break. One pass of text that
    fits in memory is read once and repeated from there; more is read again on every pass."""
    kept: list[bytes] | None = []
    kept_bytes = written = 0
    while True:
        before = written
        for piece in _one_pass(files) if kept is None or written == 0 else iter(kept):
            room = target - written
            if len(piece) > room:
                yield piece[: piece.rfind(b"\n", 0, room) + 1]
                return
            written += len(piece)
            yield piece
            if kept is not None and before == 0:
                kept.append(piece)
                kept_bytes += len(piece)
                if kept_bytes > _KEEP_LIMIT:
                    kept = None
        if written == before:  # only empty files
            return


def _one_pass(files: list[Path]) -> Iterator[bytes]:
    for source in files:
        yield from _pieces(source)


def generate(path: Path, files: list[Path], target: int) -> tuple[int, int]:
    """Write the log to ``path``; returns (uncompressed bytes, lines)."""
    compressor = _compressor()
    written = lines = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        for piece in _repeated(files, target):
            handle.write(compressor.compress(piece))  # type: ignore[attr-defined]
            written += len(piece)
            lines += piece.count(b"\n")
        handle.write(compressor.flush())  # type: ignore[attr-defined]
    os.replace(tmp, path)
    return written, lines


def real_log(target: int = GIB, *, log: Callable[[str], None] | None = None) -> RealLog:
    """The cached real-text log of about ``target`` uncompressed bytes, generated on first use.

    Raises
    ------
    SystemExit
        When there is no source text at all.
    """
    files, origin = real_sources()
    if not files:
        raise SystemExit(f"no real log text found in {origin}")
    stats = [(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p), p.stat()) for p in files]
    source_bytes = sum(s.st_size for _, s in stats)
    key = hashlib.sha256(
        json.dumps([GENERATOR_VERSION, target, [(n, s.st_size, s.st_mtime_ns) for n, s in stats]]).encode()
    ).hexdigest()[:16]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path, meta_path = DATA_DIR / f"real-{key}.log.gz", DATA_DIR / f"real-{key}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("compressed_bytes") == path.stat().st_size:
            return RealLog(
                path,
                meta["uncompressed_bytes"],
                meta["compressed_bytes"],
                meta["lines"],
                len(files),
                source_bytes,
                origin,
                None,
            )
    for stale in DATA_DIR.glob("real-*"):
        stale.unlink()  # other sources, or an older generator
    if log:
        log(f"generating {path.name} from {len(files)} file(s) of {origin} ({target / 1e6:.0f} MB uncompressed)")
    start = time.perf_counter()
    uncompressed, lines = generate(path, files, target)
    seconds = time.perf_counter() - start
    compressed = path.stat().st_size
    meta_path.write_text(
        json.dumps({"uncompressed_bytes": uncompressed, "compressed_bytes": compressed, "lines": lines}) + "\n"
    )
    return RealLog(path, uncompressed, compressed, lines, len(files), source_bytes, origin, seconds)


if __name__ == "__main__":
    print(real_log(log=print))
