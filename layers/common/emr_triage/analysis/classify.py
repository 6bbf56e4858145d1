"""Find failure signatures in log lines and choose the root cause among them.

Pure functions: lines in, findings and a diagnosis out. Each finding keeps the first line that matched a
rule in a log, the lines that belong to it (stack frames, ``Caused by:`` chain, a Python traceback up to
its exception line), how often the rule matched, and the first frame of the user's own code. All kept
text is redacted here, before anything else sees it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emr_triage.analysis.catalogue import Catalogue, Prefilter, Rule
from emr_triage.analysis.exit_codes import EXIT_CODE, SIGNAL, describe_exit_code, describe_signal
from emr_triage.analysis.redact import redact, redact_lines
from emr_triage.analysis.scan import LiteralScanner
from emr_triage.models.analysis import (
    AnalysisReport,
    Diagnosis,
    ExitCode,
    ExtractLine,
    Finding,
    LogRead,
    SecondaryFinding,
)

MAX_EVIDENCE_LINES = 25
MAX_EVIDENCE_LINE_CHARS = 500
MAX_BLOCK_LINES = 400  # lines of one stack scanned for the user's code location
MAX_FINDINGS_KEPT = 12

_CONTINUATION = re.compile(
    r"^(?:\s|Caused by:|Suppressed:|\.\.\. \d+ more|Driver stacktrace:|: "
    # The unindented lines of a YARN diagnostics block ("Exception from container-launch." and on)
    r"|Failing this attempt|Diagnostics:|Container id:|Exit code:|Exit status:|Exception message:|Stack trace:"
    r"|Shell output:|Container exited with|Container killed on request|Killed by external signal"
    r"|For more detailed output|\[\d{4}-\d\d-\d\d[ T][\d:.]+\])"
)
_TRACEBACK = "Traceback (most recent call last)"
# log4j prints "<message>: <exception>" and then the throwable itself, unindented, then its frames.
_EXCEPTION_HEADLINE = re.compile(
    r'^(?:Exception in thread "[^"]*" )?(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable)(?::|\s*$)'
)
# A Java stack frame is never evidence by itself: "at com.acme.OutOfMemoryErrorHandler.handle(...)" names
# an exception class without anything having thrown it.
_JAVA_FRAME_LINE = re.compile(r"^\s+at\s+[\w$.<>/]+\(")
_JAVA_FRAME = re.compile(r"^\s*at\s+(?P<cls>[\w$.]+)\.(?P<method>[\w$<>]+)\((?P<file>[^)]*)\)")
_PYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_FRAMEWORK_CLASS = re.compile(
    r"^(?:java|javax|jdk|sun|scala|org\.apache|org\.spark_project|org\.sparkproject|com\.amazon|com\.amazonaws"
    r"|software\.amazon|io\.netty|py4j|com\.google|com\.fasterxml|org\.slf4j|org\.eclipse|org\.glassfish"
    r"|net\.razorvine|org\.json4s|akka|com\.esotericsoftware|org\.codehaus)\."
)
_FRAMEWORK_PATH = re.compile(r"(?:/pyspark/|pyspark\.zip|/py4j|/site-packages/|/dist-packages/|/lib/python\d|<frozen )")
_LOG_PREFIX = re.compile(
    r"^(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\s+"
    r"(?:\[[^\]]*\]\s*)?(?:[\w.$-]+(?:\s\([^)]*\))?:\s)?"
)
_LEVEL = re.compile(
    r"^(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?(?P<level>INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\b"
)
# An exception log4j printed under a WARN record was caught and logged as a warning. (Under INFO it is
# more likely an uncaught exception printed after an unrelated line, e.g. by spark-shell.)
QUIET_LEVELS = frozenset({"WARN", "WARNING"})
_RECORD_LOOKBACK = 40  # lines walked back from an exception line to the log record that printed it
_APPLICATION_ID = re.compile(
    r"\b(?:Submitted application|Application report for|Application Id:?)\s+(application_\d+_\d+)"
)
# The driver's "INFO SparkContext: Submitted application: <spark.app.name>" (the name people know a job by).
_SPARK_APP_NAME = re.compile(r"\bSparkContext: Submitted application: (\S.{0,199})")

# Masks for fingerprints: variable parts become placeholders (Drain-style templates).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:application|appattempt)_\d+_\d+(?:_\d+)?"), "<app>"),
    (re.compile(r"\bcontainer_(?:e\d+_)?\d+_\d+_\d+_\d+"), "<container>"),
    (re.compile(r"\bj-[A-Z0-9]{6,}\b"), "<cluster>"),
    (re.compile(r"\bs-[A-Z0-9]{6,}\b"), "<step>"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b"), "<instance>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<uri>"),
    (re.compile(r"\bip-\d+-\d+-\d+-\d+(?:\.[\w.-]+)?"), "<host>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?:/[\w.@%+=-]+){2,}/?"), "<path>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:[.,]\d+)*"), "<n>"),
)


def strip_log_prefix(line: str) -> str:
    """Drop a log4j/controller timestamp, level and logger name from the front of a line."""
    return _LOG_PREFIX.sub("", line, count=1).strip()


def mask_variables(text: str) -> str:
    """Replace ids, hosts, paths, numbers and times with placeholders (for fingerprints)."""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def fingerprint(rule_id: str, summary: str, location: str | None) -> str:
    """A stable id of a failure: the same bug on tomorrow's run gets the same value.

    Ids, numbers, hosts, paths and times are masked; the rule, the wording of the error and the user's
    code location (without line numbers) are kept.
    """
    material = "|".join((rule_id, mask_variables(summary), mask_variables(location or "")))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _user_java_frame(line: str) -> str | None:
    match = _JAVA_FRAME.match(line)
    if not match or _FRAMEWORK_CLASS.match(match["cls"]):
        return None
    return f"{match['cls']}.{match['method']} ({match['file']})"


def _user_python_frame(line: str) -> str | None:
    match = _PYTHON_FRAME.match(line)
    if not match or _FRAMEWORK_PATH.search(match["path"]):
        return None
    name = match["path"].rsplit("/", 1)[-1]
    return f"{name}:{match['line']} in {match['func']}"


@dataclass
class _Block:
    """Lines that belong to one finding's first match, gathered as the log streams by."""

    finding: Finding
    lines: list[str]
    traceback: bool
    exception_line_seen: bool = False
    scanned: int = 0
    java_location: str | None = None
    python_location: str | None = None
    open: bool = True
    symptom_when: re.Pattern[str] | None = None
    exception_line: str | None = None  # the line that ends a Python traceback
    wrapped: str | None = None  # the Java exception a Py4JJavaError wraps (": org.apache...: message")

    def feed(self, line: str) -> None:
        continuation = bool(_CONTINUATION.match(line))
        if not continuation:
            # Two unindented lines still belong to the block, once: the exception line that ends a Python
            # traceback, and the throwable log4j prints right after its message line (its frames follow).
            traceback_end = self.traceback and line.strip()
            throwable = self.scanned == 0 and _EXCEPTION_HEADLINE.match(line)
            if not self.exception_line_seen and (traceback_end or throwable):
                self.exception_line_seen = True
                if traceback_end:
                    self.exception_line = line.strip()[:MAX_EVIDENCE_LINE_CHARS]
            else:
                self.open = False
                return
        self.scanned += 1
        if self.exception_line and self.wrapped is None and line.startswith(": "):
            self.wrapped = line[2:].strip()[:MAX_EVIDENCE_LINE_CHARS]
        if len(self.lines) < MAX_EVIDENCE_LINES:
            self.lines.append(line[:MAX_EVIDENCE_LINE_CHARS])
        if self.java_location is None:
            self.java_location = _user_java_frame(line)
        if python_frame := _user_python_frame(line):
            self.python_location = python_frame  # the innermost user frame is the last one
        if self.scanned >= MAX_BLOCK_LINES:
            self.open = False

    def close(self) -> None:
        self.open = False
        evidence = redact_lines(self.lines)
        self.finding.evidence = evidence
        self.finding.location = self.python_location or self.java_location
        headline = self.exception_line or _summarise(self.lines)
        if self.symptom_when is not None and self.symptom_when.search(headline):
            # A wrapper (a traceback ending in Py4JJavaError): the error is the Java exception inside,
            # found by its own rule if one knows it; this finding only shows that the job failed.
            self.finding.kind = "symptom"
            headline = self.wrapped or headline
        self.finding.headline = redact(headline)


