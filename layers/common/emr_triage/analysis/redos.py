"""What can be told of a regular expression's running time without running it: the shapes on which a
backtracking engine (Python's ``re``) takes exponential, polynomial or quadratic time. The catalogue refuses
user patterns of those shapes when their rules file is loaded, with one line naming the part and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from emr_triage.analysis.patterns import CATEGORIES, render_parsed

# A bounded repeat counts as unbounded when it can take more than this many more iterations than its
# least: ``.{0,200}`` is the linear way to bound a wildcard, but ``(?:.{0,200}x){0,200}`` is not.
WIDE_REPEAT = 100
# Text of at most this many more characters than its least, between a repeat and what delimits it, moves
# where the repeat can begin by a bounded amount: linear time, with this as the constant.
BOUNDED_SPAN = 1000
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
        return render_parsed(pattern, items)

    def wide(value: Any) -> bool:
        low, high, _ = value
        return bool(high == c.MAXREPEAT or high - low > WIDE_REPEAT)

    def chars(items: Any) -> frozenset[str]:
        return _chars(items, caseless)

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


def rescan_risk(pattern: str, ignore_case: bool = False) -> str | None:
    """Why searching a line for ``pattern`` can take quadratic time in a backtracking engine, or None.

    A search tries the pattern at every position of the line. An unbounded repeat that something after it
    can still fail (``\\w+x``, ``\\S+Exception``, ``[^,]+;``) scans the whole run of characters it
    matches from every position where it can begin, and on a line that is one long such run (an attacker's
    or a corrupt one) that is quadratic: minutes for 100 KB, hours for a megabyte. The same holds when an
    earlier repeat gives characters back to it. It cannot when the repeat can begin only at one place
    per run: right after a character it cannot match (``Caused by: \\S+Exception``: the space; ``"[^"]+"``:
    the quote), after ``\\b`` when it matches word characters only (``\\b[A-Z]\\w+Exception``), or after
    ``^``, with only fixed-width text between. Each character is then scanned a bounded number of times,
    whatever the line; the shapes that are exponential or polynomial without any search are
    :func:`backtracking_risk`'s. A bounded repeat (``{1,100}``) costs at most its bound at each position.

    The answer names the repeat in the pattern's own syntax, for a one-line error.
    """
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    try:
        parsed = _parser.parse(pattern, re.IGNORECASE if ignore_case else 0)
    except Exception:  # compiled and reported by the caller
        return None
    caseless = ignore_case or bool(parsed.state.flags & re.IGNORECASE)
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None))
    atoms = (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN)
    word = frozenset(ch for ch in _ALPHABET if re.fullmatch(r"\w", ch))
    starts = {c.AT_BEGINNING, c.AT_BEGINNING_STRING}
    boundaries = {c.AT_BOUNDARY, getattr(c, "AT_UNI_BOUNDARY", None), getattr(c, "AT_LOC_BOUNDARY", None)}

    def chars(items: Any) -> frozenset[str]:
        return _chars(items, caseless)

    def flat(items: Any) -> list[Any]:
        """``items`` with plain groups opened, so a delimiter inside one is seen."""
        out: list[Any] = []
        for op, value in items:
            if op is c.SUBPATTERN:
                out.extend(flat(value[-1]))
            else:
                out.append((op, value))
        return out

    def width(op: Any, value: Any) -> tuple[int, int]:
        try:
            low, high = _parser.SubPattern(parsed.state, [(op, value)]).getwidth()
        except Exception:
            return 0, c.MAXREPEAT
        return int(low), int(high)

    def leading(op: Any, value: Any) -> frozenset[str]:
        """The characters an item can begin with (a superset)."""
        if op in atoms:
            return frozenset(_atom_chars(op, value, caseless))
        if op in repeats and value[0] >= 1:
            return chars(value[2])
        return chars([(op, value)])

    def delimited(before: list[Any], run: frozenset[str], following: tuple[Any, Any]) -> bool:
        r"""Whether a repeat over ``run`` after ``before`` can begin at a bounded number of places per run.

        Walking back from the repeat: a character it cannot match (once, or repeated at least once), ``^``,
        or ``\b`` before word characters ends the walk; fixed text and text of bounded width (``.{0,300}``)
        move the places a bounded distance; an unbounded repeat whose end is forced (what follows it cannot
        be one of its characters: ``\d+,``) does not add places; an optional group or an alternation is
        walked through on each of its paths; anything else might add places.
        """
        return back(list(reversed(flat(before))), run, following) == "found"

    def back(items: list[Any], run: frozenset[str], following: tuple[Any, Any]) -> str:
        """``found`` (a delimiter on every path), ``blocked`` or ``through`` (the walk went past ``items``)."""
        for op, value in items:
            if op in atoms:
                if not (_atom_chars(op, value, caseless) & run):
                    return "found"
            elif op is c.AT:
                if value in starts or (value in boundaries and run <= word):
                    return "found"
            elif op in repeats and value[0] >= 1 and not (chars(value[2]) & run):
                return "found"
            elif op is c.BRANCH or (op in repeats and value[1] <= 1):
                paths = value[1] if op is c.BRANCH else [value[2]]
                ends = {back(list(reversed(flat(path))), run, following) for path in paths}
                if "blocked" in ends:
                    return "blocked"
                if ends == {"found"} and (op is c.BRANCH or value[0] >= 1):
                    return "found"
            elif op not in (c.ASSERT, c.ASSERT_NOT):
                low, high = width(op, value)
                forced = op in repeats and not (chars(value[2]) & leading(*following))
                if not (high != c.MAXREPEAT and high - low <= BOUNDED_SPAN) and not forced:
                    return "blocked"
            following = (op, value)
        return "through"

    def tempered(before: list[Any], body: Any) -> bool:
        """``X(?:(?!X).)*``: each iteration refuses to cross the text that began the match, so a character
        is scanned only from the nearest X before it."""
        items = list(body)
        if not items or items[0][0] is not c.ASSERT_NOT or items[0][1][0] < 0:
            return False
        refused = [item for item in flat(items[0][1][1]) if item[0] is not c.AT]
        text = [item for item in flat(before) if item[0] not in (c.AT, c.ASSERT, c.ASSERT_NOT)]
        return bool(refused) and all(op is c.LITERAL for op, _ in refused) and text[-len(refused) :] == refused

    def never_fails(items: Any) -> bool:
        """Whether ``items`` match (the empty string) wherever they are tried."""
        for op, value in items:
            if op in repeats and value[0] == 0:
                continue
            if op is c.SUBPATTERN and never_fails(value[-1]):
                continue
            if op is c.BRANCH and any(never_fails(branch) for branch in value[1]):
                continue
            return False
        return True

    def visit(items: Any, before: list[Any], after_empty: bool) -> Any:
        items = list(items)
        for index, (op, value) in enumerate(items):
            prefix = before + items[:index]
            rest_empty = after_empty and never_fails(items[index + 1 :])
            if op in repeats:
                _, high, body = value
                if high == c.MAXREPEAT and not rest_empty:
                    run = chars(body)
                    # the first iteration follows the text before it; the others, the iteration before
                    if not tempered(prefix, body) and not (
                        delimited(prefix, run, (op, value)) and delimited(prefix + list(body), run, (op, value))
                    ):
                        return (op, value)
                found = visit(body, prefix, rest_empty)
                if found is None and high > 1:
                    found = visit(body, prefix + list(body), rest_empty)
            elif op is c.SUBPATTERN:
                found = visit(value[-1], prefix, rest_empty)
            elif op is c.BRANCH:
                found = next((f for b in value[1] if (f := visit(b, prefix, rest_empty)) is not None), None)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                found = visit(value[1], prefix if value[0] >= 0 else [], True)
            elif op is getattr(c, "ATOMIC_GROUP", None):
                found = visit(value, prefix, rest_empty)
            else:
                continue
            if found is not None:
                return found
        return None

    found = visit(parsed, [], True)
    if found is None:
        return None
    return (
        f"the repeat {render_parsed(pattern, [found])} can begin anywhere in a long run of the characters it "
        "matches and rescan it from each place, which takes quadratic time; put a character it cannot match "
        "(or \\b, for word characters) right before it, or bound it, e.g. {1,100}"
    )


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


def _chars(items: Any, caseless: bool) -> frozenset[str]:
    """Every character some match of parsed ``items`` can consume (sampled on :data:`_ALPHABET`)."""
    from re import _constants as c  # type: ignore[attr-defined]

    found: set[str] = set()
    for op, value in items:
        if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
            found |= _atom_chars(op, value, caseless)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            found |= _chars(value[2], caseless)
        elif op is c.SUBPATTERN:
            found |= _chars(value[-1], caseless)
        elif op is c.BRANCH:
            for branch in value[1]:
                found |= _chars(branch, caseless)
        elif op is getattr(c, "ATOMIC_GROUP", None):
            found |= _chars(value, caseless)
    return frozenset(found)


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
            return re.fullmatch(CATEGORIES.get(str(value), "(?s:.)"), ch) is not None
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
