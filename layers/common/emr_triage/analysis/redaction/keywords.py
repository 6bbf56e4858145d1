"""The key/value mechanism: a value next to a password-like key, in every syntax, with one reader.

1. A key word (password, secret, token, account key, sig, ...) is found anywhere, as part of a longer name
   (``javax.jdo.option.ConnectionPassword``, ``fs.s3a.secret.key``, ``AWS_SECRET_ACCESS_KEY``).
2. The name around it is taken (letters, digits, ``_ . -``), with an opening quote if any (``"``, ``'``,
   ``\\"``, ``<``, ``<name>``). Names that describe a secret rather than hold one are skipped by their words
   (``...credentials.provider``, ``token.renewal.interval``, ``passwordPolicy``, ``ExpiredToken``).
3. The separator is read: ``= : => -> := == %3D %3A``, ``,`` between quoted items (tuples, ``.option("k",
   "v")``), XML ``</name><value>`` and ``<password>``, and a bare space only where it means "value follows"
   (``set k v``, ``--k v``, an environment dump ``KEY<two spaces or a tab>value``).
4. The value is read: quoted with backslash escapes, ``\\"``-quoted (JSON in a string), ``%22``-quoted, an
   XML text up to ``<``, or bare up to whitespace or the next ``;name=`` / ``&name=`` / ``,name=`` pair (so
   a ``;`` ``,`` ``&`` ``)`` ``}`` inside the value does not leave its tail behind). A key that ends its
   line with ``=`` or ``:`` takes its value from the start of the next line, unless that line is a log
   record, a stack frame or a name of its own.

A second, narrower reader takes a password written in a sentence (:func:`redact_prose`: ``password was
Hunter2!x``), where there is no key syntax at all.

Every step reads a bounded stretch of text from where the previous one stopped, and the scan resumes after
the value: the work is linear in the text's length.
"""

from __future__ import annotations

import re
from functools import lru_cache

from emr_triage.analysis.redaction.catalogue import MARK, KeyValueWords

_NAME_LIMIT = 120
_VALUE_LIMIT = 4096
_NAME_TAIL = re.compile(r"[\w.\-]{0,121}")
_SEPARATOR = re.compile(
    r"(?P<xml></(?:name|key)>\s{0,40}<value>)"
    r"|(?P<gt>>)"
    r"|[ \t]{0,8}(?P<op>=>|->|:=|==|=|:|%3[dDaA])[ \t]{0,8}"
    r"|(?P<comma>[ \t]{0,4},[ \t]{0,4})"
    r"|(?P<space>[ \t]{1,20})"
)
# A value on the next line, when the key line ends with its separator: an exception message ending in
# "password=" with the value on the stack's next line, a command echoed as "--conf ...secret.key=" with the
# value printed below it, a prompt's "password:".
_NEXT_LINE = re.compile(r"\r?\n[ \t]{0,40}(?=[^\s-])")
# ... unless that line is a log record of its own, a stack frame, or starts with a name of its own ("username:",
# "java.sql.SQLException:"): then the key had no value.
_NOT_A_VALUE_LINE = re.compile(
    r"\d{2,4}[-/.]\d\d[-/.]\d\d[ T]\d\d:\d\d|\[\d{4}-\d\d-\d\d|(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)[ :\]]"
    r"|at [\w$]|Caused by:|Traceback |File \"|\.\.\. \d|[^\s]{1,200}:(?:\s|$)"
)
_QUOTED = {
    # backslash escapes, and SQL's doubled quote ('it''s')
    '"': re.compile(r'"(?:[^"\\\n]|\\.|""){0,4096}"'),
    "'": re.compile(r"'(?:[^'\\\n]|\\.|''){0,4096}'"),
}
_BARE = re.compile(r"[^\s\"'<>]{1,4096}")
_NEXT_PAIR = re.compile(r"(?:[;&,]|%26|%3[bB])[\w.\-]{1,60}(?:=|%3[dD])")
_PERCENT_QUOTE = re.compile(r"%22", re.I)
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]{0,40}(?:_[A-Z0-9]{1,40}){1,8}")
# A reference to a secret, not the secret: ${VAR}, {{ var }}, $VAR, $(command), %s, {}.
_REFERENCE = re.compile(
    r"(?:\\?[\"']|%22)?(?:\$\{[^}\s]{1,200}\}|\{\{[^}\n]{1,200}\}\}|\$[A-Z_][A-Z0-9_]{1,60}(?![\w])|\$\(|%[sdr](?![\w])|\{\d{0,2}\}(?![\w]))"
)
# "WARN Token: Cannot find class ...": a log4j level, then the logger's name, then its message.
_LOG_LEVEL_BEFORE = re.compile(r"(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL) {1,2}")
_ERROR_CODE_NAME = re.compile(r"(?:Expired|Invalid|Missing|Bad|Unrecognized)[A-Za-z]{0,80}")