def _summarise(lines: list[str]) -> str:
    """The line that best says what went wrong in a block."""
    first = strip_log_prefix(lines[0])
    if _TRACEBACK in first:
        exception = next((ln for ln in lines[1:] if ln.strip() and not ln[:1].isspace()), None)
        if exception:
            return exception.strip()[:MAX_EVIDENCE_LINE_CHARS]
    return first[:MAX_EVIDENCE_LINE_CHARS]


@dataclass
class LineAnalysis:
    """Findings, application ids and exit codes of one log, filled as its text streams by."""

    findings: list[Finding] = field(default_factory=list)
    application_ids: list[str] = field(default_factory=list)
    exit_codes: list[ExitCode] = field(default_factory=list)
    lines: int = 0
    # The Spark application's name, when this is its driver's log (redacted).
    spark_app_name: str | None = None


BLOCK_LINES = 4096
# The end of the text before a block, for the walk back from a match at its start: room for the
# _RECORD_LOOKBACK lines of a long stack, so a block boundary inside one changes nothing.
_TAIL_BYTES = 64 << 10
MAX_EXIT_CODES = 20
_SECTION_CONTAINER = re.compile(r"^Container: (container_\S+)")
_SECTION_LOGTYPE = re.compile(r"^\s*LogType:\s*(\S+)")
_DRIVER_CONTAINER = re.compile(r"_0*1$")


