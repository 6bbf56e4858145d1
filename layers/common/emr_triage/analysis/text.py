"""What a log line is: its log4j prefix and level, stack frames, continuation lines, and the masks that
turn a line into a template (fingerprints, folding repeated lines)."""

from __future__ import annotations

import hashlib
import re

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
LEVEL = re.compile(
    r"^(?:\d[\d/:.,TZ+-]*\s+){1,2}(?:\[[^\]]*\]\s*)?(?P<level>INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\b"
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