@lru_cache(maxsize=8)
def _trigger(words: tuple[str, ...], ignore_case: bool = False) -> re.Pattern[str]:
    # Longest first, so "secret key" wins over "secret"; a space in a word is an optional separator. The
    # search runs on the lowercased text (ten times faster than re.I); re.I only when lowercasing changed
    # the text's length (a few non-ASCII letters), where positions would no longer line up.
    alternatives = sorted(words, key=len, reverse=True)
    expression = "|".join(r"[_.\-]?".join(map(re.escape, word.split())) for word in alternatives)
    return re.compile(expression, re.I if ignore_case else 0)


def _is_word(text: str, start: int, end: int, short: bool) -> bool:
    """The key word at [start, end) stands as a word of its name: camelCase, separators or a plural 's'."""
    after = text[end : end + 1]
    if after == "s" and not text[end + 1 : end + 2].islower():
        after = text[end + 1 : end + 2]
    if after.islower():
        return False
    if short and start > 0 and not (start == 2 and text.startswith("-D")):  # a JVM property: -Dpwd=
        before = text[start - 1]
        if before.isalpha() and not (before.islower() and text[start].isupper()):
            return False
    return True


def _name_start(text: str, start: int) -> int:
    """Where the name run holding ``start`` begins, or -1 when it is longer than a name can be."""
    i = start
    floor = max(0, start - _NAME_LIMIT)
    while i > floor:
        char = text[i - 1]
        if not (char.isalnum() or char in "_.-"):
            return i
        i -= 1
    return i if i == 0 else -1


def _describes_a_secret(name: str, hit_start: int, hit_end: int, words: KeyValueWords) -> bool:
    """The name is about a secret (its provider, interval, size, an error about it), not a secret."""
    rest = name[hit_end:]
    after = [word.lower() for word in _NAME_WORDS.findall(rest)]
    if any(word in words.not_secret_after for word in after):
        return True
    before = _NAME_WORDS.findall(name[:hit_start])
    return bool(before) and before[-1].lower() in words.not_secret_before


def _logger_or_error_code(name: str, hit_end: int) -> bool:
    """``HadoopDelegationTokenManager:`` / ``ExpiredToken:``: a logger or an error code before a message."""
    rest = name[hit_end:]
    rest = rest[1:] if rest[:1] == "s" else rest
    return rest[:1].isupper() or bool(_ERROR_CODE_NAME.fullmatch(name))


def _after_log_level(text: str, name_start: int) -> bool:
    window = text[max(0, name_start - 8) : name_start]
    return any(_LOG_LEVEL_BEFORE.fullmatch(window[i:]) for i in range(len(window)))


