"""A rule tried pattern by pattern behind its literals (on ASCII lines) says exactly what its joined
expressions say, on every line."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emr_triage.analysis.catalogue import Rule, load_catalogue

CATALOGUE = load_catalogue()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _joined(rule: Rule, line: str) -> bool:
    """The reference: the rule's patterns and guards each as one expression."""
    if rule.matcher.search(line) is None:
        return False
    return rule.guard is None or rule.guard.search(line) is None


def test_every_rule_is_screened() -> None:
    # The fast path applies to the whole shipped catalogue (none of its patterns refers back to a group)
    assert [rule.id for rule in CATALOGUE.rules if rule.screened is None] == []


def test_screened_rules_agree_with_their_joined_expressions_on_every_fixture_line() -> None:
    checked = matched = 0
    for path in sorted(FIXTURES.rglob("*.log")):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            for rule in CATALOGUE.rules:
                expected = _joined(rule, line)
                assert rule.matches(line) is expected, (rule.id, path.name, line)
                checked += 1
                matched += expected
    assert checked > 100_000 and matched > 500


# Pieces of what the rules look for, to build lines that come close to matching: each rule's literals
# (which pass the screen) and fragments of its patterns' text, recased, among noise.
LITERALS = sorted({hint for rule in CATALOGUE.rules for hint in rule.hints or ()})
NOISE = [
    " ",
    "\t",
    "at ",
    "26/11/20 02:14:07 ERROR Executor: ",
    "java.lang.",
    "Exception",
    ": ",
    "137",
    "=",
    "'",
    "(",
    ")",
    "Still have 3 requests outstanding",
    "\u212a",  # Kelvin sign: caselessly a 'k'
    "\u017f",  # long s: caselessly an 's'
    "\u0130",
    "\u00e9",
    "\x1c",
]


def _recased(text: str, mask: int) -> str:
    return "".join(ch.upper() if mask >> (i % 31) & 1 else ch for i, ch in enumerate(text))


piece = st.one_of(
    st.sampled_from(LITERALS),
    st.sampled_from(NOISE),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.tuples(piece, st.integers(min_value=0, max_value=2**31 - 1)), min_size=1, max_size=8))
def test_screened_rules_agree_with_their_joined_expressions_on_near_misses(pieces: list[tuple[str, int]]) -> None:
    line = "".join(_recased(text, mask) for text, mask in pieces)
    for rule in CATALOGUE.rules:
        assert rule.matches(line) is _joined(rule, line), (rule.id, line)


def _rule(patterns: list[str], not_patterns: list[str] | None = None, ignore_case: bool = True) -> Rule:
    return Rule(
        id="made_up",
        category="made_up",
        rank=1,
        severity="low",
        retryable=None,
        title="A made-up rule",
        patterns=patterns,
        not_patterns=not_patterns or [],
        ignore_case=ignore_case,
        explanation="For a test.",
        remediation="None.",
    )


def test_a_rule_whose_patterns_refer_back_to_a_group_is_tried_as_one_expression() -> None:
    # In the joined expression, \\1 of the second pattern means the first pattern's group
    rule = _rule([r"(alpha) one", r"(beta) \1 two"])
    assert rule.screened is None
    for line in ["beta beta two", "beta alpha two", "alpha one"]:
        assert rule.matches(line) is _joined(rule, line)


def test_case_sensitive_rules_and_inline_flags_are_screened_safely() -> None:
    rules = [
        _rule([r"OutOfMemoryError: \S+"], ignore_case=False),
        _rule([r"(?i)killed by yarn", r"(?-i:EXACT) match"], ignore_case=False),
        _rule([r"Exit code: \d+"], [r"(?-i:Exit code: 0)"]),
    ]
    lines = [
        "java.lang.OutOfMemoryError: heap",
        "java.lang.outofmemoryerror: heap",
        "Container KILLED BY YARN",
        "EXACT match",
        "exact match",
        "Exit code: 0",
        "EXIT CODE: 0",
        "exit code: 137",
        "straße Exit code: 1",
    ]
    for rule in rules:
        assert rule.screened is not None
        for line in lines:
            assert rule.matches(line) is _joined(rule, line), (rule.patterns, line)


def test_a_literal_the_screen_cannot_fold_keeps_the_rule_exact() -> None:
    # U+017F (long s) matches 's' caselessly, which str.lower() does not show: its literal is not screened
    long_s = "\u017fpark failed"
    rule = _rule([long_s])
    assert re.search(f"(?i){long_s}", "SPARK FAILED") is not None
    assert rule.matches("SPARK FAILED") is True
