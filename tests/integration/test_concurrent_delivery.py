"""At-least-once delivery with real concurrency: one incident and one Slack root message, however the
events of a failure are delivered.

In AWS each delivery is its own Lambda invocation, so copies of an event, and the events of one failure
(the step's, the cancelled next step's, the cluster's, its logs', its log checks'), are processed at the
same time by several invocations of two or three functions. Here each delivery runs in its own thread
against the embedded stack (moto, whose DynamoDB applies each request atomically as DynamoDB does), and
the real slack-sdk WebClient talks to a fake Slack slowed down so that the invocations overlap where it
matters: between reading an incident and writing it back, and while a message is being posted.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.slack_api import FakeSlack, FakeSlackServer, Fault
from tests.integration.conftest import DEMO, EVENTS, ROOT, TOKEN, load_event, replay, slack_env

from emr_triage import runtime
from emr_triage.aws.incident_store import DynamoIncidentRepository
from emr_triage.local.replay import EMBEDDED_FOLLOW_UP_QUEUE, LocalContext, LocalStack, environment
from emr_triage.local.scenario import load_scenario
from emr_triage.local.template import matching_rules
from emr_triage.models.incident import Incident

SCENARIOS = EVENTS / "scenarios"
STORM = SCENARIOS / "reordered-duplicated-storm"
RERUN = SCENARIOS / "failure-then-successful-rerun"
LATE_LOGS = SCENARIOS / "step-logs-land-after-the-alert"

CLUSTER = "j-3ANP7YJ2WQ0LC"
STEP = f"{CLUSTER}.s-3H8ZKQW0EXAMP"
CANCELLED_STEP = f"{CLUSTER}.s-2PUBLISHDASH0"
CLUSTER_INCIDENT = f"{CLUSTER}.cluster"
ORDERS_STEP = "j-1ORDERSETL020.s-2LOADORDERS00"
ORDERS_STDERR = "s3://acme-emr-logs/elasticmapreduce/j-1ORDERSETL020/steps/s-2LOADORDERS00/stderr.gz"

# Enough to make the invocations overlap in Slack, short enough to keep the file fast.
SLOW_SLACK = Fault(delay=0.3, passthrough=True)
# Each race is run this many times (the interleavings differ from run to run).
ROUNDS = 2


# ---------------------------------------------------------------------------------------------------
# Running deliveries concurrently
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to one function (one Lambda invocation)."""

    function: str
    event: dict[str, Any]


@dataclass
class Result:
    """What an invocation did: its outcome's action, or the error that would make Lambda (or SQS) retry it."""

    function: str
    action: str | None
    outcome: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def routed(stack: LocalStack, event: dict[str, Any]) -> list[Delivery]:
    """The deliveries EventBridge makes of an event: one per function whose rule matches it."""
    deliveries = [Delivery(spec.logical_id, event) for spec, _ in matching_rules(stack.specs, event)]
    assert deliveries, f"no rule of template.yaml matches {event['detail-type']}"
    return deliveries


def copies(stack: LocalStack, event: dict[str, Any], n: int) -> list[Delivery]:
    return routed(stack, event) * n


