"""What a log line is: its log4j prefix and level, stack frames, continuation lines, and the masks that
turn a line into a template (fingerprints, folding repeated lines)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

MAX_EVIDENCE_LINE_CHARS = 500

CONTINUATION = re.compile(
    r"^(?:\s|Caused by:|Suppressed:|\.\.\. \d+ more|Driver stacktrace:|: "
    # The unindented lines of a YARN diagnostics block ("Exception from container-launch." and on)
    r"|Failing this attempt|Diagnostics:|Container id:|Exit code:|Exit status:|Exception message:|Stack trace:"
    r"|Shell output:|Container exited with|Container killed on request|Killed by external signal"
    r"|For more detailed output|\[\d{4}-\d\d-\d\d[ T][\d:.]+\])"
)
TRACEBACK = "Traceback (most recent call last)"
# log4j prints "<message>: <exception>" and then the throwable itself, unindented, then its frames.
EXCEPTION_HEADLINE = re.compile(
    r'^(?:Exception in thread "[^"]*" )?(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable)(?::|\s*$)'
)
# A Java stack frame is never evidence by itself: "at com.acme.OutOfMemoryErrorHandler.handle(...)" names
# an exception class without anything having thrown it.
JAVA_FRAME_LINE = re.compile(r"^\s+at\s+[\w$.<>/]+\(")
JAVA_FRAME = re.compile(r"^\s*at\s+(?P<cls>[\w$.]+)\.(?P<method>[\w$<>]+)\((?P<file>[^)]*)\)")
PYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
FRAMEWORK_CLASS = re.compile(
    r"^(?:java|javax|jdk|sun|scala|org\.apache|org\.spark_project|org\.sparkproject|com\.amazon|com\.amazonaws"
    r"|software\.amazon|io\.netty|py4j|com\.google|com\.fasterxml|org\.slf4j|org\.eclipse|org\.glassfish"
    r"|net\.razorvine|org\.json4s|akka|com\.esotericsoftware|org\.codehaus)\."
)
FRAMEWORK_PATH = re.compile(r"(?:/pyspark/|pyspark\.zip|/py4j|/site-packages/|/dist-packages/|/lib/python\d|<frozen )")
LOG_PREFIX = re.compile(
    r"^(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\s+"
    r"(?:\[[^\]]*\]\s*)?(?:[\w.$-]+(?:\s\([^)]*\))?:\s)?"
)
# A record's level: after a timestamp, or with none (a paste that dropped it) when a logger's name and a
# colon follow ("ERROR FsHistoryProvider: ...").
LEVEL = re.compile(
    r"^(?:(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?"
    r"|(?=(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\s+[\w.$-]{1,200}: ))"
    r"(?P<level>INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\b"
)
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
    return LOG_PREFIX.sub("", line, count=1).strip()


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


def user_java_frame(line: str) -> str | None:
    match = JAVA_FRAME.match(line)
    if not match or FRAMEWORK_CLASS.match(match["cls"]):
        return None
    return f"{match['cls']}.{match['method']} ({match['file']})"


def user_python_frame(line: str) -> str | None:
    match = PYTHON_FRAME.match(line)
    if not match or FRAMEWORK_PATH.search(match["path"]):
        return None
    name = match["path"].rsplit("/", 1)[-1]
    return f"{name}:{match['line']} in {match['func']}"


# Prefixes that something between the program and the reader put on every line, so that the line itself
# (a log4j record, a stack frame, a traceback) starts after them. Tried in order on a log's first lines.
_LINE_PREFIXES: tuple[re.Pattern[str], ...] = (
    # docker-compose v1 and v2: "spark-master_1  | ...", "spark-worker-1  | ..."
    re.compile(r"^[A-Za-z][\w.-]{0,62}(?:[_-]\d+)? {1,40}\| ?"),
    # kubectl logs --prefix: "[pod/spark-pi-driver/spark-kubernetes-driver] ..."
    re.compile(r"^\[pod/[^\]\s]{1,200}\] "),
    # CI runners (GitHub Actions, Azure Pipelines): "2023-05-01T10:00:00.1234567Z ..."
    # (not a log4j layout's own ISO timestamp, which a level follows)
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z (?!(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\b)"),
    # journald / syslog: "Dec 06 12:00:00 ip-10-0-0-1 spark-submit[1234]: ..."
    re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S{1,100} [^\s:\[]{1,100}(?:\[\d{1,10}\])?: "),
    # Airflow's task log relaying spark-submit: "[2021-03-01 10:00:00,123] {spark_submit.py:490} INFO - ..."
    re.compile(r"^\[[^\]]{10,40}\] \{[^}\s]{1,100}\} [A-Z]{3,8} - "),
    # Livy relaying spark-submit: "21/01/01 10:00:00 INFO LineBufferedStream: stdout: ..."
    re.compile(r"^\S{1,30} \S{1,30} [A-Z]{4,5} (?:[\w.$]{1,100}\.)?LineBufferedStream: (?:(?:stdout|stderr): )?"),
    # sbt: "[info] ...", "[error] ..."
    re.compile(r"^\[(?:info|error|warn|warning|debug)\] "),
    # A markdown quote of a pasted log: "> ..."
    re.compile(r"^> ?"),
)
_SAMPLE_LINES = 200
_MIN_PREFIXED = 0.5  # share of a log's first non-empty lines that must carry the prefix


def line_unwrapper(sample: bytes) -> Callable[[str], str] | None:
    """A function that strips the prefix every line of a log carries, found in its first bytes.

    Parameters
    ----------
    sample:
        The start of the log (its first block).

    Returns
    -------
    Callable or None
        Strips the prefix from a line that has it (others are returned as they are); None when at least
        half of the first lines share no known prefix.
    """
    text = sample[: 64 << 10].decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines()[:_SAMPLE_LINES] if line.strip()]
    if len(lines) < 2:
        return None
    for prefix in _LINE_PREFIXES:
        if sum(1 for line in lines if prefix.match(line)) >= max(2, len(lines) * _MIN_PREFIXED):
            return _stripper(prefix)
    return None


def _stripper(prefix: re.Pattern[str]) -> Callable[[str], str]:
    def unwrap(line: str) -> str:
        match = prefix.match(line)
        return line[match.end() :] if match else line

    return unwrap
