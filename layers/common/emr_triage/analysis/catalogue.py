"""Load and validate the failure catalogue (rules as data) and users' additions to it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emr_triage.analysis.patterns import (
    MIN_LITERAL,
    Screened,
    any_search,
    compile_patterns,
    required_literals,
    screened,
    unbounded_wildcard,
)
from emr_triage.analysis.prefilter import Prefilter
from emr_triage.analysis.redos import backtracking_risk, rescan_risk
from emr_triage.analysis.scan import make_scanner
from emr_triage.exceptions import CatalogueError
from emr_triage.models.analysis import FindingKind, Severity
from emr_triage.models.validation import describe_validation_error, quoted, shorten

_SNAKE = r"^[a-z][a-z0-9_]{1,63}$"


class Rule(BaseModel):
    """One failure signature: how to recognise it and what to tell the on-call engineer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SNAKE)
    category: str = Field(pattern=_SNAKE)
    kind: FindingKind = "cause"
    rank: int = Field(ge=0, le=1000)
    severity: Severity
    retryable: bool | None
    title: str = Field(min_length=3, max_length=120)
    patterns: list[str] = Field(min_length=1)
    not_patterns: list[str] = Field(default_factory=list)
    ignore_case: bool = True
    # Lines common in healthy runs too (a lost task that is retried, a WARN about a slow node): evidence
    # only when the logs also show the job failing (a symptom), never a verdict on their own.
    requires_failure: bool = False
    # Lines every healthy run prints while it shuts down (executors whose driver went away, a SIGTERM from
    # YARN after the end): evidence only in a run known or shown to have failed, after everything else.
    shutdown_noise: bool = False
    # The log levels of the record a match must belong to ("none": a line no log record printed, e.g. an
    # uncaught exception or a paste); empty: any. For rules so general that healthy runs' INFO and WARN
    # records print matches all the time.
    levels: list[Literal["FATAL", "ERROR", "WARN", "INFO", "none"]] = Field(default_factory=list)
    # A catch-all (an exception no rule knows): tried only on lines no other rule matched.
    fallback: bool = False
    # The literals the scanner looks for instead of the patterns' own, when those are too common to be
    # worth it ("error" is on every ERROR line): a line without one of these is not tried. A trade of
    # recall for speed that the rule's author makes knowingly ("\n" ends a line).
    scan_for: list[str] = Field(default_factory=list)
    # Lines written when an application or step ends (its final status): with no step around it, a match
    # in the driver's log means the application failed (not only that something failed inside it).
    final_status: bool = False
    # When the headline of what matched (e.g. the exception line that ends a Python traceback) matches one
    # of these, the finding is only a symptom: a wrapper such as Py4JJavaError around the real error.
    symptom_when: list[str] = Field(default_factory=list)
    # A generic headline whose meaning is in the stack below it: the match counts only when one line of
    # its block (a frame, a ``Caused by:``) matches one of these. Frames are never shown as evidence.
    frames: list[str] = Field(default_factory=list)
    explanation: str = Field(min_length=3)
    remediation: str = Field(min_length=3)

    @cached_property
    def matcher(self) -> re.Pattern[str]:
        return compile_patterns(self.patterns, self.ignore_case)

    @cached_property
    def guard(self) -> re.Pattern[str] | None:
        return compile_patterns(self.not_patterns, self.ignore_case) if self.not_patterns else None

    @cached_property
    def symptom_guard(self) -> re.Pattern[str] | None:
        return compile_patterns(self.symptom_when, self.ignore_case) if self.symptom_when else None

    @cached_property
    def frames_matcher(self) -> re.Pattern[str] | None:
        return compile_patterns(self.frames, self.ignore_case) if self.frames else None

    @cached_property
    def hints(self) -> tuple[str, ...] | None:
        """Lowercase literals, one of which every matching line contains (None: no usable literal, so the
        rule must be tried on every line). Lets the analyser skip the vast majority of lines in C."""
        if self.scan_for:
            return tuple(dict.fromkeys(h.lower() for h in self.scan_for))
        found: list[str] = []
        for pattern in self.patterns:
            literals = required_literals(pattern)
            if not literals:
                return None
            found.extend(literals)
        return tuple(dict.fromkeys(h.lower() for h in found))

    @cached_property
    def screened(self) -> tuple[Screened, Screened] | None:
        """The patterns and the guards one by one, each behind the literals its matches contain (see
        :func:`screened`); None when the rule is only ever tried as one expression."""
        patterns = screened(self.patterns, self.ignore_case)
        guards = screened(self.not_patterns, self.ignore_case)
        return None if patterns is None or guards is None else (patterns, guards)

    def matches(self, line: str) -> bool:
        """True when ``line`` is evidence for this rule (a pattern matches and no guard does)."""
        screened = self.screened
        if screened is not None and line.isascii():
            lowered = line.lower()
            if not any_search(screened[0], line, lowered):
                return False
            return not any_search(screened[1], line, lowered)
        if self.matcher.search(line) is None:
            return False
        return self.guard is None or self.guard.search(line) is None