def _decode(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:-1] if text.endswith("\r") else text


@dataclass
class _Scan:
    """The state of one log's scan: findings so far, evidence blocks still collecting lines."""

    catalogue: Catalogue
    source: str
    source_weight: int
    scanner: LiteralScanner
    result: LineAnalysis = field(default_factory=LineAnalysis)
    by_rule: dict[str, Finding] = field(default_factory=dict)
    exit_codes: dict[tuple[int | None, str | None], ExitCode] = field(default_factory=dict)
    open_blocks: list[_Block] = field(default_factory=list)
    lines_before: int = 0  # complete lines in the blocks already scanned
    unterminated: bool = False  # the last block ended without a line break
    previous_tail: bytes = b""  # the end of the last block, for the lines before a match at a block's start
    container: str | None = None
    log_type: str | None = None

    def block(self, data: bytes, newlines: int | None = None) -> None:
        """Scan one block of text (ending at a line break, except pieces of an over-long line).
        ``newlines``: its number of line breaks, when the reader counted them already."""
        prefilter = self.catalogue.prefilter
        # Which literals hit on which line: (line start, line end, literal indexes), in line order.
        candidates: list[tuple[int, int, set[int]]] = []
        line_end = -1
        for end, index in self.scanner.scan(data):
            if end <= line_end:
                candidates[-1][2].add(index)
                continue
            start = data.rfind(b"\n", 0, end - 1) + 1
            line_end = data.find(b"\n", end - 1)
            if line_end < 0:
                line_end = len(data)
            candidates.append((start, line_end, {index}))
        counted_at = 0
        counted = 0
        position = 0  # start of the first line not yet handed to the open blocks
        for start, end, indexes in candidates:
            if self.open_blocks and position < start:
                position = self._feed_blocks(data, position, start, counted_at, counted)
            counted += data.count(b"\n", counted_at, start)
            counted_at = start
            line_no = self.lines_before + counted + 1
            line = _decode(data[start:end])
            self._candidate(line, line_no, indexes, prefilter, data, start)
            position = end + 1
        if self.open_blocks and position < len(data):
            self._feed_blocks(data, position, len(data), counted_at, counted)
        self.lines_before += newlines if newlines is not None else counted + data.count(b"\n", counted_at)
        self.unterminated = not data.endswith(b"\n")
        self.previous_tail = _tail(self.previous_tail, data)

    def _feed_blocks(self, data: bytes, position: int, stop: int, counted_at: int, counted: int) -> int:
        """Hand the lines in ``data[position:stop]`` to the open evidence blocks until they all close."""
        while self.open_blocks and position < stop:
            end = data.find(b"\n", position, stop)
            end = stop if end < 0 else end
            self._feed(_decode(data[position:end]))
            position = end + 1
        return position

    def _feed(self, line: str) -> None:
        for block in self.open_blocks:
            block.feed(line)
            if not block.open:
                block.close()
        self.open_blocks = [b for b in self.open_blocks if b.open]

    def _candidate(
        self, line: str, line_no: int, indexes: set[int], prefilter: Prefilter, data: bytes, start: int
    ) -> None:
        rules: dict[str, Rule] = {}
        extractors: set[str] = set()
        for index in sorted(indexes):
            for rule in prefilter.rules[index]:
                rules.setdefault(rule.id, rule)
            extractors |= prefilter.extractors[index]
        expanded = _expand_json(line) if line.startswith("{") else None
        for position, text in enumerate(expanded or [line]):
            if position or self.open_blocks:
                self._feed(text)
            if "section" in extractors:
                self._section(text)
            if "application_id" in extractors:
                self._application_id(text)
            if "exit_code" in extractors:
                self._exit_code(text, line_no)
            if rules and not _JAVA_FRAME_LINE.match(text):
                self._match(text, line_no, rules.values(), data, start)

    def _section(self, line: str) -> None:
        if match := _SECTION_CONTAINER.match(line):
            self.container, self.log_type = match[1], None
        elif self.container and (match := _SECTION_LOGTYPE.match(line)):
            self.log_type = match[1]

    def _application_id(self, line: str) -> None:
        app = _APPLICATION_ID.search(line)
        if app and app[1] not in self.result.application_ids:
            self.result.application_ids.append(app[1])
        elif self.result.spark_app_name is None and (name := _SPARK_APP_NAME.search(line)):
            self.result.spark_app_name = redact(name[1].strip())[:200]

    def _exit_code(self, line: str, line_no: int) -> None:
        code: int | None = None
        name: str | None = None
        if match := EXIT_CODE.search(line):
            code = int(match["code"])
            if code == 0:
                return
            meaning = describe_exit_code(code)
        elif match := SIGNAL.search(line):
            name = match["name"]
            meaning = describe_signal(name)
        else:
            return
        key = (code, name)
        if key in self.exit_codes:
            self.exit_codes[key].count += 1
        elif len(self.exit_codes) < MAX_EXIT_CODES:
            seen = ExitCode(code=code, signal=name, meaning=meaning, source=self.source, line_no=line_no)
            self.exit_codes[key] = seen
            self.result.exit_codes.append(seen)

    def _match(self, line: str, line_no: int, rules: Iterable[Rule], data: bytes, start: int) -> None:
        record: tuple[str | None, bool] | None = None
        for rule in rules:
            if not rule.matches(line):
                continue
            if record is None:
                record = _record_level(line, data, start, self.previous_tail)
            level, inherited = record
            # An exception printed under a WARN record was handled and logged, not fatal by itself.
            quiet = inherited and level in QUIET_LEVELS
            existing = self.by_rule.get(rule.id)
            if existing is not None and not (existing.quiet and not quiet):
                existing.count += 1
                existing.last_line_no = line_no
                continue
            count = 1
            if existing is not None:  # a quiet first match, now a real one: this one is the evidence
                self.result.findings.remove(existing)
                count = existing.count + 1
            section = f"{self.container} {self.log_type or ''}".strip() if self.container else None
            driver = bool(self.container and _DRIVER_CONTAINER.search(self.container))
            finding = Finding(
                rule_id=rule.id,
                category=rule.category,
                kind=rule.kind,
                rank=rule.rank,
                severity=rule.severity,
                retryable=rule.retryable,
                requires_failure=rule.requires_failure,
                title=rule.title,
                source=self.source,
                source_weight=self.source_weight + (1 if driver else 0),
                line_no=line_no,
                headline="",
                context_before=redact_lines(_lines_before(data, start, 2, self.previous_tail)),
                section=section,
                level=level,
                quiet=quiet,
                count=count,
            )
            self.by_rule[rule.id] = finding
            self.result.findings.append(finding)
            self.open_blocks.append(
                _Block(
                    finding=finding,
                    lines=[line[:MAX_EVIDENCE_LINE_CHARS]],
                    # A traceback, or a paste that starts inside one (at a `File "...", line N` frame)
                    traceback=_TRACEBACK in line or bool(_PYTHON_FRAME.match(line)),
                    symptom_when=rule.symptom_guard,
                    java_location=_user_java_frame(line),
                    python_location=_user_python_frame(line),
                )
            )

    def finish(self) -> LineAnalysis:
        for block in self.open_blocks:
            block.close()
        self.open_blocks = []
        self.result.lines = self.lines_before + (1 if self.unterminated else 0)
        # Findings were appended as rules matched; keep them in line order.
        self.result.findings.sort(key=lambda f: f.line_no)
        return self.result


