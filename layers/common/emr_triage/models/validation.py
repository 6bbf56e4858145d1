"""One way to say what is wrong with data that failed validation."""

from __future__ import annotations

from pydantic import ValidationError

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