def _read_value(text: str, v: int, sep: re.Match[str]) -> tuple[int, int, str] | None:
    """(start, end, content) of the value at ``v``, or None when there is none."""
    if sep["xml"] or sep["gt"]:
        end = text.find("<", v, v + _VALUE_LIMIT)
        if end < 0:
            line_end = text.find("\n", v)
            end = len(text) if line_end < 0 else line_end
        return v, end, text[v:end].strip()
    for opener in ('\\"', "\\'"):
        if text.startswith(opener, v):
            end = text.find(opener, v + 2, v + _VALUE_LIMIT)
            line_end = text.find("\n", v)
            if end < 0:
                end = len(text) if line_end < 0 else line_end
            else:
                end += 2
            return v, end, text[v + 2 : end - 2]
    if text[v : v + 3].lower() == "%22":
        close = _PERCENT_QUOTE.search(text, v + 3, v + _VALUE_LIMIT)
        if close:
            return v, close.end(), text[v + 3 : close.start()]
    quote = text[v : v + 1]
    if quote in _QUOTED:
        match = _QUOTED[quote].match(text, v)
        if match:
            return v, match.end(), match.group(0)[1:-1]
        line_end = text.find("\n", v)
        end = len(text) if line_end < 0 else line_end
        return v, end, text[v + 1 : end]
    match = _BARE.match(text, v)
    if not match:
        return None
    value = match.group(0)
    pair = _NEXT_PAIR.search(value)
    if pair:
        value = value[: pair.start()]
    value = value.rstrip(")]},;.")
    return v, v + len(value), value


def redact_key_values(text: str, words: KeyValueWords) -> str:
    """Replace every value that sits next to a password-like key with ``[REDACTED]``."""
    lowered = text.lower()
    same_length = len(lowered) == len(text)
    trigger = _trigger(words.words, ignore_case=not same_length)
    pieces: list[str] = []
    cursor = 0
    scanned_to = 0  # names already judged end here; hits before it are inside them
    for hit in trigger.finditer(lowered if same_length else text):
        start, end = hit.span()
        if start < scanned_to or start < cursor:
            continue
        name_start = _name_start(text, start)
        tail = _NAME_TAIL.match(text, end)
        name_end = tail.end() if tail else end
        scanned_to = name_end
        if name_start < 0 or name_end - end > _NAME_LIMIT:
            continue
        while name_end > end and text[name_end - 1] in ".-":
            name_end -= 1
        name = text[name_start:name_end]
        last = _last_word(_trigger(words.words, ignore_case=True), name)
        # A path's segment (/etc/passwd: …) is not a key, unless it is one (a partition-style …/password=x/).
        if last is None or (name_start > 0 and text[name_start - 1] == "/" and text[name_end : name_end + 1] != "="):
            continue
        hit_start, hit_end = last
        if _describes_a_secret(name, hit_start, hit_end, words):
            continue
        found = _value_after(text, name_start, name_end, name, hit_end)
        if found is None:
            continue
        value_start, value_end, content = found
        if _not_a_secret(text, value_start, content, name, words):
            continue
        if content.startswith(("${", "{{")) and content.endswith("}"):
            continue
        pieces.append(text[cursor:value_start])
        pieces.append(MARK)
        cursor = value_end
        scanned_to = value_end
    if not pieces:
        return text
    pieces.append(text[cursor:])
    return "".join(pieces)


def _not_a_secret(text: str, value_start: int, content: str, name: str, words: KeyValueWords) -> bool:
    """Placeholders (null, ***, an empty list), markers, token descriptions, a shell's working directory."""
    bare = content.strip().lower()
    if bare in words.placeholders or content.startswith("[REDACTED") or not any(c.isalnum() for c in bare):
        return True
    if text[value_start : value_start + 16].lower().startswith(words.description_prefixes):
        return True
    if _REFERENCE.match(text, value_start):
        return True
    return name in words.directory_names and content.startswith("/")


def _last_word(trigger: re.Pattern[str], name: str) -> tuple[int, int] | None:
    """The span of the name's last key word that stands as a word, or None."""
    last = None
    for match in trigger.finditer(name):
        short = len(match.group(0)) <= 3
        if _is_word(name, match.start(), match.end(), short):
            last = match.span()
    return last