def run_concurrently(stack: LocalStack, deliveries: list[Delivery]) -> list[Result]:
    """Run every delivery in its own thread, all released at once, and wait for them all.

    The functions share this process (and so one environment: the union of theirs, which agree on every
    variable they share); each invocation gets its own Lambda context.
    """
    specs = {spec.logical_id: spec for spec in stack.specs}
    variables: dict[str, str] = {}
    for spec in stack.specs:
        clash = {k for k, v in spec.environment.items() if variables.get(k, v) != v}
        assert not clash, f"{spec.logical_id} differs from the other functions in {clash}"
        variables.update(spec.environment)
    results: list[Result | None] = [None] * len(deliveries)
    start = threading.Barrier(len(deliveries))
    with environment({**variables, **stack.extra_environment}):
        runtime.reset_settings()
        handlers = {d.function: stack.handler(specs[d.function]) for d in deliveries}
        runtime.get_dependencies()  # built once, as a warm Lambda would have it

        def invoke(index: int, delivery: Delivery) -> None:
            spec = specs[delivery.function]
            context = LocalContext(spec.logical_id, spec.memory_mb, spec.timeout_seconds, stack.region, stack.account)
            start.wait()
            try:
                raw = handlers[delivery.function](delivery.event, context)
            except Exception as exc:
                results[index] = Result(delivery.function, None, error=f"{type(exc).__name__}: {exc}")
                return
            results[index] = _result(delivery.function, raw)

        threads = [threading.Thread(target=invoke, args=(i, d)) for i, d in enumerate(deliveries)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "an invocation is still running after 60 s"
    done = [r for r in results if r is not None]
    assert len(done) == len(deliveries)
    return done


def _result(function: str, raw: dict[str, Any]) -> Result:
    if "batchItemFailures" not in raw:
        return Result(function, str(raw["action"]), raw)
    # An SQS batch of one record: its outcome, or its failure (SQS would deliver it again).
    outcome = raw["outcomes"][0] if raw.get("outcomes") else {}
    error = f"record failed: {raw['batchItemFailures']}" if raw["batchItemFailures"] else None
    return Result(function, outcome.get("action"), outcome, error)


def actions(results: list[Result]) -> list[str]:
    return sorted(str(r.action) for r in results)


def errors(results: list[Result]) -> list[str]:
    return [f"{r.function}: {r.error}" for r in results if r.error]


def run_one(stack: LocalStack, delivery: Delivery) -> Result:
    (result,) = run_concurrently(stack, [delivery])
    return result


def stall_after_creating(monkeypatch: pytest.MonkeyPatch, incident_id: str, meanwhile: Callable[[], None]) -> None:
    """Make the invocation that creates ``incident_id`` stall right after that write (as a Lambda can: a
    throttled call, a pause), and run ``meanwhile`` (another invocation) to completion before it goes on.
    This forces, every time, an interleaving that concurrent invocations hit only now and then."""
    original = DynamoIncidentRepository.create
    pending = [meanwhile]

    def create(self: DynamoIncidentRepository, incident: Incident) -> bool:
        created = original(self, incident)
        if created and incident.incident_id == incident_id and pending:
            pending.pop()()
        return created

    monkeypatch.setattr(DynamoIncidentRepository, "create", create)


@contextmanager
def embedded(folder: Path, **variables: str) -> Iterator[tuple[LocalStack, FakeSlack]]:
    """A fresh embedded stack seeded from a scenario folder, with Slack going to a fresh fake Slack."""
    with FakeSlackServer(TOKEN) as slack:
        extra = {**slack_env(slack), **variables}
        with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=extra) as stack:
            yield stack, slack


def land(stack: LocalStack, event: dict[str, Any]) -> None:
    """Put the log object of an S3 Object Created event in S3 (a scenario's ``lands: true`` object)."""
    from emr_triage.aws import clients

    where = (event["detail"]["bucket"]["name"], event["detail"]["object"]["key"])
    path = stack.held_back.pop(where)
    clients.s3(stack.region).put_object(Bucket=where[0], Key=where[1], Body=path.read_bytes())


def slow_slack(slack: FakeSlack, calls: int = 4) -> None:
    """Slow down the next posts (root messages and replies) and edits, so invocations overlap there."""
    slack.fail_next("chat.postMessage", *[SLOW_SLACK] * calls)
    slack.fail_next("chat.update", *[SLOW_SLACK] * calls)


# ---------------------------------------------------------------------------------------------------
# 1. The held/fold path: a step failure, the next step it cancelled and the cluster it terminated
# ---------------------------------------------------------------------------------------------------
FOLD_CASES = pytest.mark.parametrize(
    ("folder", "failed", "cancelled", "terminated"),
    [
        (DEMO, "01-step-failed.json", "02-next-step-cancelled.json", "03-cluster-terminated-with-errors.json"),
        (STORM, "03-step-failed.json", "02-next-step-cancelled.json", "01-cluster-terminated-with-errors.json"),
    ],
    ids=["spark-step-memory-kill", "reordered-duplicated-storm"],
)
FOLDED_CHILDREN = [
    "cluster nightly-sales-etl TERMINATED_WITH_ERRORS (STEP_FAILURE)",
    "step publish-sales-dashboard (s-2PUBLISHDASH0) CANCELLED",
]


