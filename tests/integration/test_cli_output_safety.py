"""`emr-triage analyze`: escape sequences and secrets from a log reach neither the terminal, nor the JSON,
nor the saved extract; what they said is still shown, visibly."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emr_triage.cli import main

ESCAPES = ("\x1b]0;pwned\x07", "\x1b[2J", "\x1b]8;;https://evil.example/\x1b\\", "\x1b]52;c;ZXZpbA==\x07")
HOSTILE = "\x9b31m \x7f \u202egnp.exe"
SECRET = "hunter2hunter2planted"
LOG = (
    "Traceback (most recent call last):\n"
    f'  File "/home/hadoop/jobs/password={SECRET}/job.py", line 3, in <module>\n'
    "    main()\n"
    f"ValueError: bad row {''.join(ESCAPES)} {HOSTILE} password={SECRET}\n"
)
UNSAFE = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")


def _analyze(tmp_path: Path, *options: str) -> str:
    log = tmp_path / "stderr"
    log.write_text(LOG)
    out = io.StringIO()
    assert main(["analyze", *options, str(log)], out=out) == 0
    return out.getvalue()


@pytest.mark.parametrize("color", ["never", "always"])
def test_the_report_shows_escapes_from_a_log_without_sending_them(tmp_path: Path, color: str) -> None:
    # Given a log whose error line carries escape sequences, C1, DEL and bidi characters and a secret
    # When it is analysed, with colour or without
    shown = _analyze(tmp_path, "--color", color)
    # Then the report names the error, shows the escapes as visible text, and sends none of them
    assert "ValueError: bad row" in shown and "␛]52;c;ZXZpbA==␇" in shown
    for char in UNSAFE:
        assert shown.count(char) == (shown.count("\x1b[") if char == "\x1b" else 0), repr(char)
    assert SECRET not in shown
    if color == "always":
        assert "\x1b[1m" in shown  # our own colours still work


def test_json_output_escapes_every_unsafe_character_and_redacts_the_user_frame(tmp_path: Path) -> None:
    # Given the same log, When it is analysed with --json
    output = _analyze(tmp_path, "--json")
    # Then the output is JSON without a raw unsafe character or the secret, and says the same as before
    for char in UNSAFE:
        assert char not in output, repr(char)
    assert SECRET not in output
    document = json.loads(output)
    assert "\x1b]52;" in document["summary"]
    assert document["user_frame"] is not None


def test_the_saved_extract_is_redacted_and_sanitised(tmp_path: Path) -> None:
    # Given the same log, When it is analysed with --save-extract
    saved = tmp_path / "extract.txt"
    _analyze(tmp_path, "--save-extract", str(saved))
    # Then the file has the error, without the secret or a raw escape
    text = saved.read_text("utf-8")
    assert "ValueError: bad row" in text
    assert SECRET not in text
    for char in UNSAFE:
        assert char not in text, repr(char)