class EmrReason(BaseModel):
    """What an EMR state-change reason code means, when EMR explains a failure before any log does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str = Field(pattern=_SNAKE)
    severity: Severity
    retryable: bool | None
    title: str = Field(min_length=3, max_length=120)
    remediation: str = Field(min_length=3)


class BenignLine(BaseModel):
    """A line that healthy runs of some stack print (often at ERROR, often with a stack): never a cause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SNAKE)
    # Matched against the line a rule matched and against the log record that printed it (the message line
    # above an exception's stack), so an exception logged by a benign record is benign too.
    patterns: list[str] = Field(min_length=1)
    ignore_case: bool = True
    seen_in: str = Field(min_length=3)  # which stacks print it, in healthy runs
    sources: list[str] = Field(min_length=1)  # public logs or code that show it
    why: str = Field(min_length=3)

    @cached_property
    def matcher(self) -> re.Pattern[str]:
        return compile_patterns(self.patterns, self.ignore_case)

    @cached_property
    def hints(self) -> tuple[str, ...] | None:
        """Lowercase literals one of which every match contains (None: try the expression on every line)."""
        found: list[str] = []
        for pattern in self.patterns:
            literals = required_literals(pattern)
            if not literals:
                return None
            found.extend(h.lower() for h in literals)
        return tuple(found)

    def matches(self, text: str, lowered: str) -> bool:
        """Whether ``text`` (``lowered``: the same, lowercased) is this benign line."""
        hints = self.hints
        if hints is not None and not any(hint in lowered for hint in hints):
            return False
        return self.matcher.search(text) is not None


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | int | float
    rules: list[dict[str, Any]] = Field(default_factory=list)
    emr_reasons: dict[str, EmrReason] = Field(default_factory=dict)
    benign: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class Catalogue:
    """The rules in force: ours, then each user file's (same id replaces, new id adds), and the lines
    known to be benign (ours, then the users')."""

    version: str
    rules: tuple[Rule, ...]
    emr_reasons: dict[str, EmrReason]
    benign: tuple[BenignLine, ...] = ()

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def benign_entry(self, *texts: str | None) -> BenignLine | None:
        """The benign entry one of ``texts`` matches, if any (each entry's literals are looked for first,
        so most lines cost a few substring tests)."""
        always = self._benign_without_literals
        for text in texts:
            if not text:
                continue
            lowered = text.lower()
            if not always and not any(hint in lowered for hint in self._benign_literals):
                continue  # the usual case: none of any entry's literals is there
            for entry in self.benign:
                if entry.matches(text, lowered):
                    return entry
        return None

    @cached_property
    def _benign_literals(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(hint for entry in self.benign for hint in entry.hints or ()))

    @cached_property
    def _benign_without_literals(self) -> bool:
        return any(entry.hints is None for entry in self.benign)

    @cached_property
    def prefilter(self) -> Prefilter:
        return Prefilter.build(self.rules)


DEFAULT_CATALOGUE = "catalogue.yaml"
# Lines healthy runs print, that never count as a cause (data, each with its source).
BENIGN_CATALOGUE = "benign.yaml"


@dataclass(frozen=True)
class _RulesFile:
    version: str
    rules: list[Rule]
    emr_reasons: dict[str, EmrReason]
    benign: list[BenignLine]


def _check_patterns(
    origin: str, what: str, field_name: str, patterns: list[str], ignore_case: bool, *, trusted: bool = False
) -> None:
    """Each pattern must compile, run in linear time on long lines, and combine with the others. The time
    checks are skipped for our own files (``trusted``): the tests run them on every shipped pattern, and at
    each cold start they would cost more than the rest of the load."""
    for number, pattern in enumerate(patterns, start=1):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise CatalogueError(
                f"rules file {origin}: {what}: {field_name}[{number}] {pattern!r} "
                f"is not a valid regular expression: {exc}"
            ) from exc
        if trusted:
            continue
        risk = backtracking_risk(pattern, ignore_case)
        if risk is not None:
            raise CatalogueError(f"rules file {origin}: {what}: {field_name}[{number}] {quoted(pattern)}: {risk}")
        if unbounded_wildcard(pattern):
            raise CatalogueError(
                f"rules file {origin}: {what}: {field_name}[{number}] {pattern!r} has '.*' or "
                "'.+' before its end, which takes quadratic time on a long line that repeats the text "
                "before it; bound it, e.g. '.{0,200}'"
            )
        risk = rescan_risk(pattern, ignore_case)
        if risk is not None:
            raise CatalogueError(f"rules file {origin}: {what}: {field_name}[{number}] {quoted(pattern)}: {risk}")
    try:
        if patterns:
            compile_patterns(patterns, ignore_case)
    except re.error as exc:
        raise CatalogueError(
            f"rules file {origin}: {what}: its {field_name} cannot be combined into one "
            f"expression ({exc}); use a group name only once per rule"
        ) from exc


