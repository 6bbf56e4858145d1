"""The hand-written table of unsafe characters (Slack and the terminal alike) matches Unicode's categories."""

from __future__ import annotations

import unicodedata

from emr_triage.alerts.message import neutralise
from emr_triage.terminal import UNSAFE_CHARACTERS


def test_unsafe_characters_are_exactly_unicode_controls_and_format_characters() -> None:
    # Given the characters Unicode (of this Python) files under Cc and Cf, except newline and tab
    expected = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) in ("Cc", "Cf") and chr(cp) not in "\n\t"}
    # When we ask which code points our table matches
    matched = {cp for cp in range(0x110000) if UNSAFE_CHARACTERS.match(chr(cp))}
    # Then they are the same set (a newer Unicode adding one makes this fail: extend the table)
    assert sorted(hex(c) for c in expected - matched) == []
    assert sorted(hex(c) for c in matched - expected) == []


def test_neutralise_keeps_layout_and_marks_what_it_replaced() -> None:
    assert neutralise("a\tb\nc") == "a\tb\nc"
    assert neutralise("evil\u202etxt.exe\x1b[31m") == "evil\ufffdtxt.exe\ufffd[31m"