def _value_after(text: str, name_start: int, name_end: int, name: str, hit_end: int) -> tuple[int, int, str] | None:
    opener = ""
    for candidate in ('\\"', "\\'", '"', "'", "<"):
        if text.startswith(candidate, max(0, name_start - len(candidate))) and name_start >= len(candidate):
            opener = candidate
            break
    pos = name_end
    quoted = False
    if opener and opener != "<" and text.startswith(opener, pos):
        pos += len(opener)
        quoted = True
    elif text[pos : pos + 3].lower() == "%22":  # a URL-encoded quote: %22password%22%3A%22...%22
        pos += 3
        quoted = True
    sep = _SEPARATOR.match(text, pos)
    if sep is None:
        return None
    v = sep.end()
    if sep["xml"]:
        if not text.startswith(">", name_start - 1):
            return None
    elif sep["gt"]:
        if opener != "<":
            return None
    elif sep["op"]:
        op = sep["op"]
        if op == ":":
            after = text[sep.end("op") : sep.end("op") + 1]
            if after not in (" ", "\t", '"', "'", "\\", "\n", "\r"):
                return None
            if not quoted and (_logger_or_error_code(name, hit_end) or _after_log_level(text, name_start)):
                return None
    elif sep["comma"]:
        if not quoted or text[v : v + 1] not in ('"', "'"):
            return None
    else:  # a bare space: only where a value follows by convention
        gap = sep["space"]
        option = name.startswith("-")
        set_command = text[max(0, name_start - 4) : name_start].lower() == "set "
        env_dump = bool(_ENV_NAME.fullmatch(name)) and (len(gap) >= 2 or "\t" in gap)
        if not (option or set_command or env_dump) or text[v : v + 1] in ("-", "\n", ""):
            return None
    if sep["op"] and (continued := _NEXT_LINE.match(text, v)) and not _NOT_A_VALUE_LINE.match(text, continued.end()):
        v = continued.end()
    if v >= len(text) or text[v] in "\r\n":
        return None
    return _read_value(text, v, sep)


# ------------------------------------------------------------------------------------------------------------
# Prose: "password was Hunter2!xyz", "the secret is s3cr3tP@ss", "pwd Xy9!kk2"
# ------------------------------------------------------------------------------------------------------------
# A key word inside a name is no word of a sentence: keyStorePassword, PasswordAuthentication, DB_PASSWORD,
# --password-file, fs.s3a.secret, /etc/passwd, $PASSWORD, user@password.
_IN_A_NAME = re.compile(r"[\w.\-/$@]")
_PROSE_QUOTES = {'"': '"', "'": "'", "`": "`", "\u2018": "\u2019", "\u201c": "\u201d"}
_PROSE_BARE = re.compile(r"[^\s]{1,256}")
# A word of a sentence, however capitalised or hyphenated: "incorrect", "YES", "Invalid", "auto-generated".
_PROSE_WORD = re.compile(r"[^\W\d_]{1,64}(?:['\u2019-][^\W\d_]{1,64}){0,8}")
_PROSE_OPEN = "([{"
_PROSE_CLOSE = ".,;:)]}\"'`\u2019\u201d"  # sentence punctuation after a value, left in place
_PROSE_TRAIL = _PROSE_CLOSE + "!?"  # ... and what is ignored when telling a word from a secret
# Where a secret is kept, not the secret: a path, an ARN, a URL (a password inside one has its own form).
_PROSE_PLACES = ("/", "~/", "./", "arn:")


@lru_cache(maxsize=8)
def _prose_trigger(words: tuple[str, ...], verbs: tuple[str, ...], ignore_case: bool) -> re.Pattern[str]:
    # A key word, a blank, and a verb ("is", "was", "set to", with an optional ':' after it), then the value.
    # (That the word stands alone is checked on the character before it: a look-behind here would run at
    # every position of the text, three times slower.)
    def alternation(phrases: tuple[str, ...]) -> str:
        ordered = sorted(phrases, key=len, reverse=True)
        return "|".join(r"[ \t]{1,4}".join(map(re.escape, phrase.split())) for phrase in ordered)

    expression = (
        rf"(?P<key>{alternation(words)})[ \t]{{1,4}}"
        rf"(?:(?P<verb>{alternation(verbs)})(?:[ \t]{{0,4}}[:=])?[ \t]{{1,4}})?(?=\S)"
    )
    return re.compile(expression, re.I if ignore_case else 0)


