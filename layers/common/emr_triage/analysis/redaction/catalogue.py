"""The catalogue of secret forms (``secrets.yaml``): token shapes, URL and command-line forms, and the words of
the key/value mechanism, loaded once and checked so that every expression stays linear in Python's ``re``.

Python's engine backtracks; an expression can only go quadratic (or worse) when a repetition is unbounded or
when a search rescans the rest of the text from every start. Every quantifier here must be bounded
(``{m,n}`` or ``?``), so from each start position a match explores a bounded number of steps: the whole
search is linear in the text's length. A ``*``, ``+`` or ``{n,}`` is refused with the entry's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_PATH = Path(__file__).with_name("secrets.yaml")
MARK = "[REDACTED]"


class SecretCatalogueError(ValueError):
    """The secrets catalogue is malformed; the message names the entry and the fix."""


@dataclass(frozen=True)
class SecretForm:
    """One secret shape: where to look (keywords), what to match, which part to replace."""

    id: str
    source: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    secret_group: str | None
    marker: str
    end: re.Pattern[str] | None
    redacted_examples: tuple[tuple[str, str], ...]
    kept_examples: tuple[str, ...]

    @property
    def is_block(self) -> bool:
        return self.end is not None


@dataclass(frozen=True)
class KeyValueWords:
    """The data of the key/value mechanism (see ``keywords.py``)."""

    words: tuple[str, ...]
    not_secret_after: frozenset[str]
    not_secret_before: frozenset[str]
    placeholders: frozenset[str]
    description_prefixes: tuple[str, ...]
    directory_names: frozenset[str]
    redacted_examples: tuple[tuple[str, str], ...]
    kept_examples: tuple[str, ...]
    prose: ProseWords


@dataclass(frozen=True)
class ProseWords:
    """The data of the prose reader (``password was Hunter2!x``; see ``keywords.py``)."""

    words: tuple[str, ...]  # key words that stand alone in a sentence, before a verb
    after_space: frozenset[str]  # ... those whose value may also follow a bare space ("pwd Xy9!kk2")
    verbs: tuple[str, ...]  # between the key word and its value ("is", "was", "set to")


@dataclass(frozen=True)
class SecretCatalogue:
    version: int
    forms: tuple[SecretForm, ...]
    key_value: KeyValueWords


def unbounded_repetition(pattern: str) -> str | None:
    """Return the first unbounded repetition (``*``, ``+``, ``{n,}``) in ``pattern``, or None.

    Possessive forms of bounded quantifiers (``{1,5}+``, ``?+``) are bounded and allowed.
    """
    in_class = False
    i = 0
    previous = ""
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            previous = pattern[i : i + 2]
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3
                previous = "]"
                continue
        elif char == "*":
            return "*"
        elif char == "+" and previous not in ("}", "?"):
            return "+"
        elif char == "{":
            match = re.match(r"\{(\d*),\}", pattern[i:])
            if match:
                return match.group(0)
        previous = char
        i += 1
    return None


def _compile(form_id: str, field: str, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise SecretCatalogueError(f"secret form {form_id!r}: {field} must be a non-empty string")
    unbounded = unbounded_repetition(pattern)
    if unbounded:
        raise SecretCatalogueError(
            f"secret form {form_id!r}: {field} has the unbounded repetition {unbounded!r}; bound it "
            "({0,256}) so the search stays linear"
        )
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SecretCatalogueError(f"secret form {form_id!r}: {field} is not a valid expression: {exc}") from exc


def _examples(form_id: str, raw: Any) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    if not isinstance(raw, dict) or not raw.get("redacted") or not raw.get("kept"):
        raise SecretCatalogueError(
            f"secret form {form_id!r}: needs examples with at least one 'redacted' ({{text, secret}}) and one "
            "'kept' text"
        )
    redacted = []
    for item in raw["redacted"]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item.get("secret"):
            raise SecretCatalogueError(f"secret form {form_id!r}: a redacted example needs 'text' and 'secret'")
        redacted.append((item["text"], str(item["secret"])))
    kept = tuple(str(text) for text in raw["kept"])
    return tuple(redacted), kept


def _form(raw: Any, index: int) -> SecretForm:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise SecretCatalogueError(f"secret form #{index + 1}: needs an 'id'")
    form_id = raw["id"]
    if not raw.get("source"):
        raise SecretCatalogueError(f"secret form {form_id!r}: needs a 'source' (where the shape comes from)")
    # An empty list is allowed when written out: the form then runs on every text (a shape with no literal,
    # such as a private key's body line).
    keywords = raw.get("keywords")
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k == k.lower() and k for k in keywords):
        raise SecretCatalogueError(
            f"secret form {form_id!r}: 'keywords' must be a list of lowercase literals ([] to run on every text)"
        )
    block = raw.get("kind") == "block"
    pattern = _compile(form_id, "begin" if block else "pattern", raw.get("begin" if block else "pattern"))
    end = _compile(form_id, "end", raw.get("end")) if block else None
    group = raw.get("secret")
    if group is not None and group not in pattern.groupindex:
        raise SecretCatalogueError(f"secret form {form_id!r}: its pattern has no group named {group!r}")
    redacted, kept = _examples(form_id, raw.get("examples"))
    return SecretForm(
        id=form_id,
        source=str(raw["source"]),
        keywords=tuple(keywords),
        pattern=pattern,
        secret_group=group,
        marker=str(raw.get("marker", MARK)),
        end=end,
        redacted_examples=redacted,
        kept_examples=kept,
    )


def _key_value(raw: Any) -> KeyValueWords:
    if not isinstance(raw, dict) or not raw.get("words"):
        raise SecretCatalogueError("secrets catalogue: 'key_value' needs a list of 'words'")
    redacted, kept = _examples("key_value", raw.get("examples"))

    def words(field: str) -> frozenset[str]:
        return frozenset(str(word).lower() for word in raw.get(field) or ())

    return KeyValueWords(
        words=tuple(str(word).lower() for word in raw["words"]),
        not_secret_after=words("not_secret_after"),
        not_secret_before=words("not_secret_before"),
        placeholders=frozenset("" if word is None else str(word).lower() for word in raw.get("placeholders") or ()),
        description_prefixes=tuple(str(prefix).lower() for prefix in raw.get("description_prefixes") or ()),
        directory_names=frozenset(str(name) for name in raw.get("directory_names") or ()),
        redacted_examples=redacted,
        kept_examples=kept,
        prose=_prose(raw.get("prose")),
    )


def _prose(raw: Any) -> ProseWords:
    if raw is None:  # a catalogue without a prose reader
        return ProseWords(words=(), after_space=frozenset(), verbs=())
    if not isinstance(raw, dict) or not raw.get("words") or not raw.get("verbs"):
        raise SecretCatalogueError("secrets catalogue: 'key_value.prose' needs 'words' and 'verbs'")
    words = tuple(str(word).lower() for word in raw["words"])
    after_space = frozenset(str(word).lower() for word in raw.get("after_space") or ())
    if not after_space <= set(words):
        raise SecretCatalogueError("secrets catalogue: every 'key_value.prose.after_space' word must be in its 'words'")
    return ProseWords(words=words, after_space=after_space, verbs=tuple(str(verb).lower() for verb in raw["verbs"]))


def parse_catalogue(text: str, origin: str = "secrets.yaml") -> SecretCatalogue:
    """Read and check a secrets catalogue.

    Raises
    ------
    SecretCatalogueError
        One line naming the entry and what to change.
    """
    import yaml  # here, not at import time

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SecretCatalogueError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("version"), int) or not data.get("entries"):
        raise SecretCatalogueError(f"{origin}: expected 'version', a list of 'entries' and 'key_value'")
    forms = tuple(_form(raw, index) for index, raw in enumerate(data["entries"]))
    ids = [form.id for form in forms]
    duplicates = sorted({form_id for form_id in ids if ids.count(form_id) > 1})
    if duplicates:
        raise SecretCatalogueError(f"{origin}: secret form ids must be unique: {', '.join(duplicates)}")
    return SecretCatalogue(version=data["version"], forms=forms, key_value=_key_value(data.get("key_value")))


@lru_cache(maxsize=1)
def load_catalogue() -> SecretCatalogue:
    """The shipped catalogue, read once per process (at the first redaction, not at import)."""
    return parse_catalogue(CATALOGUE_PATH.read_text("utf-8"), str(CATALOGUE_PATH.name))
