"""Routing: cluster tags, then name-pattern routes, then the default channel; mentions only from ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.memory import make_dependencies

from emr_triage.alerts.message import build_incident_message
from emr_triage.alerts.routing import CHANNEL_TAG, MENTION_TAG, Route, RoutingError, destination, load_routes
from emr_triage.incidents.service import deliver_alert
from emr_triage.models.incident import Incident

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 2, 13, tzinfo=UTC)


def _incident(**overrides: Any) -> Incident:
    fields: dict[str, Any] = {
        "incident_id": "j-1ABCDEFGHIJK.s-1ABCDEFGHIJK",
        "kind": "step",
        "state": "FAILED",
        "severity": "high",
        "region": "us-east-1",
        "cluster_id": "j-1ABCDEFGHIJK",
        "cluster_name": "finance-nightly",
        "step_name": "ledger-close",
        "failed_at": NOW,
        "opened_at": NOW,
        "updated_at": NOW,
        "expires_at": 1_800_000_000,
    }
    fields.update(overrides)
    return Incident(**fields)


ROUTES = (
    Route(match={"cluster_name": "^finance-"}, channel="#finance-alerts", mention="S0FINANCE1"),
    Route(match={"cluster_name": "^finance-", "step_name": "ledger"}, channel="#never-reached"),
)


def test_cluster_tags_come_first_and_the_owners_are_mentioned_for_high_severity() -> None:
    incident = _incident(tags={CHANNEL_TAG: "#ledger-team", MENTION_TAG: "S0LEDGER01"})
    route = destination(incident, "#default", ROUTES)
    assert (route.channel, route.mention, route.reason) == (
        "#ledger-team",
        "<!subteam^S0LEDGER01>",
        f"tag {CHANNEL_TAG}",
    )


def test_then_the_first_matching_route_then_the_default_channel() -> None:
    assert destination(_incident(), "#default", ROUTES).channel == "#finance-alerts"
    assert destination(_incident(), "#default", ROUTES).mention == "<!subteam^S0FINANCE1>"
    other = _incident(cluster_name="marketing-etl")
    assert (destination(other, "#default", ROUTES).channel, destination(other, "#default", ROUTES).mention) == (
        "#default",
        None,
    )


@pytest.mark.parametrize("severity", ["medium", "low"])
def test_lower_severities_mention_nobody(severity: str) -> None:
    assert destination(_incident(severity=severity), "#default", ROUTES).mention is None


@pytest.mark.parametrize("hostile", ["<!channel>", "<@U123> hi", "#ok|<!everyone>", "here <!channel>"])
def test_a_tag_cannot_inject_a_mention_or_a_channel(hostile: str) -> None:
    # Given tags carrying Slack syntax instead of a channel name and an id
    incident = _incident(cluster_name="marketing-etl", tags={CHANNEL_TAG: hostile, MENTION_TAG: hostile})
    route = destination(incident, "#default", ())
    # Then both are ignored: the default channel, nobody mentioned
    assert (route.channel, route.mention) == ("#default", None)


def test_the_mention_leads_the_root_message_and_its_notification_text() -> None:
    message = build_incident_message(_incident(), "<!subteam^S0FINANCE1>")
    assert message.blocks[1]["text"]["text"].startswith("<!subteam^S0FINANCE1>")
    assert message.text.startswith("<!subteam^S0FINANCE1> ")
    assert build_incident_message(_incident()).digest() != message.digest()


def test_a_bad_routing_file_is_rejected_naming_the_route_and_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text(
        "version: 1\nroutes:\n  - {match: {cluster_name: '^ok'}, channel: '#ok'}\n"
        "  - {match: {cluster_name: '('}, mention: '<!channel>'}\n"
    )
    with pytest.raises(RoutingError, match=r"routing file .*routes\.1"):
        load_routes(bad)


def test_the_shipped_routing_file_loads() -> None:
    assert load_routes(ROOT / "layers" / "rules" / "emr-triage-routing.yaml") == ()


def test_the_alert_is_posted_to_the_routed_channel() -> None:
    # Given an incident of a cluster tagged with its team's channel
    deps, repo, _, _, notifier = make_dependencies()
    incident = _incident(tags={CHANNEL_TAG: "#ledger-team"})
    repo.create(incident)
    # When its alert is delivered
    assert deliver_alert(incident.incident_id, deps) == "posted"
    # Then it went to that channel
    assert notifier.posts[0][0] == "#ledger-team"
