"""log4j2 JSON events (``JsonLayout``, ``JsonTemplateLayout``) read as the lines a pattern layout prints."""

from __future__ import annotations

import json
from typing import Any


def expand_json_event(line: str) -> list[str] | None:
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