def _tail(previous: bytes, data: bytes) -> bytes:
    """The last ``_TAIL_BYTES`` of the text so far (``previous``, then ``data``), from a line's start."""
    joined = previous + data if len(data) < _TAIL_BYTES else data
    if len(joined) <= _TAIL_BYTES:
        return joined
    tail = joined[-_TAIL_BYTES:]
    # A line cut at its front has lost its timestamp and level, and would be misread: drop it.
    newline = tail.find(b"\n", 0, len(tail) - 1)
    return tail[newline + 1 :] if newline >= 0 else tail


def _record_level(line: str, data: bytes, start: int, previous: bytes) -> tuple[str | None, bool]:
    """The log level of the record a matched line belongs to, and whether it was inherited.

    A line with its own prefix (``26/11/20 02:00:00 WARN ...``) has its own level. An exception line
    without one belongs to the record above it that printed it (log4j prints the throwable after the
    message), found by walking back over the stack; a bare line with no record above has no level.
    """
    own = _LEVEL.match(line)
    if own:
        return own["level"], False
    if not (_EXCEPTION_HEADLINE.match(line) or line.startswith("Caused by:")):
        return None, False  # not the throwable of a log record (a Python traceback, a report, plain text)
    for before in itertools.islice(_lines_back(data, start, previous), _RECORD_LOOKBACK):
        record = _LEVEL.match(before)
        if record:
            return record["level"], True
        if before.strip() and not (_CONTINUATION.match(before) or _EXCEPTION_HEADLINE.match(before)):
            return None, False
    return None, False