@FOLD_CASES
def test_a_failed_step_racing_the_step_it_cancelled_and_the_cluster_it_terminated_makes_one_alert(
    folder: Path, failed: str, cancelled: str, terminated: str
) -> None:
    # (One round per scenario: the two are two rounds of the same race, the events in another order.)
    with embedded(folder) as (stack, slack):
        # Given the step's FAILED event (twice), the next step's CANCELLED event and the cluster's
        # TERMINATED_WITH_ERRORS (STEP_FAILURE) event, all delivered at the same time, Slack slow
        failure, cancel, termination = (load_event(folder, name) for name in (failed, cancelled, terminated))
        first_wave = [*copies(stack, failure, 2), *routed(stack, cancel), *routed(stack, termination)]
        slow_slack(slack)

        # When four invocations process them concurrently
        results = run_concurrently(stack, first_wave)

        # Then nothing fails, the step failure opens its incident once, and the other two are folded into
        # it, or held for it when its incident did not exist yet
        assert not errors(results), errors(results)
        assert actions(results[:2]) == ["duplicate", "incident_opened"]
        assert {r.action for r in results[2:]} <= {"folded", "incident_opened"}, results[2:]
        # And Slack has one root message: the step's
        (root,) = slack.root_messages()
        assert len(slack.root_posts()) == 1
        step = stack.incident(STEP)
        assert step is not None and step.slack is not None and step.slack.ts == root.ts

        # When all three are delivered again, at once, and then the log checks run (where an incident
        # held meanwhile is folded into the step's)
        again = run_concurrently(stack, [*routed(stack, failure), *routed(stack, cancel), *routed(stack, termination)])
        follow_ups = stack.run_follow_ups()

        # Then still one root message, the step's incident has both as children, and the cancelled step
        # and the cluster are folded into it (or never had an incident of their own): none alerted
        assert not errors(again), errors(again)
        assert not [r.label for r in follow_ups if r.failed], [(r.label, r.invocations) for r in follow_ups]
        assert len(slack.root_posts()) == 1 and len(slack.root_messages()) == 1
        step = stack.incident(STEP)
        assert step is not None and step.slack is not None and step.slack.ts == root.ts
        assert sorted(step.children) == FOLDED_CHILDREN
        for child_id in (CANCELLED_STEP, CLUSTER_INCIDENT):
            child = stack.incident(child_id)
            assert child is None or (child.folded_into == STEP and child.slack is None), child
        assert "publish-sales-dashboard" in json.dumps(root.blocks)
        # And the evidence went into its thread once
        assert len(slack.thread_replies()) == 1


@pytest.mark.parametrize(
    ("event", "incident_id"),
    [("02-next-step-cancelled.json", CANCELLED_STEP), ("01-cluster-terminated-with-errors.json", CLUSTER_INCIDENT)],
    ids=["cancelled-step", "cluster-terminated"],
)
def test_an_early_event_delivered_twice_at_once_is_held_and_not_alerted(
    monkeypatch: pytest.MonkeyPatch, event: str, incident_id: str
) -> None:
    with embedded(STORM) as (stack, slack):
        # Given an event that arrives before the step failure that caused it, delivered twice at once: the
        # second copy is processed just after the first recorded its incident, before it marked it held
        early = load_event(STORM, event)
        duplicates: list[Result] = []
        stall_after_creating(
            monkeypatch, incident_id, lambda: duplicates.extend(run_concurrently(stack, routed(stack, early)))
        )

        # When both copies have run, then the step failure arrives
        first = run_concurrently(stack, routed(stack, early))
        replay(stack, STORM, "03-step-failed.json")

        # Then (as when they are not concurrent) it was held, then folded into the step failure's alert:
        # one root message, the step's
        assert not errors(first + duplicates), errors(first + duplicates)
        assert actions(first + duplicates) == ["duplicate", "incident_opened"]
        held = stack.incident(incident_id)
        assert held is not None and held.slack is None and held.folded_into == STEP
        assert len(slack.root_posts()) == 1


