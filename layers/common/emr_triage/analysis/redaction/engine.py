"""Apply the secrets catalogue to a text: blocks first, then key body lines, token and URL shapes, then
key/value pairs, then passwords in prose."""

from __future__ import annotations

import re
from collections.abc import Callable

from emr_triage.analysis.redaction.catalogue import SecretCatalogue, SecretForm, load_catalogue
from emr_triage.analysis.redaction.keywords import redact_key_values, redact_prose


def _redact_blocks(text: str, form: SecretForm) -> str:
    # A block runs from its BEGIN line to its END line, or to the end of the text given when it was cut
    # before its END: each search resumes after the block, so the work is linear.
    assert form.end is not None
    pieces: list[str] = []
    cursor = 0
    while True:
        begin = form.pattern.search(text, cursor)
        if begin is None:
            break
        end = form.end.search(text, begin.end())
        pieces.append(text[cursor : begin.start()])
        pieces.append(form.marker)
        cursor = len(text) if end is None else end.end()
    if not pieces:
        return text
    pieces.append(text[cursor:])
    return "".join(pieces)


def _replacer(form: SecretForm) -> Callable[[re.Match[str]], str]:
    group = form.secret_group

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if group is None:
            return form.marker
        secret = match.group(group)
        if secret is None or secret.startswith("[REDACTED"):
            return whole
        start, end = match.span(group)
        offset = match.start()
        return whole[: start - offset] + form.marker + whole[end - offset :]

    return replace


def apply_form(text: str, form: SecretForm, lowered: str | None = None) -> str:
    """Redact one form's matches in ``text`` (its keywords are checked against ``lowered`` when given)."""
    if form.keywords:
        haystack = text.lower() if lowered is None else lowered
        if not any(keyword in haystack for keyword in form.keywords):
            return text
    if form.is_block:
        return _redact_blocks(text, form)
    return form.pattern.sub(_replacer(form), text)


def redact_with(text: str, catalogue: SecretCatalogue) -> str:
    """Redact ``text`` with the given catalogue (tests pass their own; :func:`redact` the shipped one)."""
    if not text:
        return text
    original, lowered = text, text.lower()
    for form in catalogue.forms:
        text = apply_form(text, form, lowered)
    text = redact_key_values(text, catalogue.key_value)
    # (Most texts come through unchanged, the very object: their lowercase is the one already made.)
    return redact_prose(text, catalogue.key_value, lowered if text is original else None)


def redact(text: str) -> str:
    """Return ``text`` with credentials replaced by ``[REDACTED …]`` markers.

    Parameters
    ----------
    text:
        Any log or event text; several lines are redacted as one text, so a private key block spanning them
        goes whole.

    Returns
    -------
    str
        The same text with private key blocks (and their body lines when the BEGIN line is not in it),
        credentials in URLs and connection strings, well-known token shapes (AWS, GitHub, GitLab, Slack,
        Databricks, Stripe, SendGrid, Twilio, Google, OpenAI, npm, PyPI, Datadog, JWT, Azure storage keys),
        every value next to a password-like key (or on the line after it) and passwords written in a
        sentence removed.
    """
    return redact_with(text, load_catalogue())


def redact_lines(lines: list[str]) -> list[str]:
    """Redact a block of lines as one text, so a private key spanning lines is removed whole.

    A block's lines become one marker line; a BEGIN without its END removes everything after it.
    """
    if not lines:
        return lines
    return redact("\n".join(lines)).split("\n")
