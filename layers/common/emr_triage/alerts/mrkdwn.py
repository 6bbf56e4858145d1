"""Untrusted text made safe for Slack: mrkdwn escaping, plain text, code spans and blocks, clipping.

Every piece of text from events or logs goes through :func:`escape` (``&``, ``<``, ``>``), so a log line
containing ``<!channel>`` or ``<@U123>`` renders literally and pings nobody; backticks in logs are replaced
so they cannot close a code block; text is clipped to Slack's limits, visibly.
"""

from __future__ import annotations

import re

from emr_triage.analysis.redact import redact
from emr_triage.terminal import UNSAFE_CHARACTERS

TRUNCATED = "… (truncated)"

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def neutralise(text: str) -> str:
    """Redact secrets, and replace control and invisible format characters with U+FFFD (visible, and
    harmless). Every piece of untrusted text in a message passes through here."""
    return UNSAFE_CHARACTERS.sub("\ufffd", redact(text))


def escape(text: str) -> str:
    """Make untrusted text safe in mrkdwn: neutralise control characters, escape Slack's three control
    characters (``&``, ``<``, ``>``, and only these, as Slack documents), and replace backticks with a
    look-alike (U+02CB) so text from a log can neither open a code block that swallows what follows nor
    close ours."""
    return neutralise(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "ˋ")


def plain(text: str) -> str:
    """Make text safe for ``plain_text`` objects: no angle brackets, so no mention syntax at all."""
    return neutralise(text).replace("<", "‹").replace(">", "›")


def code(text: str) -> str:
    """Inline code of untrusted text: escaped, and its backticks cannot end the code span."""
    return "`" + escape(text.replace("`", "ˋ")) + "`"


def _code_line(line: str) -> str:
    return escape(line.replace("`", "ˋ"))


def _fence(escaped_lines: list[str]) -> str:
    return "```\n" + "\n".join(escaped_lines) + "\n```"


def code_block(lines: list[str]) -> str:
    """A fenced code block of untrusted lines; a ``` inside cannot break out of it."""
    return _fence([_code_line(line) for line in lines])


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def clip_code_block(lines: list[str], limit: int) -> str:
    """A code block of at most ``limit`` characters, fences included. Lines are escaped first (escaping
    can grow a line five-fold), then cut, never inside an entity, so the closing fence always survives."""
    more = "… (more in the log)"
    budget = limit - len(_fence([""]))
    kept: list[str] = []
    used = 0
    for line in (_code_line(line) for line in lines):
        if used + len(line) + 1 <= budget:
            kept.append(line)
            used += len(line) + 1
            continue
        room = budget - used - len(more) - 3
        if room > 40:
            kept.append(_PARTIAL_ENTITY.sub("", line[:room]) + " …")
        kept.append(more)
        break
    return _fence(kept)
