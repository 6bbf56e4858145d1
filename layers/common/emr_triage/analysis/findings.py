"""Find failure signatures in log lines: the scan of one log, block by block.

Pure functions: text in, findings out. Each finding keeps the first line that matched a rule in a log, the
lines that belong to it (stack frames, ``Caused by:`` chain, a Python traceback up to its exception line),
how often the rule matched, and the first frame of the user's own code. All kept text is redacted here,
before anything else sees it: each block of lines whole (with the lines before it, so a private key that
began above is seen whole), and only then cut to the lengths kept (:mod:`emr_triage.analysis.record`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from emr_triage.analysis.blocks import EvidenceBlock
from emr_triage.analysis.catalogue import Catalogue, Rule
from emr_triage.analysis.exit_codes import EXIT_CODE, SIGNAL, describe_exit_code, describe_signal
from emr_triage.analysis.json_events import expand_json_event
from emr_triage.analysis.prefilter import SESSION_MARKERS
from emr_triage.analysis.record import bound_line, clip
from emr_triage.analysis.records import (
    IPYTHON_TRACEBACK,
    QUIET_WHEN_INHERITED,
    SILENT_LEVELS,
    Record,
    block_tail,
    decode_line,
    lines_above,
    record_of,
    unchanged_line,
)
from emr_triage.analysis.redact import redact
from emr_triage.analysis.scan import LiteralScanner, ScannedBlock, scan_block
from emr_triage.analysis.text import (
    JAVA_FRAME_LINE,
    PYTHON_FRAME,
    TRACEBACK,
    line_unwrapper,
    user_java_frame,
    user_python_frame,
)
from emr_triage.models.analysis import ExitCode, Finding

# Lines before a match redacted with its block, so a secret that began above the kept context (a
# private key block: 51 lines for RSA 4096) is recognised whole; only the last CONTEXT_LINES are kept.
_REDACTION_LOOKBACK = 64
_APPLICATION_ID = re.compile(
    r"\b(?:Submitted application|Application report for|Application Id:?)\s+(application_\d+_\d+)"
)
# The driver's "INFO SparkContext: Submitted application: <spark.app.name>" (the name people know a job by).
_SESSION = re.compile("|".join(re.escape(marker) for marker in SESSION_MARKERS), re.IGNORECASE)
_SPARK_APP_NAME = re.compile(r"\bSparkContext: Submitted application: (?=\S)")
MAX_APP_NAME_CHARS = 200


@dataclass
class LineAnalysis:
    """Findings, application ids and exit codes of one log, filled as its text streams by."""

    findings: list[Finding] = field(default_factory=list)
    application_ids: list[str] = field(default_factory=list)
    exit_codes: list[ExitCode] = field(default_factory=list)
    lines: int = 0
    # The Spark application's name, when this is its driver's log (redacted).
    spark_app_name: str | None = None
    # An interactive session (a shell, a notebook, Livy, the Thrift server): its statements fail and
    # succeed one by one, so a later success does not mean an earlier failure was recovered from.
    interactive: bool = False


BLOCK_LINES = 4096
MAX_EXIT_CODES = 20
_SECTION_CONTAINER = re.compile(r"^Container: (container_\S+)")
_SECTION_LOGTYPE = re.compile(r"^\s*LogType:\s*(\S+)")
_DRIVER_CONTAINER = re.compile(r"_0*1$")


# A failing log prints the same lines over and over (the frames and causes of one exception thrown by
# every task, a retry loop's message): what a candidate line's bytes decide is worked out once per log
# and kept, for lines up to _PLAN_LINE_BYTES, until the kept lines add up to _PLAN_CACHE_BYTES (then
# the cache starts again, so memory stays bounded whatever the log).
_PLAN_LINE_BYTES = 1024
_PLAN_CACHE_BYTES = 1 << 20


class _Plan(NamedTuple):
    """A candidate line as its bytes alone decide it: its text (or the lines of its JSON event), unwrapped;
    the extractors its literals call for; per text, the rules that match it (none on a Java frame); and
    the ids of the rules that only count it once their findings stand (empty: it is always weighed);
    and whether it has nothing to give but to the evidence blocks still open (no rule, no extractor)."""

    texts: tuple[str, ...]
    extractors: frozenset[str]
    matching: tuple[tuple[Rule, ...], ...]
    counted: tuple[str, ...]
    single: str | None  # the rule of ``counted`` when it is one
    inert: bool


@dataclass(slots=True)
class _Repeats:
    """The matches of a standing finding after its first, counted here and added to it when the scan
    ends: setting a pydantic model's attribute costs more than all the rest of a repeat's handling, and a
    failing log repeats its errors by the hundred thousand."""

    finding: Finding
    count: int = 0
    last_line_no: int | None = None


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
    open_blocks: list[EvidenceBlock] = field(default_factory=list)
    repeats: dict[str, _Repeats] = field(default_factory=dict)  # by rule id, until finish()
    lines_before: int = 0  # complete lines in the blocks already scanned
    unterminated: bool = False  # the last block ended without a line break
    previous_tail: bytes = b""  # the end of the last block, for the lines before a match at a block's start
    container: str | None = None
    log_type: str | None = None
    # Strips a prefix every line of this log carries (docker-compose, CI timestamps, an orchestrator's
    # relay), found in its first block; identity when there is none.
    unwrap: Callable[[str], str] = unchanged_line
    plans: dict[tuple[bytes, frozenset[int]], _Plan] = field(default_factory=dict)  # see _PLAN_LINE_BYTES
    plan_bytes: int = 0
    hit_sets: dict[frozenset[int], frozenset[int]] = field(default_factory=dict)

    def block(self, block: bytes | ScannedBlock) -> None:
        """Scan one block of text (ending at a line break, except pieces of an over-long line), or take
        one already scanned (:func:`~emr_triage.analysis.scan.scan_block`, e.g. on the read-ahead thread)."""
        scanned = block if isinstance(block, ScannedBlock) else scan_block(self.scanner, block)
        data = scanned.data
        plans, by_rule, repeats = self.plans, self.by_rule, self.repeats
        first_line_no = self.lines_before + 1
        position = 0  # start of the first line not yet handed to the open blocks
        for start, end, newlines_before, indexes in scanned.candidates:
            if position < start and self.open_blocks:
                position = self._feed_blocks(data, position, start)
            position = end + 1
            raw = data[start:end]
            hits = frozenset(indexes)
            plan = plans.get((raw, hits))
            if plan is None:
                plan = self._new_plan(raw, hits)
            if self.open_blocks:
                self._candidate(plan, first_line_no + newlines_before, data, start)
            elif plan.inert:
                continue
            elif plan.single:
                # The usual repeat: one rule whose finding stands, counted here (see _counted).
                standing = by_rule.get(plan.single)
                tally = repeats.get(plan.single)
                if standing is None or standing.quiet:
                    self._candidate(plan, first_line_no + newlines_before, data, start)
                elif tally is not None and tally.finding is standing:
                    tally.count += 1
                    tally.last_line_no = first_line_no + newlines_before
                else:
                    self._counted(plan.counted, first_line_no + newlines_before)
            elif not (plan.counted and self._counted(plan.counted, first_line_no + newlines_before)):
                self._candidate(plan, first_line_no + newlines_before, data, start)
        if self.open_blocks and position < len(data):
            self._feed_blocks(data, position, len(data))
        self.lines_before += scanned.newlines
        self.unterminated = not data.endswith(b"\n")
        self.previous_tail = block_tail(self.previous_tail, data)

    def _new_plan(self, raw: bytes, hits: frozenset[int]) -> _Plan:
        """:meth:`_plan`, kept for the next time the line comes (see _PLAN_LINE_BYTES)."""
        plan = self._plan(raw, hits)
        if len(raw) <= _PLAN_LINE_BYTES:
            if self.plan_bytes > _PLAN_CACHE_BYTES:
                self.plans.clear()
                self.hit_sets.clear()
                self.plan_bytes = 0
            # Lines hit by the same literals share one set (a log's lines hit a few combinations).
            self.plans[(raw, self.hit_sets.setdefault(hits, hits))] = plan
            self.plan_bytes += len(raw)
        return plan

    def _counted(self, rule_ids: tuple[str, ...], line_no: int) -> bool:
        """Count a line whose every match is another match of a finding that stands (see :meth:`_match`),
        without the rest of a candidate's handling; False, counting nothing, when one of them does not."""
        by_rule = self.by_rule
        for rule_id in rule_ids:
            standing = by_rule.get(rule_id)
            if standing is None or standing.quiet:
                return False
        for rule_id in rule_ids:
            standing = by_rule[rule_id]
            tally = self.repeats.get(rule_id)
            if tally is None or tally.finding is not standing:  # the rule's finding is a new one
                tally = self.repeats[rule_id] = _Repeats(standing)
            tally.count += 1
            tally.last_line_no = line_no
        return True

    def _feed_blocks(self, data: bytes, position: int, stop: int) -> int:
        """Hand the lines in ``data[position:stop]`` to the open evidence blocks until they all close."""
        while self.open_blocks and position < stop:
            end = data.find(b"\n", position, stop)
            end = stop if end < 0 else end
            self._feed(decode_line(data[position:end]))
            position = end + 1
        return position

    def _feed(self, line: str) -> None:
        self._feed_text(self.unwrap(line))

    def _feed_text(self, line: str) -> None:
        for block in self.open_blocks:
            block.feed(line)
            if not block.open:
                self._close(block)
        self.open_blocks = [b for b in self.open_blocks if b.open]

    def _close(self, block: EvidenceBlock) -> None:
        if block.close() or block.finding not in self.result.findings:
            return
        # Its rule's frames are not in its stack: the match does not stand (a later one may).
        self.result.findings.remove(block.finding)
        if self.by_rule.get(block.finding.rule_id) is block.finding:
            del self.by_rule[block.finding.rule_id]

    def _plan(self, raw: bytes, indexes: frozenset[int]) -> _Plan:
        """What a candidate line's bytes and the literals that hit on it decide, whatever the state of the
        scan: its text, the extractors to run, and the rules whose patterns match it."""
        rules, extractors = self.catalogue.prefilter.route(indexes)
        line = self.unwrap(decode_line(raw))
        expanded = expand_json_event(line) if line.startswith("{") else None
        texts = tuple(expanded or [line])
        matching = tuple(
            tuple(rule for rule in rules if rule.matches(text)) if rules and not JAVA_FRAME_LINE.match(text) else ()
            for text in texts
        )
        counted: tuple[str, ...] = ()
        if len(texts) == 1 and not extractors:
            # Once their findings stand, these rules' matches are only counted (see _match); a fallback
            # after them never counts (another rule matched), one first would weigh the line.
            others = tuple(rule for rule in matching[0] if not rule.fallback)
            if others and others[0] is matching[0][0] and not any(rule.levels for rule in others):
                counted = tuple(rule.id for rule in others)
        inert = not extractors and not any(matching)  # a literal hit, but nothing to read or match
        return _Plan(texts, extractors, matching, counted, counted[0] if len(counted) == 1 else None, inert)

    def _candidate(self, plan: _Plan, line_no: int, data: bytes, start: int) -> None:
        extractors = plan.extractors
        for position, text in enumerate(plan.texts):
            if position or self.open_blocks:
                self._feed_text(text)
            if extractors:
                if "section" in extractors:
                    self._section(text)
                if "application_id" in extractors:
                    self._application_id(text)
                if "exit_code" in extractors:
                    self._exit_code(text, line_no)
                if "session" in extractors and not self.result.interactive:
                    self.result.interactive = bool(_SESSION.search(text))
            if matching := plan.matching[position]:
                self._match(text, line_no, matching, data, start)

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
            # The rest of the line, redacted whole, then cut.
            rest = bound_line(line[name.end() :]).strip()
            self.result.spark_app_name = clip(redact(rest), MAX_APP_NAME_CHARS).strip()

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
        """Weigh the matches of ``rules`` (those whose patterns match the line, see :meth:`_plan`), in
        their order (:meth:`Prefilter.route`'s: fallbacks last), on a candidate line."""
        record: Record | None = None
        matched = False
        # A fallback rule (an exception no rule knows) counts last, and only when no other rule matched;
        # the others by rank, then id (Prefilter.route's order): the same whatever the scanner's literals
        # are numbered.
        for rule in rules:
            if rule.fallback and matched:
                continue
            repeat = self.by_rule.get(rule.id)
            if repeat is not None and not repeat.quiet and not rule.levels and not rule.fallback:
                # Another match of a finding that stands (its first match was weighed): only counted. A
                # failing log repeats its errors by the thousand; the walk back to each one's record is
                # what would cost.
                tally = self.repeats.get(rule.id)
                if tally is None or tally.finding is not repeat:  # the rule's finding is a new one
                    tally = self.repeats[rule.id] = _Repeats(repeat)
                tally.count += 1
                tally.last_line_no = line_no
                matched = True
                continue
            if record is None:
                record = record_of(line, data, start, self.previous_tail, self.unwrap)
            if record.level in SILENT_LEVELS and not record.inherited:
                return  # a DEBUG or TRACE record's own line (class loading, retries): healthy runs print many
            if rule.levels and (record.level or "none").replace("WARNING", "WARN") not in rule.levels:
                continue
            if (rule.kind == "cause" or rule.fallback) and self.catalogue.benign_entry(line, record.line):
                continue  # a line healthy runs of some stack print (benign.yaml): never a cause
            matched = True
            # An exception printed under a WARN (or DEBUG) record was handled and logged, not fatal by itself.
            quiet = (record.inherited and record.level in QUIET_WHEN_INHERITED) or rule.shutdown_noise
            existing = self.by_rule.get(rule.id)
            if existing is not None and not (existing.quiet and not quiet):
                existing.count += 1
                existing.last_line_no = line_no
                continue
            count = 1
            if existing is not None:  # a quiet first match, now a real one: this one is the evidence
                self.result.findings.remove(existing)
                self.open_blocks = [b for b in self.open_blocks if b.finding is not existing]
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
                context_before=[],  # set when its block closes, redacted with it
                section=section,
                level=record.level,
                quiet=quiet,
                count=count,
            )
            self.by_rule[rule.id] = finding
            self.result.findings.append(finding)
            ipython = IPYTHON_TRACEBACK.match(line)
            self.open_blocks.append(
                EvidenceBlock(
                    finding=finding,
                    lines=[bound_line(line)],
                    before=lines_above(data, start, _REDACTION_LOOKBACK, self.previous_tail, self.unwrap),
                    # A traceback, or a paste that starts inside one (at a `File "...", line N` frame)
                    traceback=TRACEBACK in line or bool(PYTHON_FRAME.match(line)),
                    # IPython (Jupyter, Databricks) names the exception in the traceback's first line and
                    # prints its frames unindented: the class is the headline, the block is that line.
                    exception_line=ipython["exception"] if ipython else None,
                    exception_line_seen=bool(ipython),
                    symptom_when=rule.symptom_guard,
                    frames=rule.frames_matcher,
                    java_location=user_java_frame(line),
                    python_location=user_python_frame(line),
                )
            )

    def finish(self) -> LineAnalysis:
        for block in self.open_blocks:
            self._close(block)
        self.open_blocks = []
        for tally in self.repeats.values():
            tally.finding.count += tally.count
            tally.finding.last_line_no = tally.last_line_no
        self.repeats = {}
        self.result.lines = self.lines_before + (1 if self.unterminated else 0)
        # Findings were appended as rules matched; keep them in line order.
        self.result.findings.sort(key=lambda f: f.line_no)
        return self.result


