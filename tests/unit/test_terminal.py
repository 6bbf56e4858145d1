"""What the command line writes: control characters shown, never interpreted; secrets redacted; JSON
that stays JSON."""

from __future__ import annotations

import io
import json

import pytest

from emr_triage.terminal import TerminalWriter, json_text, sanitise, style, terminal_writer

HOSTILE = {
    "window title": "\x1b]0;pwned\x07",
    "clear screen": "\x1b[2J\x1b[H",
    "fake hyperlink": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "clipboard write": "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07",
    "carriage return overwrite": "ok\rFAILED",
    "C1 CSI": "\x9b31m",
    "DEL": "a\x7fb",
    "bidi override": "user\u202eexe.txt",
    "bidi isolate": "\u2066hidden\u2069",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_control_or_bidi_character_survives_sanitising(text: str) -> None:
    # Given text from a log with an escape sequence or an invisible format character
    # When it is sanitised for a terminal
    shown = sanitise(text)
    # Then no character a terminal acts on is left, and what was there is shown
    assert not [c for c in shown if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x2069]
    assert shown != text


def test_escape_is_shown_as_its_control_picture_and_newlines_and_tabs_stay() -> None:
    assert sanitise("a\x1b[31mb\tc\nd") == "a␛[31mb\tc\nd"
    assert sanitise("\x9b \u202e \x7f") == "\\u009b \\u202e ␡"


def test_the_writer_sanitises_and_redacts_every_write_but_keeps_our_own_colours() -> None:
    # Given a writer around a stream, and a line mixing our colour with a log's escapes and a secret
    stream = io.StringIO()
    writer = terminal_writer(stream)
    # When it is written
    writer.write(f"{style('31')}failed{style('0')} \x1b]52;c;ZXZpbA==\x07 password=hunter2hunter2\n")
    # Then our colour is an escape sequence, the log's is shown, the secret is gone
    assert stream.getvalue() == "\x1b[31mfailed\x1b[0m ␛]52;c;ZXZpbA==␇ password=[REDACTED]\n"


def test_a_forged_style_placeholder_from_a_log_is_not_a_colour() -> None:
    # Given a log line that imitates the placeholder's shape without this process's random key
    stream = io.StringIO()
    TerminalWriter(stream).write("\ue000deadbeefdeadbeef2J\ue001")
    # Then no escape sequence is written
    assert "\x1b" not in stream.getvalue()


def test_wrapping_twice_is_one_writer() -> None:
    writer = terminal_writer(io.StringIO())
    assert terminal_writer(writer) is writer


def test_json_escapes_c1_del_and_bidi_which_json_dumps_leaves_raw_and_stays_valid() -> None:
    # Given a document with C0, C1, DEL, bidi and astral format characters in its strings (json.dumps
    # with ensure_ascii=False escapes only the C0 ones)
    document = {"text": "\x1b]0;t\x07 \x9b2J \x7f \u202e \U000e0041", "key": "password=hunter2hunter2"}
    assert "\x9b" in json.dumps(document, ensure_ascii=False)
    # When it is written as JSON for the terminal
    text = json_text(document)
    # Then no raw unsafe character is left, it parses back to the same characters, and secrets are gone
    assert all(c == "\n" or 0x20 <= ord(c) < 0x7F or (ord(c) > 0x9F and c != "\u202e") for c in text)
    parsed = json.loads(text)
    assert parsed["text"] == document["text"]
    assert parsed["key"] == "password=[REDACTED]"
