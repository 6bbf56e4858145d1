"""What a replay runs and reports: the saved events and scenarios named on the command line, checked
before anything runs, and what each event did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emr_triage.exceptions import ScenarioError
from emr_triage.local.scenario import (
    Scenario,
    check_event_refers_to_scenario,
    load_scenario,
    read_event_file,
)
from emr_triage.models.events import parse_event
from emr_triage.slack.notifier import SentMessage


@dataclass
class ReplayItem:
    """One saved event to replay, with the scenario it belongs to (if any)."""

    path: Path
    event: Any
    scenario: Scenario | None = None
    folder: Path | None = None
    expect_action: str | None = None
    expect_category: str | None = None
    then_checks: bool = False  # deliver the due checks of the delay queue after it (see EventEntry.checks)


@dataclass
class Invocation:
    function: str
    rule: str
    outcome: dict[str, Any] | None = None
    error: str | None = None
    output: str = ""


@dataclass
class EventReport:
    item: ReplayItem
    label: str
    invocations: list[Invocation] = field(default_factory=list)
    not_delivered: str | None = None
    slack: list[SentMessage] = field(default_factory=list)
    expectation_failure: str | None = None

    @property
    def failed(self) -> bool:
        rejected = any(i.outcome and i.outcome.get("action") == "rejected" for i in self.invocations)
        return rejected or any(i.error for i in self.invocations) or self.expectation_failure is not None


def collect_items(paths: list[Path]) -> list[ReplayItem]:
    """Expand replay arguments: a scenario folder gives its events in order; a file is one event
    (using the scenario of its folder, if that folder has a scenario.yaml).

    Raises
    ------
    ScenarioError
        A path that does not exist, is not JSON, or a scenario that is incomplete.
    """
    items: list[ReplayItem] = []
    for path in paths:
        if path.is_dir():
            scenario = load_scenario(path)
            if not scenario.events:
                raise ScenarioError(f"{path}/scenario.yaml lists no events to replay")
            for entry in scenario.events:
                file = path / entry.file
                items.append(
                    ReplayItem(
                        path=file,
                        event=read_event_file(file),
                        scenario=scenario,
                        folder=path,
                        expect_action=entry.expect.action if entry.expect else None,
                        expect_category=entry.expect.category if entry.expect else None,
                        then_checks=entry.checks,
                    )
                )
        elif path.is_file():
            folder = path.parent
            owner = load_scenario(folder) if (folder / "scenario.yaml").is_file() else None
            expect = None
            if owner is not None:
                expect = next((e.expect for e in owner.events if (folder / e.file).resolve() == path.resolve()), None)
            items.append(
                ReplayItem(
                    path=path,
                    event=read_event_file(path),
                    scenario=owner,
                    folder=folder if owner else None,
                    expect_action=expect.action if expect else None,
                    expect_category=expect.category if expect else None,
                )
            )
        else:
            raise ScenarioError(f"{path}: no such file or folder")
    return items


def validate_item(item: ReplayItem) -> None:
    """Reject, before anything runs, an event that is not an event we handle, or that refers to AWS
    state its scenario does not define. (A *malformed* event of a known type is left to the handler,
    which must reject it the way it would in Lambda.)"""
    from emr_triage.exceptions import InvalidEventError, UnknownEventTypeError
    from emr_triage.local.interactions import is_interaction

    event = item.event
    if is_interaction(event):
        return  # a saved Slack button press or slash command, for SlackInteractionsFunction
    if not isinstance(event, dict) or "detail-type" not in event or "source" not in event:
        raise ScenarioError(f"{item.path}: not an EventBridge event (no 'source'/'detail-type')")
    try:
        parse_event(event)
    except UnknownEventTypeError as exc:
        raise ScenarioError(f"{item.path}: {exc}") from exc
    except InvalidEventError:
        pass
    if item.scenario is not None:
        check_event_refers_to_scenario(event, item.scenario, str(item.path))