# Bounds on a user's rules file, checked before it is parsed. Ours is ~100 KB and 6 levels deep; libyaml's
# composer recurses in C, so a file nested 50,000 deep would end the process with a segmentation fault,
# not an exception; and an alias to a collection is a copy for the validation that follows (a "billion
# laughs" file of a few lines expands to gigabytes).
MAX_RULES_FILE_BYTES = 4 * 1024 * 1024
MAX_RULES_NESTING = 64


def read_user_rules(path: Path) -> str:
    """The text of a user's rules file, refused with one line naming it when it is not a file we load.

    Raises
    ------
    CatalogueError
        The file cannot be read, is larger than :data:`MAX_RULES_FILE_BYTES` or is not UTF-8.
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_RULES_FILE_BYTES + 1)
    except OSError as exc:
        raise CatalogueError(f"rules file {path}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_RULES_FILE_BYTES:
        raise CatalogueError(
            f"rules file {path}: larger than {MAX_RULES_FILE_BYTES // (1024 * 1024)} MiB; a rules file is a few "
            "kilobytes of YAML: check that this is the file you meant, or split it into a folder of files"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueError(
            f"rules file {path}: not UTF-8 text (byte {exc.start:,} is {data[exc.start : exc.start + 1]!r}); "
            "save it as UTF-8"
        ) from exc


def _check_yaml_shape(text: str, origin: str) -> None:
    """Refuse YAML nested deeper than :data:`MAX_RULES_NESTING` or aliasing a collection, from its event
    stream (which libyaml produces without recursion), before it is composed."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    collections: set[str] = set()
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_RULES_NESTING:
                    raise CatalogueError(
                        f"rules file {origin}: nested too deeply (more than {MAX_RULES_NESTING} levels); a rules "
                        "file is a list of rules, each a mapping of fields"
                    )
                if event.anchor is not None:
                    collections.add(event.anchor)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent) and event.anchor in collections:
                raise CatalogueError(
                    f"rules file {origin}: alias *{shorten(str(event.anchor), 40)} repeats a list or mapping; "
                    "aliases may only repeat a plain value in a rules file"
                )
    except yaml.YAMLError as exc:
        raise CatalogueError(f"rules file {origin}: not valid YAML: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return shorten(" ".join(str(exc).split()), 300)


def _read_rules_file(text: str, origin: str, *, trusted: bool = False) -> _RulesFile:
    import yaml  # here, not at import time: a catalogue read back from the cache needs no YAML

    if not trusted:
        _check_yaml_shape(text, origin)
    try:
        # libyaml's loader when PyYAML was built with it: the same documents, ten times faster
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise CatalogueError(f"rules file {origin}: not valid YAML: {_one_line(exc)}") from exc
    try:
        parsed = _CatalogueFile.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc, root="file")
        raise CatalogueError(
            f"rules file {origin}: expected 'version', a list of 'rules' and optional 'emr_reasons' and "
            f"'benign': {problems}"
        ) from exc
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(parsed.rules):
        rule_id = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            raise CatalogueError(f"rules file {origin}: rule {rule_id!r}: {describe_validation_error(exc)}") from exc
        for field_name in ("patterns", "not_patterns", "symptom_when", "frames"):
            _check_patterns(
                origin, f"rule {rule.id!r}", field_name, getattr(rule, field_name), rule.ignore_case, trusted=trusted
            )
        short = [h for h in rule.scan_for if len(h) < MIN_LITERAL or "\n" in h[:-1]]
        if short:
            raise CatalogueError(
                f"rules file {origin}: rule {rule.id!r}: scan_for {short!r}: {MIN_LITERAL}+ characters each, and a "
                "line break only at the end (a literal is found within one line)"
            )
        for number, pattern in enumerate([] if rule.scan_for else rule.patterns, start=1):
            if required_literals(pattern) is None:
                raise CatalogueError(
                    f"rules file {origin}: rule {rule.id!r}: patterns[{number}] {pattern!r} has no fixed text of "
                    f"{MIN_LITERAL}+ characters that every match contains; the scanner looks for such text first, "
                    "so add a distinctive word (e.g. the exception's class name) to the pattern"
                )
        if rule.id in seen:
            raise CatalogueError(f"rules file {origin}: rule {rule.id!r} is defined twice")
        seen.add(rule.id)
        rules.append(rule)
    benign: list[BenignLine] = []
    for index, raw in enumerate(parsed.benign):
        entry_id = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            entry = BenignLine.model_validate(raw)
        except ValidationError as exc:
            raise CatalogueError(
                f"rules file {origin}: benign line {entry_id!r}: {describe_validation_error(exc)}"
            ) from exc
        _check_patterns(
            origin, f"benign line {entry.id!r}", "patterns", entry.patterns, entry.ignore_case, trusted=trusted
        )
        if entry.id in {e.id for e in benign}:
            raise CatalogueError(f"rules file {origin}: benign line {entry.id!r} is defined twice")
        benign.append(entry)
    return _RulesFile(str(parsed.version), rules, parsed.emr_reasons, benign)


