"""The secrets catalogue: every entry's examples, its linear time on adversarial input, and its checks.

Adding an entry to ``secrets.yaml`` adds its tests here: its redacted examples must lose their secret, its
kept examples must come back unchanged, and its search must stay linear on text built to make it backtrack.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from emr_triage.analysis.redact import redact, redact_lines
from emr_triage.analysis.redaction import keywords
from emr_triage.analysis.redaction.catalogue import (
    SecretCatalogueError,
    SecretForm,
    load_catalogue,
    parse_catalogue,
    unbounded_repetition,
)
from emr_triage.analysis.redaction.engine import apply_form
from emr_triage.analysis.redaction.keywords import redact_key_values, redact_prose
from emr_triage.analysis.redos import backtracking_risk, rescan_risk

CATALOGUE = load_catalogue()
FORMS = {form.id: form for form in CATALOGUE.forms}
REDACTED = [
    pytest.param(text, secret, id=f"{form.id}-{index}")
    for form in CATALOGUE.forms
    for index, (text, secret) in enumerate(form.redacted_examples)
] + [
    pytest.param(text, secret, id=f"key-value-{index}")
    for index, (text, secret) in enumerate(CATALOGUE.key_value.redacted_examples)
]
KEPT = [
    pytest.param(text, id=f"{form.id}-{index}")
    for form in CATALOGUE.forms
    for index, text in enumerate(form.kept_examples)
] + [pytest.param(text, id=f"key-value-{index}") for index, text in enumerate(CATALOGUE.key_value.kept_examples)]


@pytest.mark.parametrize(("text", "secret"), REDACTED)
def test_every_catalogue_example_loses_its_secret(text: str, secret: str) -> None:
    # Given a catalogue example carrying a secret
    # When it is redacted (alone, and as a line between others)
    alone = redact(text)
    framed = redact_lines(["INFO before", text, "INFO after"])
    # Then the secret is gone and a marker stands in its place, and redacting again changes nothing
    assert secret not in alone and "[REDACTED" in alone
    assert secret not in "\n".join(framed)
    assert framed[0] == "INFO before"
    assert redact(alone) == alone


@pytest.mark.parametrize("text", KEPT)
def test_every_catalogue_counter_example_is_left_alone(text: str) -> None:
    # Given text that names a secret without holding one (often the diagnosis itself)
    # When it is redacted
    # Then it reads as before
    assert redact(text) == text


def _timed(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _adversarial(form: SecretForm) -> list[str]:
    """Texts built to make this form's search rescan: its keywords, its examples, their prefixes, repeated."""
    seeds = [*form.keywords, *(text for text, _ in form.redacted_examples)]
    seeds += [text[: max(1, len(text) // 2)] for text, _ in form.redacted_examples]
    seeds += [text.replace(" ", "") for text, _ in form.redacted_examples]
    return seeds


SMALL, LARGE = 25_000, 100_000


def _growth(work: Callable[[str], object], seed: str) -> float:
    small = (seed * (SMALL // len(seed) + 1))[:SMALL]
    large = (seed * (LARGE // len(seed) + 1))[:LARGE]
    ratios = []
    for _ in range(3):  # a quadratic search is slow every time; a busy machine only now and then
        ratios.append(_timed(lambda: work(large)) / max(_timed(lambda: work(small)), 1e-6))
        if ratios[-1] < MAX_GROWTH:
            break
    return min(ratios)


# Linear time gives a ratio of ~4 for 4x the text; a quadratic search gives ~16. The bound leaves room for a
# noisy shared machine without letting a quadratic one pass.
MAX_GROWTH = 9.0


@pytest.mark.parametrize("form", CATALOGUE.forms, ids=[form.id for form in CATALOGUE.forms])
def test_every_form_takes_linear_time_on_adversarial_input(form: SecretForm) -> None:
    for seed in _adversarial(form):
        # Given 25 KB and 100 KB of a text made of the form's own keywords and examples, repeated
        # When the form alone is applied to each
        growth = _growth(lambda text: apply_form(text, form), seed)
        # Then the time grows like the text (x4), not like its square (x16)
        assert growth < MAX_GROWTH, f"{form.id}: {seed[:40]!r} x4 text took x{growth:.1f} time"


@pytest.mark.parametrize(
    "seed",
    [
        "mysql ",
        "mysql -u etl ",
        "a=",
        "password=",
        "password ",
        "token",
        "password:",
        '"password", "',
        "('secret', '",
        "<name>password</name><value>",
        "--password --password ",
        "set password ",
        "AWS_SECRET_ACCESS_KEY  ",
        'password="a\\"',
        "%22password%22%3A%22",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "s3a://a:b",
        "x://",
        "A" * 90,
    ],
)
def test_the_whole_redaction_takes_linear_time_on_adversarial_input(seed: str) -> None:
    # Given 25 KB and 100 KB of a key-like text repeated (the old mysql rule took 25 s on 200 KB)
    # When everything is redacted
    growth = _growth(redact, seed)
    # Then the time grows like the text
    assert growth < MAX_GROWTH, f"{seed!r}: x4 text took x{growth:.1f} time"


def test_the_key_value_mechanism_is_linear_on_long_runs_of_key_words() -> None:
    growth = _growth(lambda text: redact_key_values(text, CATALOGUE.key_value), "x-password.token_secret")
    assert growth < MAX_GROWTH


@pytest.mark.parametrize(
    "seed",
    [
        "password is ",
        "password was Hunter2 ",
        "pwd ",
        "the secret key is '",
        'password of "x',
        "password:\n",
        "password=\n",
        "secret.key=\n26/11/20 02:00:00 ",
        "MIIEowIBAAKCAQEAx4UbaDzY3VuZ2V0c2VjcmV0a2V5bWF0ZXJpYWwwMTIzNDU2Nzg5\n",
        "A1a" * 30,
        "A1a" * 20 + "\nAbc",
    ],
)
def test_the_prose_and_next_line_readers_take_linear_time_on_adversarial_input(seed: str) -> None:
    # Given 25 KB and 100 KB of a prose key word, a key ending its line, or base64 lines, repeated
    # When the prose reader, and the whole redaction, run on each
    # Then the time grows like the text
    assert _growth(lambda text: redact_prose(text, CATALOGUE.key_value), seed) < MAX_GROWTH
    assert _growth(redact, seed) < MAX_GROWTH


def _expressions() -> list[tuple[str, str]]:
    found = [(form.id, form.pattern.pattern) for form in CATALOGUE.forms]
    found += [(f"{form.id} end", form.end.pattern) for form in CATALOGUE.forms if form.end is not None]
    # (_NAME_WORDS splits a name already bounded to 121 characters: what it rescans is bounded too.)
    found += [
        (name, value.pattern)
        for name, value in vars(keywords).items()
        if isinstance(value, re.Pattern) and name != "_NAME_WORDS"
    ]
    prose = CATALOGUE.key_value.prose
    found.append(("prose trigger", keywords._prose_trigger(prose.words, prose.verbs, False).pattern))
    found.append(("key/value trigger", keywords._trigger(CATALOGUE.key_value.words).pattern))
    return found


@pytest.mark.parametrize(("name", "pattern"), _expressions(), ids=[name for name, _ in _expressions()])
def test_every_expression_of_the_redaction_passes_the_backtracking_checks(name: str, pattern: str) -> None:
    # Given an expression of the catalogue or of the key/value and prose readers
    # When the checks that refuse user rules look at it
    # Then they find no shape that backtracks super-linearly, nor a search that rescans
    assert backtracking_risk(pattern) is None, name
    assert rescan_risk(pattern) is None, name


# ---------------------------------------------------------------------------------------------------
# The catalogue's own checks
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        ("a+", "+"),
        ("[a-z]*x", "*"),
        ("a{2,}", "{2,}"),
        ("a{1,5}", None),
        ("a{1,5}+", None),
        (r"\+\*", None),
        ("[+*]{1,3}", None),
        ("a?+b", None),
        ("(?:ab){0,3}", None),
    ],
)
def test_unbounded_repetitions_are_found(pattern: str, found: str | None) -> None:
    assert unbounded_repetition(pattern) == found


ENTRY = """
version: 1
entries:
  - id: demo
    source: test
    keywords: [demo]
    pattern: '{pattern}'
    examples: {{redacted: [{{text: demo1, secret: demo1}}], kept: [other]}}
key_value: {{words: [password], examples: {{redacted: [{{text: password=x1, secret: x1}}], kept: [other]}}}}
"""


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("demo[0-9]+", "unbounded repetition '+'"),
        ("demo.*", "unbounded repetition '*'"),
        ("demo(", "not a valid expression"),
    ],
)
def test_a_pattern_that_could_backtrack_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    # Given a catalogue entry whose expression is unbounded or broken
    # When the catalogue is read
    # Then it is refused in one line naming the entry and the fix
    with pytest.raises(SecretCatalogueError, match=re.escape(reason)) as caught:
        parse_catalogue(ENTRY.format(pattern=pattern))
    assert "'demo'" in str(caught.value) and "\n" not in str(caught.value)


def test_an_entry_without_examples_is_refused() -> None:
    # Given an entry with redacted examples but no kept one
    text = ENTRY.format(pattern="demo[0-9]{1,3}").replace("kept: [other]}\nkey", "kept: []}\nkey", 1)
    # When the catalogue is read
    # Then it is refused: every entry needs a positive and a negative example
    with pytest.raises(SecretCatalogueError, match="'kept'"):
        parse_catalogue(text)


def test_an_entry_may_run_on_every_text_when_it_says_so_with_empty_keywords() -> None:
    # Given an entry written with "keywords: []" (a shape with no literal), and one with no keywords at all
    every_text = ENTRY.format(pattern="demo[0-9]{1,3}").replace("keywords: [demo]", "keywords: []")
    missing = ENTRY.format(pattern="demo[0-9]{1,3}").replace("    keywords: [demo]\n", "")
    # When they are read
    # Then the first runs on any text, and the second is refused (a forgotten prefilter is no choice)
    assert parse_catalogue(every_text).forms[0].keywords == ()
    with pytest.raises(SecretCatalogueError, match="'keywords'"):
        parse_catalogue(missing)


def test_a_well_formed_entry_is_read() -> None:
    catalogue = parse_catalogue(ENTRY.format(pattern="demo[0-9]{1,3}"))
    assert [form.id for form in catalogue.forms] == ["demo"]
    assert FORMS["aws-access-key-id"].marker == "[REDACTED AWS KEY ID]"
