"""Render a Block Kit message as readable terminal text (the replay command's default output)."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from emr_triage.alerts.message import SlackMessage, neutralise

_EMOJI = {
    ":red_circle:": "🔴",
    ":large_orange_circle:": "🟠",
    ":large_yellow_circle:": "🟡",
    ":white_check_mark:": "✅",
    ":warning:": "⚠️ ",
}
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
# Slack's date formatting (<!date^epoch^format|fallback>) and a user (<@U…>), as Slack shows them.
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]


def _mrkdwn(text: str, width: int) -> list[str]:
    for code, glyph in _EMOJI.items():
        text = text.replace(code, glyph)
    text = _LINK.sub(lambda m: f"{m[2]}: {m[1]}", text)
    text = _DATE.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _BOLD.sub(r"\1", text)
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
            rest = line[3:]
            if rest:
                out.append("    " + _unescape(rest))
            continue
        if in_code:
            out.append("    " + _unescape(line.rstrip("`")))
            if line.endswith("```"):
                in_code = False
            continue
        line = _unescape(line)
        if line.startswith(">"):
            out.extend("  │ " + w for w in _wrap(line[1:], width - 4))
        else:
            out.extend(_wrap(line, width))
    return out


def _control(element: dict[str, Any]) -> str:
    """A button as [Label], a menu as [Placeholder ▾]."""
    label = (element.get("text") or element.get("placeholder") or {}).get("text", "?")
    return f"[{label} ▾]" if element.get("type") == "static_select" else f"[{label}]"


def render_terminal(message: SlackMessage, channel: str, width: int = 100) -> str:
    """The message as a boxed block of plain text, as close to Slack's layout as a terminal allows."""
    body: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            title = _mrkdwn(block["text"]["text"], width)
            body.extend(title)
            body.append("═" * min(width, max(len(t) for t in title) + 2))
        elif kind == "section":
            if "text" in block:
                body.extend(_mrkdwn(block["text"]["text"], width))
            fields: list[Any] = block.get("fields", [])
            for item in fields:
                label, _, value = item["text"].partition("\n")
                body.extend(_mrkdwn(f"{label.strip('*')}: {value}", width))
            body.append("")
        elif kind == "context":
            for element in block.get("elements", []):
                text = element.get("text", "")
                # A line of links reads better one link per line in a terminal.
                parts = text.split(" · ") if "<http" in text else [text]
                for part in parts:
                    body.extend("  " + ln for ln in _mrkdwn(part, width - 2))
        elif kind == "divider":
            body.append("─" * width)
        elif kind == "actions":
            body.append("  " + "  ".join(_control(e) for e in block.get("elements", [])))
    while body and not body[-1]:
        body.pop()
    top = f"┌─ Slack · {neutralise(channel)} " + "─" * max(0, width - len(channel) - 10)
    # Whatever a message holds, no escape sequence from it reaches the terminal.
    return "\n".join([top, *("│ " + neutralise(line) for line in body), "└" + "─" * (width + 1)])
