"""What the command line writes to a terminal or a file: redacted, and with every control character shown,
never interpreted.

Log text can carry escape sequences (a window title, clear screen, a fake hyperlink ``ESC]8;;``, a
clipboard write ``ESC]52``) and bidi overrides that reverse what is shown. :class:`TerminalWriter` wraps
the stream the CLI writes to, so every write passes through :func:`safe_text`: one choke point. Our own
colours are the one exception: :func:`style` gives a placeholder keyed by a random value of this process,
which log text cannot know, and only the writer turns it into an escape sequence, after sanitising.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from typing import Any, TextIO, cast

from emr_triage.analysis.redact import redact, redact_strings

# C0 but newline and tab, DEL, C1, and the invisible format characters (Unicode Cf: bidi overrides and
# isolates, zero-width characters, tags). Listed, not computed at import.
UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_NONCE = secrets.token_hex(8)
_STYLE = re.compile(f"\ue000{_NONCE}([0-9;]{{1,20}})\ue001")


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC, ␍ for CR
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def sanitise(text: str) -> str:
    """Show control and invisible format characters instead of letting a terminal act on them.

    Parameters
    ----------
    text:
        Any text about to be written to a terminal or a file a person will ``cat``.

    Returns
    -------
    str
        ``text`` with C0 controls (but newline and tab) as their Control Pictures (``\\x1b`` → ``␛``), DEL as
        ``␡``, and C1 controls and format characters (bidi overrides U+202A-202E, U+2066-2069, zero-width
        characters) as ``\\uXXXX`` text.
    """
    return UNSAFE_CHARACTERS.sub(_visible, text)


def safe_text(text: str) -> str:
    """Redact secrets, then :func:`sanitise`: what every CLI output (terminal, saved file) goes through."""
    return sanitise(redact(text))


def style(*codes: str) -> str:
    """A placeholder for an SGR colour (``"1"``, ``"31"``, ``"0"``) that only :class:`TerminalWriter`
    turns into its escape sequence."""
    return "".join(f"\ue000{_NONCE}{code}\ue001" for code in codes)


def _restore_styles(text: str) -> str:
    return _STYLE.sub(lambda m: f"\x1b[{m[1]}m", text) if "\ue000" in text else text


def json_text(document: Any, *, indent: int | None = 2) -> str:
    """``document`` as JSON, every string redacted first, and every unsafe character escaped as ``\\uXXXX``
    (``json.dumps`` escapes C0 controls, but not DEL, C1 controls or bidi overrides with ``ensure_ascii=False``).
    """
    text = json.dumps(redact_strings(document), indent=indent, ensure_ascii=False)
    # Outside strings JSON has only ASCII punctuation, spaces and newlines: every match is inside a string.
    return UNSAFE_CHARACTERS.sub(lambda m: f"\\u{ord(m[0]):04x}" if ord(m[0]) <= 0xFFFF else _surrogates(m[0]), text)


def _surrogates(char: str) -> str:
    code = ord(char) - 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


class TerminalWriter(io.TextIOBase):
    """A text stream that writes :func:`safe_text` of everything to the stream it wraps (our own
    :func:`style` placeholders become colours)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(_restore_styles(safe_text(text)))
        return len(text)

    def write_json(self, document: Any, *, indent: int | None = 2) -> None:
        """Write ``document`` as :func:`json_text` (redacted per string, so the JSON stays valid)."""
        self.stream.write(json_text(document, indent=indent) + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Leave the wrapped stream open (it is the caller's), whenever this wrapper goes away."""


def terminal_writer(stream: TextIO) -> TextIO:
    """``stream`` wrapped in a :class:`TerminalWriter` (itself when it already is one)."""
    return cast(TextIO, stream if isinstance(stream, TerminalWriter) else TerminalWriter(stream))


def write_json(out: TextIO, document: Any, *, indent: int | None = 2) -> None:
    """Write ``document`` as :func:`json_text` to ``out`` (a :class:`TerminalWriter` or a plain stream)."""
    writer = out if isinstance(out, TerminalWriter) else TerminalWriter(out)
    writer.write_json(document, indent=indent)