# ---------------------------------------------------------------------------------------------------
# 2. A successful rerun, delivered several times at once
# ---------------------------------------------------------------------------------------------------
def test_copies_of_a_successful_rerun_at_once_resolve_the_incident_once_with_one_recovered_reply() -> None:
    for _ in range(ROUNDS):
        with embedded(RERUN) as (stack, slack):
            # Given the failed step alerted and diagnosed (its stderr landed)
            replay(stack, RERUN, "01-step-failed.json")
            replay(stack, RERUN, "02-step-stderr-log-created.json")
            assert len(slack.thread_replies()) == 1  # the evidence
            # And the rerun's COMPLETED event delivered four times at once, Slack slow
            slow_slack(slack)
            completed = load_event(RERUN, "03-rerun-step-completed.json")

            # When four invocations process them concurrently
            results = run_concurrently(stack, copies(stack, completed, 4))

            # Then one resolves the incident, the others only see the run already recorded
            assert not errors(results), errors(results)
            assert actions(results) == ["incident_resolved", "run_recorded", "run_recorded", "run_recorded"]
            incident = stack.incident(ORDERS_STEP)
            assert incident is not None and incident.status == "RESOLVED" and incident.recovery_posted
            # And exactly one "Recovered" reply went into the alert's thread; the root message says Resolved
            (root,) = slack.root_messages()
            recovered = [c for c in slack.thread_replies() if "Recovered" in json.dumps(c.payload)]
            assert len(recovered) == 1 and recovered[0].payload["thread_ts"] == root.ts
            assert len(slack.thread_replies()) == 2 and len(slack.root_posts()) == 1
            assert "Resolved" in json.dumps(root.blocks)
            assert sum("resolved:" in entry.what for entry in incident.timeline) == 1


# ---------------------------------------------------------------------------------------------------
# 3. Capacity and instance events racing the step failure they explain
# ---------------------------------------------------------------------------------------------------
def infrastructure_event(name: str, at: str) -> dict[str, Any]:
    """A saved instance group/fleet event, moved to the demo's cluster and to ``at`` (around its failure)."""
    event = load_event(EVENTS, name)
    event["time"] = at
    event["detail"]["clusterId"] = CLUSTER
    message = event["detail"]["message"].replace("j-123456789ABCD", CLUSTER)
    event["detail"]["message"] = re.sub(r"2026-11-18 \d\d:\d\d", f"{at[:10]} {at[11:16]}", message)
    return event


def test_instance_group_and_fleet_events_racing_the_step_failure_are_attached_once() -> None:
    spot_reclaimed = infrastructure_event("instance-group-suspended.json", "2026-11-20T02:09:30Z")
    no_capacity = infrastructure_event("instance-fleet-insufficient-capacity.json", "2026-11-20T01:58:10Z")
    # (One round: six deliveries already interleave in many ways, and a round is slow.)
    with embedded(DEMO) as (stack, slack):
        # Given the step's FAILED event, its spot task group suspended 4 minutes before and its core fleet
        # short of capacity before it started, each delivered twice, all at once, Slack slow
        deliveries = [
            *copies(stack, load_event(DEMO, "01-step-failed.json"), 2),
            *copies(stack, spot_reclaimed, 2),
            *copies(stack, no_capacity, 2),
        ]
        slow_slack(slack)

        # When six invocations process them concurrently
        results = run_concurrently(stack, deliveries)

        # Then the incident is opened once, and each infrastructure event attached to it once, by the
        # step failure (it found them recorded) or by the event itself (it found the incident open)
        assert not errors(results), errors(results)
        assert actions(results[:2]) == ["duplicate", "incident_opened"]
        infra = results[2:]
        assert {r.action for r in infra} <= {"incident_updated", "run_recorded"}, infra
        incident = stack.incident(STEP)
        assert incident is not None and len(incident.infrastructure) == 2, incident and incident.infrastructure
        for unit in ("ig-2SPOTTASK0001", "if-1CORE0000001"):
            assert sum(unit in line for line in incident.infrastructure) == 1
        # And one root message, which shows both
        (root,) = slack.root_messages()
        assert len(slack.root_posts()) == 1
        shown = json.dumps(root.blocks)
        assert "ig-2SPOTTASK0001" in shown and "if-1CORE0000001" in shown


def test_an_instance_event_attached_while_the_step_failure_is_processed_is_in_the_timeline_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spot_reclaimed = infrastructure_event("instance-group-suspended.json", "2026-11-20T02:09:30Z")
    no_capacity = infrastructure_event("instance-fleet-insufficient-capacity.json", "2026-11-20T01:58:10Z")
    with embedded(DEMO) as (stack, _):
        # Given the core fleet's capacity problem recorded before the failure
        assert run_one(stack, *routed(stack, no_capacity)).action == "run_recorded"
        # And the spot group's suspension processed just after the step failure's incident is recorded,
        # while that invocation is still reading the logs
        during: list[Result] = []
        stall_after_creating(
            monkeypatch, STEP, lambda: during.extend(run_concurrently(stack, routed(stack, spot_reclaimed)))
        )

        # When the step failure is processed
        opened = run_one(stack, *routed(stack, load_event(DEMO, "01-step-failed.json")))

        # Then each event is attached once, and in the incident's timeline once
        assert opened.action == "incident_opened" and [r.action for r in during] == ["incident_updated"]
        incident = stack.incident(STEP)
        assert incident is not None and len(incident.infrastructure) == 2
        for unit in ("ig-2SPOTTASK0001", "if-1CORE0000001"):
            assert sum(unit in entry.what for entry in incident.timeline) == 1, [e.what for e in incident.timeline]


