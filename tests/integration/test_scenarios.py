"""Every bundled scenario (events/scenarios/*), replayed end to end through template.yaml's functions on
moto, with Slack served by the fake Web API: each event has the outcome its scenario.yaml expects, and the
replay leaves exactly the incidents and Slack root messages listed in EXPECTED below, every message it posts
being Block Kit that slack-sdk accepts.

A scenario added without an entry in EXPECTED fails here, asking for one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import EVENTS, ROOT, slack_env
from tests.unit.test_block_kit import message_problems

from emr_triage.alerts.routing import CHANNEL_TAG
from emr_triage.aws.incident_store import DynamoIncidentRepository
from emr_triage.local.history import JOBS, generate
from emr_triage.local.items import EventReport, collect_items
from emr_triage.local.replay import LocalStack
from emr_triage.local.scenario import Scenario
from emr_triage.models.incident import Incident

SCENARIOS = EVENTS / "scenarios"
FOLDERS = sorted(p for p in SCENARIOS.glob("*") if p.is_dir())


@dataclass(frozen=True)
class Expected:
    """An incident the replay leaves: its status, its diagnosis category (None: not diagnosed), how many
    other events were folded into its alert, and the incident whose alert it was folded into."""

    status: Literal["OPEN", "RESOLVED"]
    category: str | None
    children: int = 0
    folded_into: str | None = None
    # When given: the logs read into it, each as the end of its S3 key (all of them, and no other).
    logs: frozenset[str] | None = None


@dataclass(frozen=True)
class ScenarioExpected:
    """What a scenario leaves: every incident (by id), the number of Slack root messages, and text the
    root message must show once the replay is over."""

    incidents: dict[str, Expected]
    root_messages: int = 1
    slack_says: tuple[str, ...] = field(default_factory=tuple)


MEMORY_KILL = "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP"
MEMORY_KILL_LOGS = frozenset(
    {
        "s-3H8ZKQW0EXAMP/stderr.gz",
        "s-3H8ZKQW0EXAMP/controller.gz",
        "container_1763604005123_0042_01_000001/stderr.gz",
    }
)
ORDERS = "j-1ORDERSETL020.s-2LOADORDERS00"
ATTRIBUTION = "j-2MARKETATTR07.s-1ATTRIBUTION0"
INVOICES = "j-3BILLINGMONTH.s-2INVOICEROLL0"

EXPECTED: dict[str, ScenarioExpected] = {
    "spark-step-memory-kill": ScenarioExpected(
        incidents={MEMORY_KILL: Expected("OPEN", "yarn_memory_kill", children=2, logs=MEMORY_KILL_LOGS)},
        slack_says=("publish-sales-dashboard", "STEP_FAILURE"),
    ),
    "step-logs-land-after-the-alert": ScenarioExpected(
        incidents={ORDERS: Expected("OPEN", "sql_analysis_error", logs=frozenset({"s-2LOADORDERS00/stderr.gz"}))},
    ),
    "reordered-duplicated-storm": ScenarioExpected(
        incidents={
            MEMORY_KILL: Expected("OPEN", "yarn_memory_kill", children=2, logs=MEMORY_KILL_LOGS),
            # Arrived before the step failure: held without a page, then folded into its alert.
            "j-3ANP7YJ2WQ0LC.cluster": Expected("RESOLVED", "other", folded_into=MEMORY_KILL),
            "j-3ANP7YJ2WQ0LC.s-2PUBLISHDASH0": Expected("RESOLVED", None, folded_into=MEMORY_KILL),
        },
        slack_says=("publish-sales-dashboard", "STEP_FAILURE"),
    ),
    # Acknowledged, then muted: the next night's same failure is recorded, with no message of its own (its
    # alert is a reply in the first alert's thread), and stays so after the unmute.
    "acknowledge-mute-then-unmute": ScenarioExpected(
        incidents={
            ORDERS: Expected("OPEN", "sql_analysis_error"),
            "j-3ORDERSNEXT21.s-3LOADORDERS21": Expected("OPEN", "sql_analysis_error"),
        },
        slack_says=("Acknowledged* by <@U0DANAONC>", '"action_id": "mute"'),
    ),
    "failure-then-successful-rerun": ScenarioExpected(
        incidents={ORDERS: Expected("RESOLVED", "sql_analysis_error")},
        slack_says=("Resolved",),
    ),
    "step-logs-landed-before-the-event": ScenarioExpected(
        incidents={
            # Diagnosed from the step's stderr and the driver's container log, both read by the FAILED event.
            ATTRIBUTION: Expected(
                "OPEN",
                "input_not_found",
                children=1,
                logs=frozenset(
                    {
                        "s-1ATTRIBUTION0/stderr.gz",
                        "s-1ATTRIBUTION0/controller.gz",
                        "container_1795233432391_0007_01_000001/stderr.gz",
                    }
                ),
            ),
            # The driver's log, landed before the step's FAILED event: held, then folded into its alert.
            "j-2MARKETATTR07.application_1795233432391_0007": Expected(
                "RESOLVED", "input_not_found", folded_into=ATTRIBUTION
            ),
        },
        slack_says=("PATH_NOT_FOUND",),
    ),
    "cluster-death-cancels-three-steps": ScenarioExpected(
        incidents={
            INVOICES: Expected("OPEN", "s3_access_denied", children=4),
            # The one cancellation delivered before the failure: held, then folded in.
            "j-3BILLINGMONTH.s-3LEDGEREXPORT": Expected("RESOLVED", None, folded_into=INVOICES),
        },
        slack_says=("ledger-export", "tax-report", "revenue-recognition", "STEP_FAILURE"),
    ),
    "spot-reclaim-lost-executors": ScenarioExpected(
        incidents={"j-2CLICKSESSN04.s-2SESSIONIZE00": Expected("OPEN", "node_lost_spot")},
        slack_says=(
            "Likely infrastructure, not your code",
            "ig-3SPOTTASK7Q2M",
            "Spot instances were reclaimed",
            "Where it stopped",
        ),
    ),
    "application-outside-the-steps-api": ScenarioExpected(
        incidents={
            # Airflow's Livy batch, named by its spark.app.name; the notebook's caught error opened nothing,
            # and the successful rerun resolved it. Its executor's log added nothing to the verdict: it was
            # kept under the incident for a log check, which the resolution made moot.
            "j-2ANALYTICS0SH.application_1763611200000_0042": Expected(
                "RESOLVED",
                "driver_result_size",
                logs=frozenset({"container_e03_1763611200000_0042_01_000001/stderr.gz"}),
            ),
        },
        slack_says=("Resolved",),
    ),
    # The run is known to have failed (EMR says FAILED): lost executors are the cause when the logs show
    # nothing more specific, and YARN's words alone name the AM's failure.
    "step-failed-with-only-lost-executors": ScenarioExpected(
        incidents={"j-2CLICKHOURLY1.s-1SESSIONIZE01": Expected("OPEN", "executor_lost")},
        slack_says=("Executors were lost while running tasks", "no recent heartbeats"),
    ),
    "step-failed-with-only-yarn-words": ScenarioExpected(
        incidents={"j-1LEDGERDAILY2.s-2LEDGERROLL01": Expected("OPEN", "app_killed_or_am_failed")},
        slack_says=("YARN says the application failed", "_000001"),
    ),
    "emr-serverless-job-run-failed": ScenarioExpected(
        incidents={
            # The verdict comes from executor 3's log, not from the driver's "executor lost" symptom.
            "00f2a7bq4c8kd001.00f2a7bq5h1se001": Expected(
                "RESOLVED",
                "oom_heap",
                logs=frozenset({"SPARK_DRIVER/stderr.gz", "SPARK_EXECUTOR/1/stderr.gz", "SPARK_EXECUTOR/3/stderr.gz"}),
            ),
        },
        slack_says=("Resolved",),
    ),
    # EMR on EKS: alerted from DescribeJobRun at once, diagnosed when the driver pod's log lands, routed by
    # the virtual cluster's tag; the executor pod's log adds nothing; the rerun resolves it.
    "eks-job-run-logs-land-later": ScenarioExpected(
        incidents={
            "8r1dk2mvz3c0kq5xw7hn4tpl6.0000000364ptbk3lsa1": Expected(
                "RESOLVED",
                "oom_heap",
                # The executor's log added nothing, so it was kept for a log check, which found the run resolved.
                logs=frozenset({"spark-0000000364ptbk3lsa1-driver/stderr.gz"}),
            ),
        },
        slack_says=(
            "EMR on EKS job run failed: feature-build-2026-11-20",
            "analytics-prod/spark-ml",
            "spark.executor.pyspark.memory=400m",
            "Resolved",
        ),
    ),
    # Many accounts: a member account's failure, read through its role, alerted with the account named.
    "member-account-step-failed": ScenarioExpected(
        incidents={"210987654321:j-2PRODORDERS01.s-1LOADORDERS02": Expected("OPEN", "sql_analysis_error")},
        slack_says=("`prod-data` `210987654321`", "EMR step failed: load-orders"),
    ),
    # EC2's Spot warnings, mapped to the cluster by the instances' EMR tags, name the reclaimed nodes.
    "spot-warning-before-lost-executors": ScenarioExpected(
        incidents={"j-2CLICKSESSN04.s-2SESSIONIZE00": Expected("OPEN", "node_lost_spot")},
        slack_says=("Likely infrastructure", "EC2 Spot interruption warning: Spot task node ip-10-0-7-88.ec2.internal"),
    ),
    # Jobs over time: a hung step alerted as slow, whose failure then edits that same message; a late run's
    # alert edited to "finished late" (no incident: it succeeded); the weekly digest of a generated month.
    "slow-step-no-executors-then-killed": ScenarioExpected(
        incidents={"j-2CLICKSHOURLY.s-SESSIONIZE006": Expected("OPEN", "app_killed_or_am_failed")},
        slack_says=("EMR step failed: sessionize-clicks", "alerted as slow at 02:37 UTC"),
    ),
    "slow-run-finishes-late": ScenarioExpected(
        incidents={}, slack_says=("Finished late: EMR step build-features", "after *1 h 24 min*")
    ),
    "weekly-digest-over-a-month": ScenarioExpected(
        incidents={
            i.incident_id: Expected("OPEN", i.diagnosis.category if i.diagnosis else None)
            for i in generate(until=datetime(2026, 12, 7, 8, tzinfo=UTC), days=30, seed=8).incidents
        },
        root_messages=2,
        slack_says=("Weekly EMR digest: Mon 30 Nov", "Flakiest jobs"),
    ),
}


def _channels(scenario: Scenario) -> set[str]:
    """The Slack channels a scenario's alerts may go to: its default channel, and those the tags of its
    clusters, EMR Serverless applications and job runs route to."""
    tags = [c.tags for c in scenario.clusters]
    tags += [a.tags for a in scenario.serverless_applications]
    tags += [r.tags for a in scenario.serverless_applications for r in a.job_runs]
    history = {job[2] for job in JOBS} if scenario.history else set()  # a generated history's channels
    return {scenario.slack_channel} | history | {t[CHANNEL_TAG] for t in tags if t.get(CHANNEL_TAG)}


def _problems(report: EventReport) -> list[str]:
    """What went wrong with one replayed event (an invocation error, a rejection, no rule matching it, an
    outcome other than its scenario.yaml expects), each prefixed with the event's file name."""
    name = report.item.path.name
    found = []
    for invocation in report.invocations:
        outcome = invocation.outcome or {}
        if invocation.error:
            found.append(f"{name}: {invocation.function} failed: {invocation.error}")
        if outcome.get("action") == "rejected":
            found.append(f"{name}: rejected: {outcome.get('detail')}")
    if report.not_delivered:
        found.append(f"{name}: not delivered: {report.not_delivered}")
    if report.expectation_failure:
        found.append(f"{name}: {report.expectation_failure}")
    return found