def redact_prose(text: str, words: KeyValueWords, lowered: str | None = None) -> str:
    """Replace a password written in a sentence (``password was Hunter2!x``) with ``[REDACTED]``.

    A key word of ``prose.words`` standing alone, then a verb (``is``, ``was``, ``of``, ``set to``) or, for the
    password words of ``prose.after_space``, a bare blank, then the value. The value must look like a secret
    and not like the sentence going on: a quoted value always does; a bare one when it is not a word of
    letters (``incorrect``, ``YES``, ``auto-generated``), a count of under four digits, a placeholder, a
    reference, a path, an ARN or a URL. So ``password authentication failed``, ``the password is
    incorrect`` and ``password of 8 characters`` read as before. ``lowered`` is ``text.lower()`` when the
    caller has it.
    """
    prose = words.prose
    if not prose.words:
        return text
    lowered = text.lower() if lowered is None else lowered
    same_length = len(lowered) == len(text)
    trigger = _prose_trigger(prose.words, prose.verbs, not same_length)
    pieces: list[str] = []
    cursor = 0
    for hit in _prose_hits(trigger, lowered if same_length else text, _first_words(prose.words), same_length):
        if hit.start() < cursor or (hit.start() > 0 and _IN_A_NAME.match(text, hit.start() - 1)):
            continue
        if hit["verb"] is None and " ".join(hit["key"].lower().split()) not in prose.after_space:
            continue
        found = _prose_value(text, hit.end(), words)
        if found is None:
            continue
        start, end = found
        pieces.append(text[cursor:start])
        pieces.append(MARK)
        cursor = end
    if not pieces:
        return text
    pieces.append(text[cursor:])
    return "".join(pieces)


@lru_cache(maxsize=8)
def _first_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The fewest literals every key word starts with ("pass" for password, passwd, passphrase, pass phrase)."""
    firsts = sorted({word.split()[0] for word in words}, key=len)
    kept: list[str] = []
    for first in firsts:
        if not any(first.startswith(shorter) for shorter in kept):
            kept.append(first)
    return tuple(kept)


def _prose_hits(trigger: re.Pattern[str], haystack: str, firsts: tuple[str, ...], lowered: bool) -> list[re.Match[str]]:
    # The key words are found with str.find, and the trigger tried only there: five times faster than its
    # search, which tries every position that starts with one of their first letters.
    if not lowered:  # case-insensitive positions are the pattern's to find
        return list(trigger.finditer(haystack))
    starts: set[int] = set()
    for first in firsts:
        at = haystack.find(first)
        while at >= 0:
            starts.add(at)
            at = haystack.find(first, at + 1)
    return [hit for start in sorted(starts) if (hit := trigger.match(haystack, start))]


def _prose_value(text: str, v: int, words: KeyValueWords) -> tuple[int, int] | None:
    """The span of the secret at ``v``, or None when what follows the key word is not one."""
    closer = _PROSE_QUOTES.get(text[v])
    if closer:
        end = text.find(closer, v + 1, v + 258)
        if end > v + 1 and "\n" not in text[v + 1 : end]:
            content = text[v + 1 : end]
            return None if _prose_placeholder(content, words) else (v + 1, end)
        v += 1  # an unclosed quote: the value is what follows it
    match = _PROSE_BARE.match(text, v)
    if match is None:
        return None
    raw = match.group(0)
    if _REFERENCE.match(raw):
        return None
    start = v + len(raw) - len(raw.lstrip(_PROSE_OPEN))
    value = raw.lstrip(_PROSE_OPEN).rstrip(_PROSE_CLOSE)
    bare = value.rstrip(_PROSE_TRAIL)
    if _prose_placeholder(bare, words) or _PROSE_WORD.fullmatch(bare) or (bare.isdigit() and len(bare) < 4):
        return None
    if bare.lower().startswith(_PROSE_PLACES) or "://" in bare:
        return None
    return start, start + len(value)


def _prose_placeholder(content: str, words: KeyValueWords) -> bool:
    bare = content.strip()
    return (
        not any(c.isalnum() for c in bare)
        or bare.lower() in words.placeholders
        or bare.startswith("[REDACTED")
        or bool(_REFERENCE.match(bare))
    )
