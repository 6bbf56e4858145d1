"""Member accounts in the domain: a member's event is handled with that account's EMR and S3, its ids and
job keys carry the account (the same names in two accounts are two jobs), and its alert names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.fakes.memory import FakeEmr, FakeLogs, make_dependencies

from emr_triage.alerts.routing import Route, destination
from emr_triage.incidents.emr_events import handle_emr_event
from emr_triage.models.emr import ClusterInfo, StepInfo
from emr_triage.models.events import parse_emr_event
from emr_triage.models.ids import account_of
from emr_triage.settings import load_settings

MEMBER, HOME = "210987654321", "123456789012"
CLUSTER, STEP = "j-2PRODORDERS01", "s-1LOADORDERS02"
AT = datetime(2026, 11, 20, 3, 0, 24, tzinfo=UTC)


@dataclass
class _Members:
    """Member accounts' adapters, by account (what AssumedRoleAccess gives through the role)."""

    emrs: dict[str, FakeEmr] = field(default_factory=dict)
    stores: dict[str, FakeLogs] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def emr(self, account: str) -> FakeEmr:
        self.asked.append(account)
        return self.emrs.setdefault(account, FakeEmr())

    def logs(self, account: str) -> FakeLogs:
        return self.stores.setdefault(account, FakeLogs())


def _step_event(account: str, state: str = "FAILED", name: str = "load-orders", at: datetime = AT) -> Any:
    return parse_emr_event(
        {
            "version": "0",
            "id": f"e-{account}-{state}-{at:%H%M}",
            "detail-type": "EMR Step Status Change",
            "source": "aws.emr",
            "account": account,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": {"clusterId": CLUSTER, "stepId": STEP, "name": name, "state": state},
        }
    )


def _deps():  # type: ignore[no-untyped-def]
    environment = {"HOME_ACCOUNT": HOME, "MEMBER_ACCOUNT_NAMES": f"{MEMBER}=prod-data"}
    deps, repo, home_emr, _, notifier = make_dependencies(now=AT + timedelta(seconds=3), environment=environment)
    members = _Members()
    member_emr = members.emr(MEMBER)
    members.asked.clear()
    for emr in (member_emr, home_emr):
        emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="orders-etl", log_uri="s3://logs-bucket/emr/")
        emr.steps[STEP] = StepInfo(step_id=STEP, name="load-orders", state="FAILED")
    deps.members = members
    return deps, repo, home_emr, member_emr, members, notifier


def test_a_member_accounts_failure_is_described_in_that_account_and_its_id_carries_it() -> None:
    deps, repo, home_emr, member_emr, members, notifier = _deps()
    outcome = handle_emr_event(_step_event(MEMBER), deps)
    assert outcome.incident_id == f"{MEMBER}:{CLUSTER}.{STEP}" and account_of(outcome.incident_id) == MEMBER
    assert members.asked == [MEMBER] and home_emr.calls == []
    assert member_emr.calls == ["DescribeCluster", "DescribeStep"]
    incident = repo.get(f"{MEMBER}:{CLUSTER}.{STEP}")
    assert incident is not None and incident.account_name == "prod-data"
    assert "`prod-data` `210987654321`" in str(notifier.posts[0])


def test_the_stacks_own_account_is_unchanged() -> None:
    deps, _, home_emr, member_emr, members, notifier = _deps()
    outcome = handle_emr_event(_step_event(HOME), deps)
    assert outcome.incident_id == f"{CLUSTER}.{STEP}" and account_of(outcome.incident_id) is None
    assert members.asked == [] and member_emr.calls == [] and "DescribeCluster" in home_emr.calls
    assert "*Account*" not in str(notifier.posts[0])


def test_the_same_job_in_two_accounts_is_two_jobs() -> None:
    # Given the member's production failure
    deps, repo, _, _, _, _ = _deps()
    handle_emr_event(_step_event(MEMBER), deps)
    # When the same step name succeeds in the stack's own (development) account
    later = AT + timedelta(hours=1)
    outcome = handle_emr_event(_step_event(HOME, "COMPLETED", at=later), deps)
    # Then the production failure stays open; its own account's success resolves it
    assert outcome.action == "run_recorded"
    incident = repo.get(f"{MEMBER}:{CLUSTER}.{STEP}")
    assert incident is not None and incident.status == "OPEN"
    resolved = handle_emr_event(_step_event(MEMBER, "COMPLETED", at=later + timedelta(minutes=5)), deps)
    assert resolved.action == "incident_resolved" and resolved.incident_id == f"{MEMBER}:{CLUSTER}.{STEP}"


def test_a_route_can_match_the_account() -> None:
    deps, repo, _, _, _, _ = _deps()
    handle_emr_event(_step_event(MEMBER), deps)
    incident = repo.get(f"{MEMBER}:{CLUSTER}.{STEP}")
    assert incident is not None
    routes = (Route(match={"account": f"^{MEMBER}$"}, channel="#prod-alerts"),)
    assert destination(incident, "#alerts", routes).channel == "#prod-alerts"


@pytest.mark.parametrize("names", ["210987654321", "21098765432=x", "210987654321=a,b"])
def test_malformed_account_names_are_refused(names: str) -> None:
    with pytest.raises(Exception, match="MEMBER_ACCOUNT_NAMES"):
        load_settings(
            {
                "INCIDENTS_TABLE": "incidents",
                "LOG_BUCKET": "logs-bucket",
                "SLACK_CHANNEL": "#alerts",
                "SLACK_DELIVERY": "console",
                "MEMBER_ACCOUNT_NAMES": names,
            }
        )
