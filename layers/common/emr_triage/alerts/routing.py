"""Which Slack channel an alert goes to, and whom it mentions.

In order: the cluster's (or EMR Serverless application's) tags, then the name-pattern routes of a small
YAML file, then the default channel. Owners are mentioned only for high and critical severity. Mentions
are built here from validated Slack ids, never taken as text, so a tag cannot inject ``<!channel>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emr_triage.exceptions import EmrTriageError
from emr_triage.models.validation import describe_validation_error

CHANNEL_TAG = "emr-triage:slack-channel"
MENTION_TAG = "emr-triage:slack-mention"
MENTION_SEVERITIES = frozenset({"critical", "high"})

# A channel name (#data-eng) or id (C0123ABCD); a user group (S...), user (U.../W...) id, or "here".
_CHANNEL = re.compile(r"^(?:#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,20})$")
_MENTION = re.compile(r"^(?:[SUW][A-Z0-9]{6,20}|here)$")
Field_ = Literal[
    "cluster_name",
    "cluster_id",
    "step_name",
    "job_run_name",
    "application_id",
    "application_name",
    "virtual_cluster_id",
    "virtual_cluster_name",
    "account",
]


class RoutingError(EmrTriageError):
    """The routing file is not valid: names the file, the route and the problem."""


class Route(BaseModel):
    """One name-pattern route: every regex in ``match`` must match its field of the incident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[Field_, str] = Field(min_length=1)
    channel: str | None = None
    mention: str | None = None

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for field_name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{field_name}: {pattern!r} is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL.match(value):
            raise ValueError(f"{value!r} is not a channel name (#name) or id (C...)")
        return value

    @field_validator("mention")
    @classmethod
    def _mention(cls, value: str | None) -> str | None:
        if value is not None and not _MENTION.match(value):
            raise ValueError(f"{value!r} is not a user group id (S...), a user id (U.../W...) or 'here'")
        return value


class _RoutingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | int | float
    routes: list[Route] = Field(default_factory=list)


@dataclass(frozen=True)
class Destination:
    channel: str
    mention: str | None  # Slack syntax, ready to put in a message; None: nobody is mentioned
    reason: str


def mention_syntax(value: str) -> str | None:
    """``S123…`` → ``<!subteam^S123…>``, ``U123…`` → ``<@U123…>``, ``here`` → ``<!here>``; else None."""
    if not _MENTION.match(value):
        return None
    if value == "here":
        return "<!here>"
    return f"<!subteam^{value}>" if value.startswith("S") else f"<@{value}>"


def load_routes(path: str | Path | None) -> tuple[Route, ...]:
    """The name-pattern routes of a YAML file (none when ``path`` is None).

    Raises
    ------
    RoutingError
        Naming the file, the route (by position) and the problem.
    """
    if not path:
        return ()
    import yaml  # here: most deployments have no routing file, and every cold start would pay for it

    try:
        data = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise RoutingError(f"routing file {path}: cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise RoutingError(f"routing file {path}: not valid YAML: {exc}") from exc
    try:
        return tuple(_RoutingFile.model_validate(data).routes)
    except ValidationError as exc:
        raise RoutingError(f"routing file {path}: {describe_validation_error(exc, root='file')}") from exc


@lru_cache(maxsize=4)
def cached_routes(path: str | None) -> tuple[Route, ...]:
    return load_routes(path)


class Routable(Protocol):
    """What routing reads: an incident, or a run being watched (its routes' fields are read by name)."""

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def severity(self) -> str: ...


def _value(incident: Routable, field_name: str) -> str:
    return str(getattr(incident, field_name, None) or "")


def destination(incident: Routable, default_channel: str, routes: tuple[Route, ...] = ()) -> Destination:
    """Where this incident's (or run's) alert goes, and whom it mentions (see the module docstring)."""
    tags = incident.tags
    channel = tags.get(CHANNEL_TAG, "").strip()
    mention = tags.get(MENTION_TAG, "").strip()
    reason = f"tag {CHANNEL_TAG}"
    if channel and not _CHANNEL.match(channel):
        channel, reason = "", ""  # an invalid tag is ignored, not trusted
    if not channel:
        for number, route in enumerate(routes, start=1):
            if all(re.search(pattern, _value(incident, f)) for f, pattern in route.match.items()):
                channel = route.channel or ""
                mention = mention or (route.mention or "")
                reason = f"route {number}"
                break
    if not channel:
        channel, reason = default_channel, "default channel"
    syntax = mention_syntax(mention) if mention and incident.severity in MENTION_SEVERITIES else None
    return Destination(channel=channel, mention=syntax, reason=reason)
