"""Free text from events is cut at the model boundary without splitting a word (models/validation.py)."""

from __future__ import annotations

from emr_triage.analysis.redact import redact
from emr_triage.models.validation import MAX_NAME_CHARS, cut_to


def test_a_key_id_straddling_a_names_cut_leaves_no_stub_of_itself() -> None:
    # Given a step name whose AWS key id straddles the 256-character bound (cut 40 before it, for the marker)
    name = "nightly load " + "x" * (MAX_NAME_CHARS - 40 - 13 - 13) + " AKIAIOSFODNN7EXAMPLE and more " * 20
    # When it is cut, then redacted as it leaves
    cut = redact(cut_to(name, MAX_NAME_CHARS))
    # Then no part of the key id is left, the cut is at the word before it, and the text fits the bound
    assert "AKIAIOSF" not in cut
    assert cut.startswith("nightly load x") and "characters)" in cut
    assert len(cut) <= MAX_NAME_CHARS


def test_a_cut_at_a_word_boundary_keeps_the_whole_word_before_it() -> None:
    # Given words that end exactly where the bound falls
    text = "ab " * 200
    # When cut to 100 (60 kept before the marker)
    cut = cut_to(text, 100)
    # Then the kept part is whole words, and cutting again changes nothing
    assert cut.split("…")[0].split() == ["ab"] * 20
    assert cut_to(cut, 100) == cut


def test_one_giant_word_is_dropped_whole() -> None:
    assert cut_to("A" * 5000, 256) == "…(+5,000 characters)"