def load_catalogue(extra_files: Iterable[str | Path] = (), *, cache_dir: Path | None = None) -> Catalogue:
    """Load our catalogue, then each user rules file in order.

    Parameters
    ----------
    extra_files:
        YAML files in the same format as ours, or folders of them. A rule with an existing id replaces
        that rule.
    cache_dir:
        Where the checked catalogue and its compiled scanner are kept between processes (the command
        line's start-up; see :mod:`emr_triage.analysis.catalogue_cache`). ``None``: no cache.

    Raises
    ------
    CatalogueError
        Naming the file, the rule id and the problem (bad field, invalid regex, duplicate id, bad YAML).
    """
    rules_dir = resources.files("emr_triage.analysis").joinpath("rules")
    ours = [
        (f"emr_triage/analysis/rules/{name}", rules_dir.joinpath(name).read_text("utf-8"))
        for name in (DEFAULT_CATALOGUE, BENIGN_CATALOGUE)
    ]
    paths = _rules_paths(extra_files)
    if cache_dir is None:
        return _load(ours, paths)
    from emr_triage.analysis import catalogue_cache

    try:
        key = catalogue_cache.cache_key([*ours, *((str(path), read_user_rules(path)) for path in paths)])
    except CatalogueError:  # the usual load says what is wrong with the file, in the same words
        return _load(ours, paths)
    catalogue = catalogue_cache.load(cache_dir, key)
    if catalogue is None:
        catalogue = _load(ours, paths)
        catalogue_cache.store(cache_dir, key, catalogue)
    # The scanner is compiled once per catalogue; its Hyperscan database is kept in the cache folder too.
    catalogue.prefilter._scanners[""] = make_scanner(catalogue.prefilter.hints, cache_dir=cache_dir)
    return catalogue


def _load(ours: list[tuple[str, str]], paths: list[Path]) -> Catalogue:
    """Our catalogue and benign lines (``ours``: origin and text of each), then each user file in order."""
    catalogue_file, benign_file = (_read_rules_file(text, origin, trusted=True) for origin, text in ours)
    version, emr_reasons = catalogue_file.version, catalogue_file.emr_reasons
    by_id = {rule.id: rule for rule in catalogue_file.rules}
    benign = {entry.id: entry for entry in [*catalogue_file.benign, *benign_file.benign]}
    for path in paths:
        extra = _read_rules_file(read_user_rules(path), str(path))
        version = f"{version}+{path.stem}@{extra.version}"
        for rule in extra.rules:
            by_id[rule.id] = rule
        for entry in extra.benign:
            benign[entry.id] = entry
        emr_reasons = {**emr_reasons, **extra.emr_reasons}
    return Catalogue(
        version=version, rules=tuple(by_id.values()), emr_reasons=emr_reasons, benign=tuple(benign.values())
    )


def _rules_paths(extra_files: Iterable[str | Path]) -> list[Path]:
    """Each given file, and the ``*.yaml``/``*.yml`` files of each given folder in name order."""
    paths: list[Path] = []
    for extra in extra_files:
        path = Path(extra)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            paths.append(path)
    return paths


@lru_cache(maxsize=4)
def get_catalogue(rules_file: str | None = None) -> Catalogue:
    """The catalogue for this process (cached: it is loaded and compiled once per cold start)."""
    return load_catalogue([rules_file] if rules_file else [])
