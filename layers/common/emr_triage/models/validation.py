"""One way to say what is wrong with data that failed validation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError

# A description goes into a log line, the outcome and a dead-letter message (SQS: 256 KiB a message), so
# hostile input (a 100 KB key, a list of 50,000 wrong items) must not make it large: each field path and
# problem is cut, and only the first problems are listed, with the count of the others.
MAX_PATH_CHARS = 200
MAX_PROBLEM_CHARS = 1000
MAX_PROBLEMS = 20
# What a message may quote of a value taken from untrusted input (an event's detail-type, say).
MAX_QUOTED_CHARS = 120


def shorten(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters followed by how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit:,} characters)"


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr(value)`` of a value from untrusted input, cut to ``limit`` characters (see :func:`shorten`)."""
    return shorten(repr(value), limit)


def describe_validation_error(exc: ValidationError, root: str = "") -> str:
    """``field.path: problem; other.field: problem`` for the first :data:`MAX_PROBLEMS` errors (``root``
    names the top level), each cut to a bounded length; more errors are counted, not listed."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    problems = [
        f"{shorten('.'.join(str(part) for part in error['loc']) or root, MAX_PATH_CHARS)}: "
        f"{shorten(error['msg'], MAX_PROBLEM_CHARS)}"
        for error in errors[:MAX_PROBLEMS]
    ]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS:,} more problems")
    return "; ".join(problems)


# Free text from events and AWS's answers (names, reasons) is cut, not rejected: an absurd step name must
# not cost the alert of a real failure, nor push its incident past DynamoDB's 400 KB item. Names are cut
# at AWS's own bound (a step, cluster or job run name is at most 256 characters), so a real name never is;
# messages at a length no EMR reason comes near.
MAX_NAME_CHARS = 256
_WORD_ENDS = frozenset(",;&()[]{}<>\"'")
MAX_MESSAGE_CHARS = 8000


def cut_to(text: str, limit: int) -> str:
    """``text``, or as much of it as fits in ``limit`` characters with a marker saying how many were cut.
    Never longer than ``limit``, so a cut text read back (from DynamoDB) is not cut again."""
    if len(text) <= limit:
        return text
    # Room for the marker; and the word the bound splits is dropped whole, so a secret straddling the cut
    # (redacted later, when the text leaves) cannot leave its first part behind as an unrecognisable stub.
    kept = limit - 40
    while kept > 0 and _in_word(text[kept]) and _in_word(text[kept - 1]):
        kept -= 1
    return f"{text[:kept]}…(+{len(text) - kept:,} characters)"


def _in_word(character: str) -> bool:
    return character not in _WORD_ENDS and not character.isspace()


def _cut(limit: int) -> Callable[[Any], Any]:
    def cut(value: Any) -> Any:
        return cut_to(value, limit) if isinstance(value, str) else value

    return cut


Name = Annotated[str, BeforeValidator(_cut(MAX_NAME_CHARS))]
Message = Annotated[str, BeforeValidator(_cut(MAX_MESSAGE_CHARS))]

# Event times are checked against a range: a forged year 1 or 9999 parses, but adding a time-to-live or a
# window to it overflows ``datetime`` later, in the middle of handling (a crash that Lambda retries).
MIN_EVENT_YEAR = 2000
MAX_EVENT_YEAR = 2100


def _in_range(value: datetime | None) -> datetime | None:
    if value is not None and not MIN_EVENT_YEAR <= value.year <= MAX_EVENT_YEAR:
        raise ValueError(f"{value.isoformat()} is outside the years {MIN_EVENT_YEAR} to {MAX_EVENT_YEAR}")
    return value


EventTime = Annotated[datetime, AfterValidator(_in_range)]
