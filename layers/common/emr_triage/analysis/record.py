"""Redact whole, then cut: how a logical record (a line with its continuations, a stack, a PEM block) is
made safe to keep.

A secret cut in two is no longer recognisable (``password=`` at character 490 of a line cut at 500 keeps
the value's first characters; ``s3a://KEY:SECRET@bucket`` cut before the ``@`` is no longer a URL with a
password). So the text is redacted before any display cut, as one piece (the lines of a block together,
so a private key or a value continued on the next line goes whole), and only then cut. Redaction needs a
bounded input: a line is first bounded to :data:`RAW_LINE_CHARS`, at a space where there is one, so the
only token cut there is dropped whole, far beyond what any display keeps.
"""

from __future__ import annotations

from emr_triage.analysis.redact import redact

# Characters of one line given to redaction: much more than any display keeps (500), so that what a
# bound cuts is never shown, and small enough that redacting a block of lines stays fast.
RAW_LINE_CHARS = 8192
_FILLER = "[REDACTED]"  # stands for a line a multi-line secret took with it, so the line numbers hold


def bound_line(line: str, limit: int = RAW_LINE_CHARS) -> str:
    """``line`` bounded for redaction: at most ``limit`` characters, ending before the token the bound
    would cut (when the line has a space to end at)."""
    if len(line) <= limit:
        return line
    head = line[:limit]
    space = max(head.rfind(" "), head.rfind("\t"))
    return head[:space] if space > 0 else head


def clip(text: str, limit: int) -> str:
    """Cut already-redacted ``text`` to ``limit`` characters."""
    return text[:limit]


def redact_record(lines: list[str], previous: str | None = None) -> list[str]:
    """Redact ``lines`` as one text (a key block, a value continued on the next line go whole), one output
    line per input line.

    Parameters
    ----------
    lines:
        The lines of one record, each bounded (:func:`bound_line`), none cut for display yet.
    previous:
        The line just before the record, when it is redacted apart (the lines before a match are one record,
        the match and its stack another): a key ending it (``--conf ...secret.key=``, ``password:``) has its
        value on the record's first line, which is redacted with it in view. It is not returned.

    Returns
    -------
    list of str
        As many lines as given: each one redacted; where a secret spanning lines was replaced by one
        marker, the lines it took stand as ``[REDACTED]``.
    """
    if not lines:
        return []
    redacted = _redact_aligned(lines)
    if previous is not None:
        # Only the first line can hold a value continued from the line before; a block that the line before
        # opens (a BEGIN with no END in view) would swallow it, and is kept out of it.
        first = _redact_aligned([previous, lines[0]])[1]
        if first != _FILLER:
            redacted[0] = first
    return redacted


def _redact_aligned(lines: list[str]) -> list[str]:
    redacted = redact("\n".join(lines)).split("\n")
    if len(redacted) == len(lines):
        return redacted
    aligned: list[str] = []
    carry = ""  # text redaction put before the first line (none today)
    import difflib  # here: only when redaction changed the number of lines (rare), not at each cold start

    matcher = difflib.SequenceMatcher(None, lines, redacted, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        wanted, got = i2 - i1, redacted[j1:j2]
        if op == "equal":
            aligned.extend(got)
        elif wanted == 0:  # lines redaction added (none today): kept on the line before
            if aligned:
                aligned[-1] = " ".join([aligned[-1], *got])
            else:
                carry = " ".join(got)
        elif len(got) >= wanted:
            aligned.extend([*got[: wanted - 1], " ".join(got[wanted - 1 :])])
        else:
            aligned.extend([*got, *[_FILLER] * (wanted - len(got))])
    if carry:
        aligned[0] = f"{carry} {aligned[0]}"
    return aligned


def redact_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags redacted by key and value: a tag whose key names a secret (``jdbc-password``) or whose value is
    one has its value replaced whole; a key that is itself a secret is redacted too."""
    safe: dict[str, str] = {}
    for key, value in tags.items():
        pair = f"{bound_line(key)}={bound_line(value)}"
        secret = redact(pair) != pair or redact(value) != value
        safe[redact(key)] = _FILLER if secret else value
    return safe


def bounded_words(words: list[str], limit: int = RAW_LINE_CHARS) -> str:
    """``words`` (a command's arguments) joined by spaces, cut at an argument's end to at most ``limit``
    characters, so that redaction gets a bounded text and sees every argument it gets whole. An argument
    longer than ``limit`` alone is bounded (:func:`bound_line`)."""
    kept: list[str] = []
    size = 0
    for word in words:
        if not word:
            continue
        if size + len(word) + (1 if kept else 0) > limit:
            if not kept:
                kept.append(bound_line(word, limit))
            break
        kept.append(word)
        size += len(word) + (1 if len(kept) > 1 else 0)
    return " ".join(kept)