# ---------------------------------------------------------------------------------------------------
# 4. The same log object announced several times at once (and found by a log check meanwhile)
# ---------------------------------------------------------------------------------------------------
def queued_follow_ups(stack: LocalStack, wait: float = 3.0) -> list[dict[str, Any]]:
    """The log checks in the follow-up queue, once their delay has passed (each taken in flight)."""
    from emr_triage.aws import clients

    sqs = clients.sqs(stack.region)
    url = sqs.get_queue_url(QueueName=EMBEDDED_FOLLOW_UP_QUEUE)["QueueUrl"]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        delayed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        if delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "0":
            break
        time.sleep(0.1)
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        messages += [dict(message) for message in batch]
    return messages


def follow_up_delivery(stack: LocalStack, message: dict[str, Any]) -> Delivery:
    """The FollowUpFunction invocation Lambda's SQS event source makes for one message (as run_follow_ups)."""
    (spec,) = [spec for spec in stack.specs if "FollowUpQueue" in spec.queues]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{stack.region}:{stack.account}:{EMBEDDED_FOLLOW_UP_QUEUE}",
        "awsRegion": stack.region,
    }
    return Delivery(spec.logical_id, {"Records": [record]})


def test_a_log_announced_several_times_at_once_is_analysed_into_its_incident_once() -> None:
    with embedded(LATE_LOGS) as (stack, _):
        replay(stack, LATE_LOGS, "01-step-failed.json")
        replay(stack, LATE_LOGS, "02-step-stderr-log-created.json")
        alone = stack.incident(ORDERS_STEP)
        assert alone is not None
        once = [(f.rule_id, f.count) for f in alone.findings]  # what the log gives, delivered once
    # (One round: five deliveries of two functions already interleave in many ways, and a round is slow.)
    with embedded(LATE_LOGS) as (stack, slack):
        # Given the step alerted before its logs landed, with its log check queued
        replay(stack, LATE_LOGS, "01-step-failed.json")
        (check,) = queued_follow_ups(stack)
        # And its stderr landing: its Object Created event delivered twice, the event of a re-upload of
        # the same key (same etag) twice, and the log check, all at once, Slack slow
        created = load_event(LATE_LOGS, "02-step-stderr-log-created.json")
        reuploaded = load_event(LATE_LOGS, "04-step-stderr-log-created-again.json")
        assert reuploaded["detail"]["object"] == created["detail"]["object"]
        land(stack, created)
        deliveries = [*copies(stack, created, 2), *copies(stack, reuploaded, 2), follow_up_delivery(stack, check)]
        slow_slack(slack)

        # When five invocations of two functions process them concurrently
        results = run_concurrently(stack, deliveries)

        # Then nothing fails, and the log is in the incident once, with the verdict it gives
        assert not errors(results), errors(results)
        assert {r.action for r in results} <= {"incident_updated", "duplicate"}, results
        incident = stack.incident(ORDERS_STEP)
        assert incident is not None and incident.diagnosis is not None
        assert [r.source for r in incident.logs_analysed].count(ORDERS_STDERR) == 1
        assert sum("analysed stderr.gz" in entry.what for entry in incident.timeline) == 1
        assert incident.diagnosis.category == "sql_analysis_error"
        assert [(f.rule_id, f.count) for f in incident.findings] == once  # not counted twice
        # And one root message, edited to the verdict, with one evidence reply and one extract in its thread
        (root,) = slack.root_messages()
        assert len(slack.root_posts()) == 1
        assert len(slack.thread_replies()) == 1
        assert len(slack.calls_to("files.completeUploadExternal")) == 1
        assert incident.slack is not None and incident.slack.digest is not None
        assert "order_total" in json.dumps(root.blocks)