def _lines_back(data: bytes, start: int, previous: bytes = b"") -> Iterator[str]:
    """The lines before the line at ``start``, nearest first, going on into ``previous`` (the end of the
    block before) when this block has no more; decoded one at a time, as the caller asks for them."""
    end = start - 1
    while end >= 0:
        begin = data.rfind(b"\n", 0, end) + 1
        yield _decode(data[begin:end])[:MAX_EVIDENCE_LINE_CHARS]
        end = begin - 1
    if previous:
        yield from _lines_back(previous, len(previous))


def _lines_before(data: bytes, start: int, count: int, previous: bytes = b"") -> list[str]:
    """Up to ``count`` lines just before the line at ``start``, in order."""
    return list(itertools.islice(_lines_back(data, start, previous), count))[::-1]


def _expand_json(line: str) -> list[str] | None:
    """A log4j2 JSON event (``JsonLayout`` or ``JsonTemplateLayout``) as the lines a pattern layout would
    print: ``LEVEL logger: message``, then the exception, its frames and its ``Caused by:`` chain."""
    try:
        event = json.loads(line)
        if not isinstance(event, dict):
            return None
        message = event.get("message", event.get("msg"))
        if isinstance(message, dict):  # JsonTemplateLayout can nest a structured message
            message = json.dumps(message)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than any log event
        return None
    level = event.get("level", event.get("log.level", ""))
    logger = event.get("loggerName", event.get("log.logger", event.get("logger_name", "")))
    if message is None:
        lines = [line]
    else:
        # No ": " in front when there is no logger (not log4j): it would read as a continuation line.
        prefix = " ".join(str(part) for part in (level, f"{logger}:" if logger else "") if part)
        # A message of several lines (a Python logger's traceback) is several lines of log.
        first, *rest = str(message).splitlines() or [""]
        lines = [f"{prefix} {first}".strip(), *rest]
    thrown = event.get("thrown")
    if isinstance(thrown, dict):
        lines.extend(_thrown_lines(thrown, first=True))
    elif isinstance(event.get("error.stack_trace"), str):
        lines.extend(event["error.stack_trace"].splitlines())
    elif isinstance(event.get("error.type"), str):
        lines.append(f"{event['error.type']}: {event.get('error.message', '')}")
    return lines


def _thrown_lines(thrown: dict[str, Any], first: bool, depth: int = 0) -> list[str]:
    name = thrown.get("name", "")
    text = thrown.get("message") or thrown.get("localizedMessage") or ""
    lines = [f"{'' if first else 'Caused by: '}{name}: {text}" if text else f"{'' if first else 'Caused by: '}{name}"]
    frames = thrown.get("extendedStackTrace") or thrown.get("stackTrace")
    for frame in frames if isinstance(frames, list) else []:
        if isinstance(frame, dict):
            where = f"{frame.get('file', 'Unknown Source')}:{frame.get('line', '?')}"
            lines.append(f"\tat {frame.get('class', '?')}.{frame.get('method', '?')}({where})")
    cause = thrown.get("cause")
    if isinstance(cause, dict) and depth < 10:
        lines.extend(_thrown_lines(cause, first=False, depth=depth + 1))
    return lines