def _logs_read(incident: Incident, expected: frozenset[str]) -> frozenset[str]:
    """The logs actually read into an incident (not those only noted as unreadable): the expected key ends
    they have, and in full the S3 URIs of any others."""
    read = [r.source for r in incident.logs_analysed if r.lines > 0 or r.bytes_read > 0]
    return frozenset(next((end for end in expected if source.endswith(f"/{end}")), source) for source in read)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_bundled_scenario_replays_to_the_outcomes_incidents_and_alert_it_expects(
    folder: Path, slack: FakeSlack
) -> None:
    # Given a bundled scenario, its expectations here, and every event file of its folder listed in its
    # scenario.yaml, in file-name order, each with the outcome it expects
    expected = EXPECTED.get(folder.name)
    assert expected is not None, (
        f"scenario {folder.name} has no expectations: add an entry for it to EXPECTED in {Path(__file__).name} "
        "(the incidents it leaves, with their status, category, children and folded_into; its Slack root messages)"
    )
    items = collect_items([folder])
    assert [i.path.name for i in items] == sorted(p.name for p in folder.glob("*.json")), (
        f"{folder.name}/scenario.yaml must list every event file of the folder, in file-name order"
    )
    unchecked = [i.path.name for i in items if i.expect_action is None]
    assert not unchecked, f"{folder.name}/scenario.yaml: give these events an `expect`: {unchecked}"
    scenario = items[0].scenario
    assert scenario is not None
    # (the fake workspace knows two channels: it gets the ones this scenario alerts in, by name or id)
    for number, channel in enumerate(sorted(_channels(scenario) - set(slack.channels.values()))):
        slack.channels.setdefault(channel, channel if not channel.startswith("#") else f"C0SCENARIO{number}")
    with LocalStack(ROOT, scenario=scenario, folder=folder, extra_environment=slack_env(slack)) as stack:
        # When every event is delivered through the template's rules, then the log checks they scheduled run
        reports = [report for item in items for report in stack.replay_then_checks(item)]
        problems = [problem for report in reports for problem in _problems(report)]
        checks = stack.run_follow_ups()
        incidents = {i.incident_id: i for i in DynamoIncidentRepository(stack.table_name).list_incidents()}
        dead_letters = stack.dead_letters()

    # Then each event had the outcome (and diagnosis) its scenario.yaml expects, and nothing failed
    problems += [f"log check: {i.error}" for check in checks for i in check.invocations if i.error]
    assert not problems, "\n".join(problems)
    assert not dead_letters
    # And exactly the expected incidents exist, as expected
    assert sorted(incidents) == sorted(expected.incidents)
    for incident_id, want in expected.incidents.items():
        incident = incidents[incident_id]
        got = Expected(
            status=incident.status,
            category=incident.diagnosis.category if incident.diagnosis else None,
            children=len(incident.children),
            folded_into=incident.folded_into,
            logs=None if want.logs is None else _logs_read(incident, want.logs),
        )
        assert got == want, incident_id
    # And Slack got the expected root messages, the alert showing what the scenario is about
    roots = slack.root_messages()
    assert len(roots) == expected.root_messages
    shown = json.dumps([root.blocks for root in roots])
    assert [text for text in expected.slack_says if text not in shown] == []
    # And every message posted or edited is Block Kit that slack-sdk's own models accept
    sent = [c for c in slack.calls if c.method in ("chat.postMessage", "chat.update", "webhook")]
    assert any(c.payload.get("blocks") for c in sent)
    assert [f"{c.method} {n}: {p}" for n, c in enumerate(sent) for p in message_problems(c.payload)] == []


def test_every_expectation_entry_is_a_bundled_scenario() -> None:
    # Given the expectations table and the bundled scenario folders
    bundled = {folder.name for folder in FOLDERS}
    # When the table's entries are compared with the folders
    stale = sorted(set(EXPECTED) - bundled)
    # Then none is left over from a renamed or removed scenario
    assert stale == [], f"EXPECTED has entries for scenarios that do not exist: {stale}"