# ---------------------------------------------------------------------------------------------------
# 5. A log check delivered twice at once (SQS delivers at least once)
# ---------------------------------------------------------------------------------------------------
def test_a_log_check_delivered_twice_at_once_schedules_the_next_check_once() -> None:
    for _ in range(ROUNDS):
        # (A check a second apart and a one-minute deadline: 60 checks, each due one second after the last)
        with embedded(LATE_LOGS, FOLLOW_UP_INTERVAL_SECONDS="1", LOGS_DEADLINE_MINUTES="1") as (stack, slack):
            # Given the step alerted before its logs landed, and its stderr landed without an S3 event
            replay(stack, LATE_LOGS, "01-step-failed.json")
            land(stack, load_event(LATE_LOGS, "02-step-stderr-log-created.json"))
            (check,) = queued_follow_ups(stack)
            assert json.loads(check["Body"]) == {
                "incident_id": ORDERS_STEP,
                "check": 1,
                "checks": 60,
                "purpose": "logs",
            }
            slow_slack(slack)

            # When the first log check is delivered twice, to two concurrent invocations
            results = run_concurrently(stack, [follow_up_delivery(stack, check)] * 2)

            # Then both succeed, the log they both found is in the incident once, and its evidence posted once
            assert not errors(results), errors(results)
            assert {r.action for r in results} <= {"incident_updated", "duplicate"}, results
            assert "incident_updated" in actions(results)
            incident = stack.incident(ORDERS_STEP)
            assert incident is not None and incident.diagnosis is not None
            assert [r.source for r in incident.logs_analysed].count(ORDERS_STDERR) == 1
            assert len(slack.root_posts()) == 1 and len(slack.thread_replies()) == 1
            # And the chain goes on once: one message in the queue, for check 2
            queued = [json.loads(message["Body"]) for message in queued_follow_ups(stack)]
            assert queued == [{"incident_id": ORDERS_STEP, "check": 2, "checks": 60, "purpose": "logs"}]
            assert incident.follow_up_check == 2


def test_a_held_incidents_check_delivered_twice_at_once_alerts_it_once() -> None:
    for _ in range(ROUNDS):
        with embedded(STORM) as (stack, slack):
            # Given a cancelled step held for a failed step that never came, its check delivered twice at once
            replay(stack, STORM, "02-next-step-cancelled.json")
            (check,) = queued_follow_ups(stack)
            slow_slack(slack)

            # When two invocations process it concurrently
            results = run_concurrently(stack, [follow_up_delivery(stack, check)] * 2)

            # Then it is released and alerted on its own, once, with its own log checks scheduled once
            assert not errors(results), errors(results)
            incident = stack.incident(CANCELLED_STEP)
            assert incident is not None and not incident.held_for_parent and incident.slack is not None
            assert len(slack.root_posts()) == 1 and len(slack.root_messages()) == 1
            queued = [json.loads(message["Body"]) for message in queued_follow_ups(stack)]
            assert queued == [{"incident_id": CANCELLED_STEP, "check": 1, "checks": 1, "purpose": "logs"}]


def test_a_hold_check_delivered_again_after_the_release_is_not_taken_for_the_final_log_check() -> None:
    # Given production timing (a log check every 5 minutes, a 15-minute deadline: 3 checks)
    with embedded(STORM, FOLLOW_UP_INTERVAL_SECONDS="300") as (stack, slack):
        # And a cancelled step held for a failed step that never came
        replay(stack, STORM, "02-next-step-cancelled.json")
        hold_check = {
            "incident_id": CANCELLED_STEP,
            "check": 1,
            "checks": 1,
            "purpose": "hold",
        }  # (delayed 5 min in the queue)
        message = {"MessageId": "m-hold", "ReceiptHandle": "r-hold", "Body": json.dumps(hold_check)}

        # When its hold check is delivered, and delivered again (SQS: at least once)
        first, again = (run_one(stack, follow_up_delivery(stack, message)) for _ in range(2))

        # Then the first released it and alerted it on its own, with its 3 log checks to come
        assert not first.error and first.outcome["slack"] == "posted"
        # And the second changed nothing: the logs deadline is 15 minutes away, the alert does not say
        # "no log could be read within 15 min"
        assert not again.error
        incident = stack.incident(CANCELLED_STEP)
        assert incident is not None and not incident.logs_deadline_passed and not incident.logs_unavailable
        assert not slack.calls_to("chat.update")