def analyse_blocks(
    blocks: Iterable[bytes] | Iterable[tuple[bytes, int]],
    *,
    catalogue: Catalogue,
    source: str,
    source_weight: int = 1,
    scanner: LiteralScanner | None = None,
) -> LineAnalysis:
    """Find failure signatures in one log given as blocks of text (see
    :func:`emr_triage.logs.reader.iter_text_blocks`).

    The scanner finds every occurrence of the catalogue's literals in a block at once; only the lines with
    a hit are decoded and tried against the rules whose literals hit there, and only the lines that follow
    a match are read line by line, to gather its evidence (stack, ``Caused by:`` chain, traceback).

    Parameters
    ----------
    blocks:
        The log's text, each block ending at a line break (but pieces of an over-long line); or pairs of
        a block and its number of line breaks, counted by the producer (on another core).
    catalogue:
        The rules.
    source:
        Where the text comes from (S3 URI or path), recorded on each finding.
    source_weight:
        How much this log counts when findings tie (driver-side logs weigh more than executors').
    scanner:
        The literal scanner; by default the fastest available for the catalogue.

    Returns
    -------
    LineAnalysis
        One finding per rule that matched (its first match, with a count of all), in order of appearance.
    """
    scan = _Scan(
        catalogue=catalogue,
        source=source,
        source_weight=source_weight,
        scanner=scanner or catalogue.prefilter.scanner(),
    )
    for item in blocks:
        if isinstance(item, tuple):
            scan.block(*item)
        else:
            scan.block(item)
    return scan.finish()


def analyse_lines(
    lines: Iterable[str],
    *,
    catalogue: Catalogue,
    source: str,
    source_weight: int = 1,
    scanner: LiteralScanner | None = None,
) -> LineAnalysis:
    """:func:`analyse_blocks` for text already split into lines (tests, small inputs)."""

    def blocks() -> Iterable[bytes]:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= BLOCK_LINES:
                yield ("\n".join(batch) + "\n").encode("utf-8", errors="surrogateescape")
                batch = []
        if batch:
            yield ("\n".join(batch) + "\n").encode("utf-8", errors="surrogateescape")

    return analyse_blocks(blocks(), catalogue=catalogue, source=source, source_weight=source_weight, scanner=scanner)


_KIND_ORDER = {"cause": 0, "success": 1, "symptom": 2}


def _verdict_key(finding: Finding) -> tuple[int, int, int]:
    # Ties keep their order (sorted() is stable): within a log, earlier lines first; across logs, the
    # log analysed first (a step's own logs, then logs that arrive later). Success markers sort before
    # symptoms so that capping the list never drops the evidence that the job recovered.
    return (_KIND_ORDER[finding.kind], finding.rank, -finding.source_weight)


def _last(finding: Finding) -> int:
    return finding.last_line_no or finding.line_no


def succeeded(findings: Iterable[Finding]) -> bool:
    """Whether the logs show the application finishing successfully after every failure they show.

    A success marker (``Final app status: SUCCEEDED``, ``Step succeeded with exitCode 0``, a driver's
    ``Job 6 finished``) overrides the task failures, lost executors and ERROR lines before it in its log:
    Spark retried and recovered. It does not override anything failing after it in the same log, nor a
    failure outcome (a symptom) in another log.
    """
    findings = list(findings)
    last_success: dict[str, int] = {}
    for f in findings:
        if f.kind == "success":
            last_success[f.source] = max(last_success.get(f.source, 0), _last(f))
    if not last_success:
        return False
    for f in findings:
        if f.kind == "success":
            continue
        if f.source in last_success:
            if _last(f) > last_success[f.source]:
                return False
        elif f.kind == "symptom":
            return False
    return True


def merge_findings(existing: Iterable[Finding], new: Iterable[Finding]) -> list[Finding]:
    """Combine findings from several logs: one per (rule, log), best candidates first, capped.

    ``existing`` come before ``new`` among equals, so an incident's verdict only changes when a later
    log brings a better-ranked cause.
    """
    merged: dict[tuple[str, str], Finding] = {}
    for finding in [*existing, *new]:
        key = (finding.rule_id, finding.source)
        if key not in merged:
            merged[key] = finding
    return sorted(merged.values(), key=_verdict_key)[:MAX_FINDINGS_KEPT]


MAX_EXTRACT_LINES = 40
MAX_EXTRACT_LINE_CHARS = 300


def merge_exit_codes(existing: Iterable[ExitCode], new: Iterable[ExitCode]) -> list[ExitCode]:
    """Exit codes of several logs: one entry per code or signal (first seen), counts added up, capped."""
    merged: dict[tuple[int | None, str | None], ExitCode] = {}
    for seen in [*existing, *new]:
        key = (seen.code, seen.signal)
        if key in merged:
            merged[key] = merged[key].model_copy(update={"count": merged[key].count + seen.count})
        elif len(merged) < MAX_EXIT_CODES:
            merged[key] = seen
    return list(merged.values())


