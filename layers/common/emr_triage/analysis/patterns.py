"""Regular expressions as the catalogue uses them: a rule's patterns joined into one expression, taken
apart again behind their literals, and what can be told of a pattern without running it (the literals
every match contains, a wildcard that would take quadratic time)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from emr_triage.models.validation import shorten

# One pattern of a rule compiled alone, and the lowercase literals one of which each of its matches
# contains (None: none known, always searched).
Screened = tuple[tuple[Callable[[str], re.Match[str] | None], tuple[str, ...] | None], ...]


def screened(patterns: list[str], ignore_case: bool) -> Screened | None:
    """``patterns`` as separate expressions with their literals, to try on a line of ASCII text.

    A rule's patterns are one alternation, and a line matches it exactly when it matches one of them; and
    each match of a pattern contains one of its required literals (:func:`required_literals`, which the
    scanner's prefilter relies on too). In ASCII text, an ASCII literal occurs caselessly exactly where
    it occurs in ``line.lower()``, so a pattern whose literals are not there cannot match and is not
    searched: one ``in`` test instead of a regular expression that tries every position of the line (most
    candidate lines hit one pattern of a rule, and a guard none). Patterns with back references cannot be
    taken apart (a group number means another group in the joined expression): such a rule returns None.
    Lines with other characters, whose case folding ``str.lower`` does not model, get the joined
    expressions.
    """
    screened = []
    for pattern in patterns:
        if _refers_back(pattern):
            return None
        literals = required_literals(pattern)
        lowered = tuple(dict.fromkeys(literal.lower() for literal in literals)) if literals else None
        if lowered is not None and not all(literal.isascii() for literal in lowered):
            lowered = None
        screened.append((compile_patterns([pattern], ignore_case).search, lowered))
    return tuple(screened)


def any_search(screened: Screened, line: str, lowered: str) -> bool:
    """Whether one of the screened expressions matches ``line`` (``lowered`` is its lowercase): each is
    tried only when one of its literals is in the line. Plain loops: this runs for every candidate line
    and rule, and a generator per call costs more than the substring checks themselves."""
    for search, literals in screened:
        if literals is not None:
            for literal in literals:
                if literal in lowered:
                    break
            else:
                continue  # none of its literals: it cannot match
        if search(line) is not None:
            return True
    return False


def _refers_back(pattern: str) -> bool:
    """Whether ``pattern`` has a back reference or a conditional on a group (or cannot be parsed here)."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    references = {c.GROUPREF, c.GROUPREF_EXISTS, c.GROUPREF_IGNORE, c.GROUPREF_LOC_IGNORE, c.GROUPREF_UNI_IGNORE}

    def walk(value: Any) -> bool:
        if isinstance(value, _parser.SubPattern):
            return any(op in references or walk(argument) for op, argument in value)
        if isinstance(value, (tuple, list)):
            return any(walk(item) for item in value)
        return False

    try:
        return walk(_parser.parse(pattern))
    except Exception:  # a private parser: if it changes, keep the rule in one expression
        return True


_LEADING_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """``(?i)foo`` → ``(?i:foo)``: global flags are only legal at the start of the whole expression, and
    a rule's patterns are joined into one."""
    match = _LEADING_FLAGS.match(pattern)
    return f"(?{match[1]}:{pattern[match.end() :]})" if match else f"(?:{pattern})"


def compile_patterns(patterns: list[str], ignore_case: bool) -> re.Pattern[str]:
    return re.compile("|".join(_scoped(p) for p in patterns), re.IGNORECASE if ignore_case else 0)


MIN_LITERAL = 4


def _required(parsed: Any) -> list[str] | None:
    """Literals one of which every match of a parsed (sub)pattern contains, or None."""
    from re import _constants as c  # type: ignore[attr-defined]

    candidates: list[list[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append(["".join(run)])
            run.clear()

    for op, value in parsed:
        if op is c.LITERAL:
            run.append(chr(value))
            continue
        close_run()
        if op is c.SUBPATTERN:
            inner = _required(value[-1])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and value[0] >= 1:
            inner = _required(value[2])
        elif op is c.BRANCH:
            options = [_required(branch) for branch in value[1]]
            inner = None if any(o is None for o in options) else [h for o in options if o for h in o]
        else:
            inner = None
        if inner:
            candidates.append(inner)
    close_run()
    usable = [option for option in candidates if min(len(h) for h in option) >= MIN_LITERAL]
    return max(usable, key=lambda option: min(len(h) for h in option)) if usable else None


def unbounded_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` has ``.*`` or ``.+`` anywhere but at its very end.

    On a line that repeats the text before it, such a pattern rescans the rest of the line from every
    occurrence: quadratic time, hours for a 1 MB line. ``.{0,200}`` says the same thing in linear time.
    """
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    def walk(parsed: Any, at_end: bool) -> bool:
        items = list(parsed)
        for index, (op, value) in enumerate(items):
            last = at_end and index == len(items) - 1
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                _, high, sub = value
                if high == c.MAXREPEAT and list(sub) == [(c.ANY, None)] and not last:
                    return True
                inner = [sub]
            elif op is c.SUBPATTERN:
                inner = [value[-1]]
            elif op is c.BRANCH:
                inner = list(value[1])
            else:
                continue
            if any(walk(part, last and op is not c.MAX_REPEAT and op is not c.MIN_REPEAT) for part in inner):
                return True
        return False

    try:
        return walk(_parser.parse(pattern), True)
    except Exception:  # a private parser: if it changes, skip the check rather than reject rules
        return False


def required_literals(pattern: str) -> list[str] | None:
    """Literals one of which every match of ``pattern`` contains (None if it cannot be told)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        return _required(_parser.parse(pattern))
    except Exception:  # a private parser: if it changes, fall back to testing every line
        return None


# The character categories of Python's parser, as the classes that say them.
CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
    "CATEGORY_LINEBREAK": r"\n",
    "CATEGORY_NOT_LINEBREAK": r"[^\n]",
    "CATEGORY_LOC_WORD": r"\w",
    "CATEGORY_LOC_NOT_WORD": r"\W",
    "CATEGORY_UNI_DIGIT": r"\d",
    "CATEGORY_UNI_NOT_DIGIT": r"\D",
    "CATEGORY_UNI_SPACE": r"\s",
    "CATEGORY_UNI_NOT_SPACE": r"\S",
    "CATEGORY_UNI_WORD": r"\w",
    "CATEGORY_UNI_NOT_WORD": r"\W",
    "CATEGORY_UNI_LINEBREAK": r"\n",
    "CATEGORY_UNI_NOT_LINEBREAK": r"[^\n]",
}


def render_parsed(pattern: str, items: Any) -> str:
    """A short rendering of parsed ``items`` in regular-expression syntax, to name them in an error."""
    from re import _constants as c  # type: ignore[attr-defined]

    def render(items: Any) -> str:
        out = []
        for op, value in items:
            if op is c.LITERAL:
                out.append(re.escape(chr(value)))
            elif op is c.NOT_LITERAL:
                out.append(f"[^{re.escape(chr(value))}]")
            elif op is c.ANY:
                out.append(".")
            elif op is c.IN:
                out.append(_render_set(value, c))
            elif op is c.SUBPATTERN:
                out.append(f"({render(value[-1])})")
            elif op is c.BRANCH:
                out.append("|".join(render(b) for b in value[1]))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                low, high, body = value
                inner = render(body)
                if len(body) > 1 or (body and body[0][0] is c.BRANCH):
                    inner = f"(?:{inner})"
                quantifier = {(0, c.MAXREPEAT): "*", (1, c.MAXREPEAT): "+", (0, 1): "?"}.get(
                    (low, high), f"{{{low},}}" if high == c.MAXREPEAT else f"{{{low},{high}}}"
                )
                out.append(inner + quantifier + ("?" if op is c.MIN_REPEAT else ""))
            elif op is c.AT:
                out.append({"AT_BEGINNING": "^", "AT_END": "$"}.get(str(value), "\\b"))
            elif op in (c.GROUPREF, c.GROUPREF_IGNORE, c.GROUPREF_LOC_IGNORE, c.GROUPREF_UNI_IGNORE):
                out.append(f"\\{value}")
            elif op is c.GROUPREF_EXISTS:
                out.append(f"(?({value[0]})…)")
            else:
                out.append("…")
        return "".join(out)

    try:
        return shorten(render(items), 80)
    except Exception:  # a private parser's shapes: name the whole pattern instead
        return shorten(pattern, 80)


def _render_set(value: Any, c: Any) -> str:
    parts = []
    for op, item in value:
        if op is c.NEGATE:
            parts.append("^")
        elif op is c.LITERAL:
            parts.append(re.escape(chr(item)))
        elif op is c.RANGE:
            parts.append(f"{re.escape(chr(item[0]))}-{re.escape(chr(item[1]))}")
        elif op is c.CATEGORY:
            parts.append(CATEGORIES.get(str(item), "…")[:2])
    if len(parts) == 1 and parts[0].startswith("\\"):
        return parts[0]
    return f"[{''.join(parts)}]"
