"""Walking back from an exception line to the log record that printed it (its level, whether it is
uncaught), over the lines of a block and the tail of the one before.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from emr_triage.analysis.record import bound_line
from emr_triage.analysis.text import CONTINUATION, EXCEPTION_HEADLINE, LEVEL

# An exception log4j printed under a WARN record was caught and logged as a warning. (Under INFO it is
# more likely an uncaught exception printed after an unrelated line, e.g. by spark-shell.)
QUIET_LEVELS = frozenset({"WARN", "WARNING"})


RECORD_LOOKBACK = 40  # lines walked back from an exception line to the log record that printed it


# The end of the text before a block, for the walk back from a match at its start: room for the
# RECORD_LOOKBACK lines of a long stack, so a block boundary inside one changes nothing.
TAIL_BYTES = 64 << 10


def unchanged_line(line: str) -> str:
    return line


def decode_line(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:-1] if text.endswith("\r") else text


def block_tail(previous: bytes, data: bytes) -> bytes:
    """The last ``TAIL_BYTES`` of the text so far (``previous``, then ``data``), from a line's start."""
    joined = previous + data if len(data) < TAIL_BYTES else data
    if len(joined) <= TAIL_BYTES:
        return joined
    tail = joined[-TAIL_BYTES:]
    # A line cut at its front has lost its timestamp and level, and would be misread: drop it.
    newline = tail.find(b"\n", 0, len(tail) - 1)
    return tail[newline + 1 :] if newline >= 0 else tail


IPYTHON_TRACEBACK = re.compile(r"^(?P<exception>[A-Za-z_][\w.]{0,200})\s{2,}Traceback \(most recent call last\)")


class Record(NamedTuple):
    """The log record a matched line belongs to."""

    level: str | None  # its level; None: no record printed the line; _UNKNOWN_LEVEL: too far up to tell
    inherited: bool  # the line is a record's throwable, not the record's own line
    line: str | None  # the record's own line


_UNKNOWN_LEVEL = "?"  # a throwable whose record is more lines up than are walked back: no `levels` takes it


_NO_RECORD = Record(None, False, None)


UNCAUGHT = "Exception in thread "


# Exceptions no log4j record printed: an uncaught one (the JVM prints it), and PySpark's and py4j's (Python
# prints them), even right after a record line.
PRINTED_BY_ITSELF = (UNCAUGHT, "pyspark.", "py4j.")


# Lines that continue a record's throwable: its causes, and MapReduce's task diagnostics ("Error: ...").
THROWABLE_LEADS = ("Caused by:", "Error: ")


SILENT_LEVELS = frozenset({"DEBUG", "TRACE"})


# The levels whose records' throwables are handled: caught and logged as a warning, or only for debugging.
QUIET_WHEN_INHERITED = QUIET_LEVELS | SILENT_LEVELS


def record_of(line: str, data: bytes, start: int, previous: bytes, unwrap: Callable[[str], str]) -> Record:
    """The log record a matched line belongs to: its level, whether the level was inherited, and the
    record's own line.

    A line with its own prefix (``26/11/20 02:00:00 WARN ...``) is its own record. An exception line
    without one belongs to the record above it that printed it (log4j prints the throwable after the
    message), found by walking back over the stack; a bare line with no record above has no level, and
    neither has an uncaught exception (``Exception in thread "main" ...``, printed by the JVM itself).
    """
    own = LEVEL.match(line)
    if own:
        return Record(own["level"], False, line)
    if line.startswith(PRINTED_BY_ITSELF) or not (EXCEPTION_HEADLINE.match(line) or line.startswith(THROWABLE_LEADS)):
        return _NO_RECORD  # not the throwable of a log record (a Python traceback, a report, plain text)
    # The lines above, nearest first, into the end of the block before; one that starts with a blank (a
    # stack frame) is a continuation whatever follows, so it is passed over undecoded when the log's
    # lines carry no prefix to strip.
    plain = unwrap is unchanged_line
    walked = 0
    for text, end in ((data, start - 1), (previous, len(previous) - 1)):
        while end >= 0 and walked < RECORD_LOOKBACK:
            begin = text.rfind(b"\n", 0, end) + 1
            walked += 1
            if not (plain and begin < end and text[begin] in _BLANK_BYTES):
                before = bound_line(unwrap(decode_line(text[begin:end])))
                record = LEVEL.match(before)
                if record:
                    return Record(record["level"], True, before)
                if before.startswith(UNCAUGHT):
                    return _NO_RECORD
                if before.strip() and not (CONTINUATION.match(before) or EXCEPTION_HEADLINE.match(before)):
                    return _NO_RECORD
            end = begin - 1
    if walked < RECORD_LOOKBACK:
        return _NO_RECORD  # the start of the text: a bare stack, pasted
    return Record(_UNKNOWN_LEVEL, True, None)  # still inside a stack: some record above printed it


_BLANK_BYTES = (9, 32)  # tab, space


def lines_back(
    data: bytes, start: int, previous: bytes = b"", unwrap: Callable[[str], str] | None = None
) -> Iterator[str]:
    """The lines before the line at ``start``, nearest first, going on into ``previous`` (the end of the
    block before) when this block has no more; decoded one at a time, as the caller asks for them."""
    end = start - 1
    while end >= 0:
        begin = data.rfind(b"\n", 0, end) + 1
        line = decode_line(data[begin:end])
        yield bound_line(unwrap(line) if unwrap else line)
        end = begin - 1
    if previous:
        yield from lines_back(previous, len(previous), unwrap=unwrap)


def lines_above(
    data: bytes, start: int, count: int, previous: bytes = b"", unwrap: Callable[[str], str] | None = None
) -> list[str]:
    """Up to ``count`` lines just before the line at ``start``, in order."""
    return list(itertools.islice(lines_back(data, start, previous, unwrap), count))[::-1]