def attachment_text(diagnosis: Diagnosis, findings: Iterable[Finding]) -> str:
    """The full redacted extract, as a text file to attach to the alert: the verdict, then every finding's
    block (the lines before it, its headline and every line gathered with it), each line with its file
    and number, best candidates first. Every line in it was redacted when it was found."""
    out = [
        f"emr-triage diagnosis: {diagnosis.category}: {diagnosis.title}",
        f"summary: {diagnosis.summary}",
    ]
    if diagnosis.location:
        out.append(f"where in your code: {diagnosis.location}")
    out.extend(
        f"exit code {e.code if e.code is not None else 'SIG' + (e.signal or '')}: {e.meaning}"
        for e in diagnosis.exit_codes
    )
    out.extend(f"partial: {note}" for note in diagnosis.partial_notes)
    for finding in sorted(findings, key=_verdict_key):
        where = f"{finding.source}{f' ({finding.section})' if finding.section else ''}"
        times = f" ×{finding.count}" if finding.count > 1 else ""
        out += ["", f"== {finding.title} [{finding.rule_id}, {finding.kind}]{times}", f"   {where}"]
        first = finding.line_no - len(finding.context_before)
        out.extend(f"{first + i:>8}  {text}" for i, text in enumerate(finding.context_before))
        out.extend(
            f"{finding.line_no + i:>8}{'>' if i == 0 else ' '} {text}" for i, text in enumerate(finding.evidence)
        )
    return "\n".join(out) + "\n"


def build_extract(findings: list[Finding]) -> list[ExtractLine]:
    """The lines a person reads first: the root cause's block with the lines just before it, then the
    first line of each other finding; runs of lines that differ only in numbers and ids are folded into
    one line with a repeat count; capped in lines and characters."""
    extract: list[ExtractLine] = []
    folded_key: str | None = None
    shown: set[tuple[str, int]] = set()

    def add(source: str, line_no: int, text: str) -> None:
        nonlocal folded_key
        if (source, line_no) in shown:
            return
        shown.add((source, line_no))
        key = mask_variables(text)
        if extract and key == folded_key and extract[-1].source == source:
            extract[-1].repeat += 1
            return
        if len(extract) < MAX_EXTRACT_LINES:
            clipped = text if len(text) <= MAX_EXTRACT_LINE_CHARS else text[:MAX_EXTRACT_LINE_CHARS] + " …"
            extract.append(ExtractLine(source=source, line_no=line_no, text=clipped))
            folded_key = key

    if not findings:
        return extract
    root, others = findings[0], findings[1:]
    for offset, text in enumerate(root.context_before):
        if text.strip():
            add(root.source, root.line_no - len(root.context_before) + offset, text)
    for offset, text in enumerate(root.evidence):
        add(root.source, root.line_no + offset, text)
    for finding in others:
        if finding.evidence:
            folded_key = None
            add(finding.source, finding.line_no, finding.evidence[0])
    return extract


def _counts(finding: Finding, failed: bool) -> bool:
    """Whether a finding can be the verdict.

    When the logs show the job failing (a symptom), every cause counts. Otherwise, lines that also appear
    in healthy runs (``requires_failure``) count only as bare text with no log record around them (a stack
    pasted on its own), and exceptions a WARN record printed (caught, then logged) do not.
    """
    if finding.kind == "success":
        return False
    if failed or finding.kind == "symptom":
        return True
    if finding.quiet:
        return False
    return not finding.requires_failure or finding.level is None


def _confidence(root: Finding | None, failed: bool, success: bool, partial: bool) -> float:
    if root is None:
        value = 0.9 if success else 0.6
    elif root.kind == "symptom":
        value = 0.3
    elif failed:
        value = 0.9
    elif root.requires_failure:
        value = 0.45  # evidence of a kind healthy runs also show, and no sign of the job failing
    else:
        value = 0.75 if root.rank <= 30 else 0.6
    return round(value - (0.1 if partial else 0.0), 2)