def analyse_blocks(
    blocks: Iterable[bytes] | Iterable[ScannedBlock],
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
        The log's text, each block ending at a line break (but pieces of an over-long line); or blocks
        already scanned (:func:`~emr_triage.analysis.scan.scan_block`), e.g. on another core.
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
    # The prefix every line may carry is decided on the log's first lines (up to 64 KiB), which the first
    # block holds but for very long lines: the blocks before the decision wait for it.
    pending: list[bytes | ScannedBlock] = []
    sample = b""
    decided = False
    for block in blocks:
        if decided:
            scan.block(block)
            continue
        pending.append(block)
        sample += (block.data if isinstance(block, ScannedBlock) else block)[: _SAMPLE_BYTES - len(sample)]
        decided = len(sample) >= _SAMPLE_BYTES or sample.count(b"\n") >= _SAMPLE_LINES
        if decided:
            _start(scan, sample, pending)
    if not decided:
        _start(scan, sample, pending)
    return scan.finish()


_SAMPLE_BYTES = 64 << 10
_SAMPLE_LINES = 200


def _start(scan: _Scan, sample: bytes, blocks: list[bytes | ScannedBlock]) -> None:
    """Decide the log's line prefix from its first lines, then scan the blocks that waited for it."""
    scan.unwrap = line_unwrapper(sample) or unchanged_line
    for block in blocks:
        scan.block(block)


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
