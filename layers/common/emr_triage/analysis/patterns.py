"""Regular expressions as the catalogue uses them: a rule's patterns joined into one expression, taken
apart again behind their literals, and what can be told of a pattern without running it (the literals
every match contains, a wildcard that would take quadratic time)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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


# A bounded repeat counts as unbounded when it can take more than this many more iterations than its
# least: ``.{0,200}`` is the linear way to bound a wildcard, but ``(?:.{0,200}x){0,200}`` is not.
WIDE_REPEAT = 100
# The characters a pattern's sets are tested on: ASCII, and one of each kind of non-ASCII character that
# the categories tell apart (a letter, a digit, a space, a line separator, a symbol, an ideograph).
_ALPHABET = (*(chr(code) for code in range(128)), "é", "٣", "\u00a0", "\u2028", "€", "東", "\U0001f642")


def backtracking_risk(pattern: str, ignore_case: bool = False) -> str | None:
    """Why ``pattern`` can take super-linear time in a backtracking engine (Python's ``re``), or None.

    Decided on the parse tree, without running the pattern, by the shapes the ReDoS literature names:

    - a back reference or a group conditional (matching them is NP-hard in general: Aho, *Algorithms for
      finding patterns in strings*, 1990), refused outright;
    - a repeat (``*``, ``+``, ``{n,}``, ``{n,m}`` with ``m > 1``) around another wide repeat, when nothing
      the inner repeat cannot match must come between two of its runs (star height above one: substack's
      safe-regex; the "exponential degree of ambiguity" of Weideman, van der Merwe, Berglund and Watson,
      *Analyzing matching time behavior of backtracking regular expression matchers by using ambiguity
      of NFA*, CIAA 2016): ``(a+)+``, ``(\\w+\\s?)*``, ``(.*a){12}``, ``(x+x+)+``;
    - a repeat around an alternation whose branches can start with the same character, unless they are
      plain words none of which begins another (a prefix code, decoded one way only): ``(a|aa)+``,
      ``(\\s|.)*`` (Kirrage, Rathnayake and Thielecke, *Static analysis for regular expression denial-of-
      service attacks*, NSS 2013, the RXXR "pumpable" branch pair);
    - two wide repeats in a row over intersecting characters (``\\s*\\s*``, ``.*.*``, ``\\w+\\d+``), which
      can split a run between them in n ways at each of n positions ("polynomial degree of ambiguity",
      Weideman et al.; Davis et al., *The impact of regular expression denial of service (ReDoS) in
      practice*, ESEC/FSE 2018), unless they end the pattern or each iteration of the first must match a
      character the second cannot (``\\s+\\S+``, ``(?:\\w+\\.)+\\w+``).

    The answer names the offending part in the pattern's own syntax, for a one-line error. The checks are
    conservative: a refused pattern can usually be said linearly by bounding a repeat (``{0,200}``) or by
    a character class that excludes the separator (``[^,]*,``).
    """
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    try:
        parsed = _parser.parse(pattern, re.IGNORECASE if ignore_case else 0)
    except Exception:  # compiled and reported by the caller
        return None
    caseless = ignore_case or bool(parsed.state.flags & re.IGNORECASE)
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None))
    references = {c.GROUPREF, c.GROUPREF_EXISTS, c.GROUPREF_IGNORE, c.GROUPREF_LOC_IGNORE, c.GROUPREF_UNI_IGNORE}

    def shown(items: Any) -> str:
        return _source(pattern, items)

    def wide(value: Any) -> bool:
        low, high, _ = value
        return bool(high == c.MAXREPEAT or high - low > WIDE_REPEAT)

    def chars(items: Any) -> frozenset[str]:
        """Every character some match of ``items`` can consume (sampled on :data:`_ALPHABET`)."""
        found: set[str] = set()
        for op, value in items:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                found |= _atom_chars(op, value, caseless)
            elif op in repeats:
                found |= chars(value[2])
            elif op is c.SUBPATTERN:
                found |= chars(value[-1])
            elif op is c.BRANCH:
                for branch in value[1]:
                    found |= chars(branch)
            elif op is getattr(c, "ATOMIC_GROUP", None):
                found |= chars(value)
        return frozenset(found)

    def first(items: Any) -> frozenset[str] | None:
        """The characters a non-empty match of ``items`` can start with (None: any, to be safe)."""
        found: set[str] = set()
        for op, value in items:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                return frozenset(found | _atom_chars(op, value, caseless))
            if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue
            if op in repeats or op is c.SUBPATTERN or op is c.BRANCH:
                parts = [value[2]] if op in repeats else [value[-1]] if op is c.SUBPATTERN else value[1]
                for part in parts:
                    inner = first(part)
                    if inner is None:
                        return None
                    found |= inner
                if (op in repeats and value[0] == 0) or any(_may_be_empty(part, c) for part in parts):
                    continue
                return frozenset(found)
            return None
        return frozenset(found)

    def delimited(body: Any, inner_chars: frozenset[str]) -> bool:
        """Whether every iteration of ``body`` must match a character the inner repeat cannot."""
        for op, value in body:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                if not (_atom_chars(op, value, caseless) & inner_chars):
                    return True
            elif (op is c.SUBPATTERN and delimited(value[-1], inner_chars)) or (
                op in repeats and value[0] >= 1 and delimited(value[2], inner_chars)
            ):
                return True
        return False

    def inner_wide(items: Any, outer_wide: bool) -> Iterator[Any]:
        """The repeats inside ``items`` that a repeat around them cannot take: wide ones, or any variable
        one when the outer repeat is wide; as (op, value)."""
        for op, value in items:
            if op in repeats:
                low, high, _ = value
                if wide(value) or (outer_wide and high > low and high > 1):
                    yield (op, value)
                yield from inner_wide(value[2], outer_wide)
            elif op is c.SUBPATTERN:
                yield from inner_wide(value[-1], outer_wide)
            elif op is c.BRANCH:
                for branch in value[1]:
                    yield from inner_wide(branch, outer_wide)

    def ambiguous_branch(items: Any) -> Any:
        """An alternation inside ``items`` whose branches can begin alike (see above), or None."""
        for op, value in items:
            if op is c.BRANCH:
                branches = value[1]
                words = [_word(branch, c) for branch in branches]
                if all(w is not None for w in words):
                    texts = [w.lower() if caseless else w for w in words if w is not None]
                    if not any(
                        (a != b and b.startswith(a)) or (a == b and i != j)
                        for i, a in enumerate(texts)
                        for j, b in enumerate(texts)
                    ):
                        continue
                    return (op, value)
                starts = [first(branch) for branch in branches]
                for i, a in enumerate(starts):
                    for b in starts[i + 1 :]:
                        if a is None or b is None or a & b:
                            return (op, value)
                for branch in branches:
                    if (found := ambiguous_branch(branch)) is not None:
                        return found
            elif op is c.SUBPATTERN and (found := ambiguous_branch(value[-1])) is not None:
                return found
        return None

    def walk(items: Any, at_end: bool) -> str | None:
        items = list(items)
        for index, (op, value) in enumerate(items):
            last = at_end and index == len(items) - 1
            if op in references:
                return f"a back reference or group conditional ({shown([(op, value)])}) can take exponential time"
            if op in repeats:
                high, body = value[1], value[2]
                if high > 1:
                    outer_wide = wide(value)
                    inner = next((r for r in inner_wide(body, outer_wide) if not delimited(body, chars(r[1][2]))), None)
                    if inner is not None:
                        return (
                            f"the repeat {shown([inner])} inside the repeat {shown([(op, value)])} can split a run "
                            "of text in exponentially many ways; bound it or make each iteration end with a "
                            "character it cannot match"
                        )
                    branch = ambiguous_branch(body) if outer_wide else None
                    if branch is not None:
                        return (
                            f"the alternation {shown([branch])} inside the repeat {shown([(op, value)])} has branches "
                            "that can match the same text, which takes exponential time; make them start differently"
                        )
                if wide(value) and op is not getattr(c, "POSSESSIVE_REPEAT", None):
                    follow = _next_wide(items, index, c, repeats, wide)
                    if follow is not None:
                        other_index, other = follow
                        # What the first gives back, the second can take, when some iteration of the
                        # first is all characters the second matches; at the pattern's end the first
                        # split found is a match, and no other is tried.
                        rest_can_fail = not (at_end and other_index == len(items) - 1)
                        if rest_can_fail and not delimited(body, chars(other[1][2])):
                            return (
                                f"the repeats {shown([(op, value)])} and {shown([other])} in a row can both match "
                                "the same characters, which takes polynomial time; merge them or make their "
                                "characters disjoint"
                            )
                reason = walk(body, last and high <= 1)
            elif op is c.SUBPATTERN:
                reason = walk(value[-1], last)
            elif op is c.BRANCH:
                reason = next((r for b in value[1] if (r := walk(b, last)) is not None), None)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                reason = walk(value[1], False)
            elif op is getattr(c, "ATOMIC_GROUP", None):
                reason = walk(value, last)
            else:
                continue
            if reason is not None:
                return reason
        return None

    return walk(parsed, True)


def _next_wide(items: list[Any], index: int, c: Any, repeats: tuple[Any, ...], wide: Any) -> Any:
    """The next wide repeat after ``items[index]`` with only optional, zero-width items between."""
    for other_index in range(index + 1, len(items)):
        op, value = items[other_index]
        if op in repeats and wide(value):
            return other_index, (op, value)
        if op in repeats and value[0] == 0:
            continue
        if op is c.AT or (op is c.SUBPATTERN and _may_be_empty(value[-1], c)):
            continue
        return None
    return None


def _may_be_empty(items: Any, c: Any) -> bool:
    for op, value in items:
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            if value[0] == 0 or _may_be_empty(value[2], c):
                continue
            return False
        if op is c.SUBPATTERN:
            if _may_be_empty(value[-1], c):
                continue
            return False
        if op is c.BRANCH:
            if any(_may_be_empty(b, c) for b in value[1]):
                continue
            return False
        return False
    return True


def _word(items: Any, c: Any) -> str | None:
    """The text ``items`` matches when it is plain literals only, else None."""
    text = []
    for op, value in items:
        if op is not c.LITERAL:
            return None
        text.append(chr(value))
    return "".join(text)


def _atom_chars(op: Any, value: Any, caseless: bool) -> set[str]:
    """The characters of :data:`_ALPHABET` a one-character item matches."""
    from re import _constants as c  # type: ignore[attr-defined]

    def one(op: Any, value: Any, ch: str) -> bool:
        if op is c.LITERAL:
            return ch == chr(value)
        if op is c.NOT_LITERAL:
            return ch != chr(value)
        if op is c.ANY:
            return True  # with or without DOTALL: a line has no newline worth counting on
        if op is c.RANGE:
            return bool(value[0] <= ord(ch) <= value[1])
        if op is c.CATEGORY:
            return re.fullmatch(_CATEGORIES.get(str(value), "(?s:.)"), ch) is not None
        if op is c.IN:
            negate = bool(value) and value[0][0] is c.NEGATE
            hit = any(one(o, v, ch) for o, v in value if o is not c.NEGATE)
            return hit != negate
        return True

    found = set()
    for ch in _ALPHABET:
        variants = {ch, ch.lower(), ch.upper()} if caseless else {ch}
        if any(one(op, value, v) for v in variants):
            found.add(ch)
    return found


_CATEGORIES = {
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


def _source(pattern: str, items: Any) -> str:
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
            parts.append(_CATEGORIES.get(str(item), "…")[:2])
    if len(parts) == 1 and parts[0].startswith("\\"):
        return parts[0]
    return f"[{''.join(parts)}]"