def diagnose(
    findings: list[Finding],
    catalogue: Catalogue,
    reads: Iterable[LogRead] = (),
    exit_codes: Iterable[ExitCode] = (),
) -> Diagnosis:
    """Choose the root cause among findings and explain it.

    The verdict is the *cause* with the lowest rank (earliest in a failure chain: node lost < memory kill
    < ... < Python traceback), preferring driver-side logs, then the earliest line. If only symptoms were
    found, the verdict is ``other``; if nothing, or a success marker after every failure, ``no_failure``.
    Causes marked ``requires_failure`` count only when a symptom shows the job failing. A location found
    only in a symptom (the traceback of the action that triggered the failed job) is used when the cause
    has none.
    """
    reads = list(reads)
    partial_notes = [f"{r.source}: {note}" for r in reads if r.partial for note in r.notes]
    partial = any(r.partial for r in reads)
    from_logs = bool(reads)
    common: dict[str, Any] = {
        "partial": partial,
        "partial_notes": partial_notes,
        "from_logs": from_logs,
        "exit_codes": list(exit_codes),
        "bytes_scanned": sum(r.bytes_scanned for r in reads),
    }
    recovered = succeeded(findings)
    failed = any(f.kind == "symptom" for f in findings)
    if recovered:
        problems = sorted({f.title for f in findings if f.kind != "success"})
        return Diagnosis(
            category="no_failure",
            title="The application finished successfully",
            severity="low",
            summary="The logs show the application succeeding"
            + (f" after recovering from: {'; '.join(problems)}." if problems else "."),
            confidence=_confidence(None, failed, True, partial),
            **common,
        )
    ordered = sorted((f for f in findings if _counts(f, failed)), key=_verdict_key)
    if not ordered:
        return Diagnosis(
            category="no_failure",
            title="No failure signature found in the logs",
            severity="low",
            summary="The logs read show no known failure." if from_logs else "No logs were read.",
            confidence=_confidence(None, failed, False, partial) if from_logs else 0.0,
            **common,
        )
    root = ordered[0]
    rule = catalogue.get(root.rule_id)
    location = root.location or next((f.location for f in ordered if f.location), None)
    # One line per thing said: the same rule in several logs, or rules with the same title (a traceback
    # and its headless tail), is one finding seen several times.
    secondary: dict[tuple[str, str], SecondaryFinding] = {}
    for f in ordered[1:]:
        if f.rule_id == root.rule_id or (f.category == root.category and root.kind == "cause"):
            continue  # the verdict itself, said by another log or in other words
        key = (f.category, f.title)
        if key in secondary:
            seen = secondary[key]
            # The same thing said by a second rule in the same log (a traceback and its frames, a kill and
            # its exit status) is not a second occurrence; the same rule in another log is.
            if seen.rule_id == f.rule_id or seen.source != f.source:
                seen.count += f.count
        else:
            secondary[key] = SecondaryFinding(
                rule_id=f.rule_id,
                category=f.category,
                title=f.title,
                source=f.source,
                line_no=f.line_no,
                count=f.count,
            )
    if root.kind == "symptom":
        category, title = "other", "The job failed, but no known signature explains why"
        explanation = "The logs show that the application failed, not why. " + (rule.explanation if rule else "")
        remediation = "Read the evidence and the driver's log (YARN container ..._000001 stderr)."
        retryable = None
    else:
        category, title = root.category, root.title
        explanation = rule.explanation if rule else ""
        remediation = rule.remediation if rule else ""
        retryable = root.retryable
    return Diagnosis(
        category=category,
        rule_id=root.rule_id,
        title=title,
        severity=root.severity,
        retryable=retryable,
        summary=root.headline,
        explanation=explanation.strip(),
        remediation=remediation.strip(),
        headline=root.headline,
        evidence=root.evidence,
        source=root.source,
        line_no=root.line_no,
        location=location,
        fingerprint=fingerprint(root.rule_id, root.headline, location),
        secondary=list(secondary.values()),
        confidence=_confidence(root, failed, False, partial),
        extract=build_extract(
            [root, *(f for f in ordered[1:] if f.rule_id in {s.rule_id for s in secondary.values()})]
        ),
        **common,
    )


def build_report(analyses: Iterable[tuple[LineAnalysis, LogRead]]) -> AnalysisReport:
    """Collect the per-log results of several logs into one report."""
    report = AnalysisReport()
    for analysis, read in analyses:
        report.findings = merge_findings(report.findings, analysis.findings)
        report.exit_codes = merge_exit_codes(report.exit_codes, analysis.exit_codes)
        report.reads.append(read)
        for app in analysis.application_ids:
            if app not in report.application_ids:
                report.application_ids.append(app)
    return report
