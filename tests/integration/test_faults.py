"""Fault injection: each dependency failing the way it fails in AWS, through the real handlers on the embedded
stack, and the designed behaviour for each (README, "Operations").

Every case of the matrix (``CASES``) names a fault, how emr-triage is designed to take it, and what the first
invocation must show:

- ``absorbed``: the client's own retries get through it (botocore's standard mode, 5 attempts; slack-sdk's
  retry handlers); the invocation succeeds.
- ``retried``: the invocation fails, so Lambda retries the event (and dead-letters it when its retries run
  out); what was done before the failure (the incident, a posted alert) is kept, not redone.
- ``degraded``: the invocation succeeds with less, and says why (a log recorded as unreadable with the reason,
  a read cut short by the time budget and flagged partial).

Then, in every case, the fault clears and the event is delivered again (Lambda retries a failed invocation;
EventBridge and S3 deliver at least once), and there is exactly one incident and one Slack root message.

Slack's faults are scripted on the fake Slack Web API. AWS's are answered in front of moto on the process's
cached boto3 clients (a ``before-send`` handler returns the service's error response, or raises a connection
error), so botocore parses them and its retry mode decides, as it would with AWS. Back-offs (botocore's,
slack-sdk's) are recorded instead of slept.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
import botocore.endpoint
import pytest
import slack_sdk.http_retry.builtin_handlers
import slack_sdk.http_retry.handler
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import EndpointConnectionError
from moto.core.models import botocore_stubber
from tests.fakes.slack_api import FakeSlack, Fault
from tests.integration.conftest import DEMO, EVENTS, ROOT, TOKEN, load_event, slack_env

from emr_triage.aws import clients
from emr_triage.aws.incident_store import DynamoIncidentRepository, from_item
from emr_triage.local.items import Invocation, ReplayItem
from emr_triage.local.replay import EMBEDDED_FOLLOW_UP_QUEUE, EMBEDDED_TABLE, LocalStack
from emr_triage.local.scenario import load_scenario
from emr_triage.models.incident import Incident, TimelineEntry
from emr_triage.slack.notifier import SlackWebNotifier

APPLICATION = EVENTS / "scenarios" / "application-outside-the-steps-api"
STEP_STDERR = "/j-3ANP7YJ2WQ0LC/steps/s-3H8ZKQW0EXAMP/stderr.gz"
DRIVER_STDERR = "/container_1763604005123_0042_01_000001/stderr.gz"
CANCELLED = "step publish-sales-dashboard (s-2PUBLISHDASH0) CANCELLED"


# ---------------------------------------------------------------------------------------------------
# AWS faults, answered in front of moto
# ---------------------------------------------------------------------------------------------------
Answer = Callable[[AWSPreparedRequest, Callable[[], AWSResponse]], AWSResponse]


@dataclass
class Rule:
    """Requests of ``service``/``operation`` ("*": any) matching ``when`` get ``answer`` instead of moto's,
    after ``skip`` of them went through, ``times`` times (None: until cleared)."""

    service: str
    operation: str
    answer: Answer
    times: int | None = None
    skip: int = 0
    when: Callable[[AWSPreparedRequest], bool] | None = None
    active: bool = True
    # The attempt number (botocore's amz-sdk-request header) of each request this rule answered.
    attempts: list[int] = field(default_factory=list)

    def matches(self, service: str, operation: str, request: AWSPreparedRequest) -> bool:
        return (
            self.active
            and self.service == service
            and self.operation in ("*", operation)
            and (self.when is None or self.when(request))
            and (self.times is None or len(self.attempts) < self.times)
        )


class AwsFaults:
    """Stands in front of moto on the cached clients the functions use (``emr_triage.aws.clients``, and the
    Powertools provider that reads the Slack token), answering the requests its rules match."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._installed: set[str] = set()

    def fail(self, service: str, operation: str, answer: Answer, **options: Any) -> Rule:
        self._install(service)
        rule = Rule(service, operation, answer, **options)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        for rule in self.rules:
            rule.active = False

    def _install(self, service: str) -> None:
        if service in self._installed:
            return
        client = _client(service)
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self._send)
        self._installed.add(service)

    def _send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
        service, operation = event_name.split(".")[1:]

        def moto() -> AWSResponse:
            response = botocore_stubber(event_name=event_name, request=request)
            assert response is not None, f"moto does not serve {event_name}"
            return response

        for rule in self.rules:
            if rule.matches(service, operation, request):
                if rule.skip:
                    rule.skip -= 1
                    break
                header = request.headers.get("amz-sdk-request", b"attempt=1")
                text = header.decode() if isinstance(header, bytes) else header
                rule.attempts.append(int(text.split(";")[0].removeprefix("attempt=")))
                return rule.answer(request, moto)
        return moto()


def _client(service: str) -> Any:
    if service == "secrets-manager":
        # What parameters.get_secret builds on first use; installed first so that its client is the one hooked.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS  # type: ignore[attr-defined]

        provider = DEFAULT_PROVIDERS.setdefault("secrets", SecretsProvider())
        return provider.client
    factories: dict[str, Callable[[], Any]] = {
        "dynamodb": clients.dynamodb,
        "emr": clients.emr,
        "s3": clients.s3,
        "sqs": clients.sqs,
    }
    return factories[service]()


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


def _headers(values: Any) -> HTTPHeaders:
    headers = HTTPHeaders()
    for name, value in dict(values).items():
        headers[name] = value
    return headers


def _json(request: AWSPreparedRequest) -> Any:
    body = request.body
    return json.loads(body) if isinstance(body, (str, bytes)) and body else {}


def error(status: int, code: str, message: str = "") -> Answer:
    """The service's error response: JSON for JSON-protocol services (DynamoDB, EMR, SQS, Secrets Manager),
    S3's XML otherwise."""

    def answer(request: AWSPreparedRequest, moto: Callable[[], AWSResponse]) -> AWSResponse:
        text = message or code
        if "X-Amz-Target" in request.headers:
            body = json.dumps({"__type": code, "message": text})
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
        else:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{text}</Message></Error>'
            )
            headers = {"Content-Type": "application/xml", "x-amz-request-id": "fault"}
        return AWSResponse(request.url, status, _headers(headers), _Body(body.encode()))

    return answer


def unreachable(request: AWSPreparedRequest, moto: Callable[[], AWSResponse]) -> AWSResponse:
    """The endpoint cannot be reached (DNS, network, a VPC without an endpoint)."""
    raise EndpointConnectionError(endpoint_url=request.url)


def slowly(seconds_per_read: float, bytes_per_read: int = 256) -> Answer:
    """moto's answer, with a body that trickles in (S3 under load, a cross-region read)."""

    class Trickle(_Body):
        def read(self, size: int | None = -1) -> bytes:
            time.sleep(seconds_per_read)
            wanted = bytes_per_read if size is None or size < 0 else min(size, bytes_per_read)
            return super().read(wanted)

    def answer(request: AWSPreparedRequest, moto: Callable[[], AWSResponse]) -> AWSResponse:
        response = moto()
        return AWSResponse(response.url, response.status_code, _headers(response.headers), Trickle(response.content))

    return answer


def concurrently(change: Callable[[Incident], Incident]) -> Answer:
    """Another invocation changes the incident between this one's read and its versioned write."""

    def answer(request: AWSPreparedRequest, moto: Callable[[], AWSResponse]) -> AWSResponse:
        body = _json(request)  # the versioned write: an UpdateItem of the incident's changed attributes
        incident_id = body["Key"]["pk"]["S"].removeprefix("INCIDENT#")
        other = DynamoIncidentRepository(EMBEDDED_TABLE, client=boto3.client("dynamodb"))
        other.update(incident_id, change)
        return moto()

    return answer


def versioned_write(request: AWSPreparedRequest) -> bool:
    return "#version = :version" in _json(request).get("ConditionExpression", "")


def to_follow_up_queue(request: AWSPreparedRequest) -> bool:
    return EMBEDDED_FOLLOW_UP_QUEUE in _json(request).get("QueueUrl", "")


# ---------------------------------------------------------------------------------------------------
# The world of one case
# ---------------------------------------------------------------------------------------------------
class _Sleeps:
    """Stands for the ``time`` module in a retry loop: records how long it would sleep."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class World:
    stack: LocalStack
    slack: FakeSlack
    aws: AwsFaults
    monkeypatch: pytest.MonkeyPatch
    aws_backoff: _Sleeps
    slack_backoff: _Sleeps
    scenario: Path

    def deliver(self, name: str) -> Invocation:
        report = self.stack.replay(ReplayItem(path=self.scenario / name, event=load_event(self.scenario, name)))
        assert len(report.invocations) == 1, report
        return report.invocations[0]

    def incidents(self) -> list[Incident]:
        return [from_item(item) for item in self.stack.table_items() if item["sk"]["S"] == "INCIDENT"]

    def incident(self) -> Incident:
        (incident,) = self.incidents()
        return incident

    def rule(self) -> Rule:
        return self.aws.rules[0]


Behaviour = Literal["absorbed", "retried", "degraded"]
Check = Callable[[World, Invocation], None]


@dataclass(frozen=True)
class Case:
    id: str
    fault: str
    behaviour: Behaviour
    inject: Callable[[World], None]
    fails_with: str | None = None  # retried: the error the first invocation fails with
    then: Check | None = None  # after the first delivery, before the fault clears
    after: Check | None = None  # after the redelivery
    scenario: Path = DEMO
    given: tuple[str, ...] = ()  # delivered (healthy) before the fault
    event: str = "01-step-failed.json"
    environment: dict[str, str] = field(default_factory=dict)
    token_in_secret: bool = False
    known_limit: str | None = None  # the case fails, for this reason: a limit of the design (README)


# ---------------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------------
def slack_faults(*faults: Fault) -> Callable[[World], None]:
    return lambda w: w.slack.fail_next("chat.postMessage", *faults)


# Slack posts the message, but answers after the client's timeout / never (the connection drops).
POSTED_LATE = Fault(delay=1.5, passthrough=True)
POSTED_UNANSWERED = Fault(drop=True, passthrough=True)
HISTORY_MISSING_SCOPE = Fault(body={"ok": False, "error": "missing_scope", "needed": "channels:history"})
RATE_LIMITED = Fault(status=429, body={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
SERVER_ERROR = Fault(status=500, body={"ok": False, "error": "fatal_error"})


def slack_times_out(fault: Fault) -> Callable[[World], None]:
    """The client's timeout cut to 1 s (10 s in production), and Slack answering after 1.5 s."""

    def inject(w: World) -> None:
        original = SlackWebNotifier._build_client

        def short_timeout(self: SlackWebNotifier, token: str, **options: Any) -> Any:
            self._timeout = 1
            return original(self, token, **options)

        w.monkeypatch.setattr(SlackWebNotifier, "_build_client", short_timeout)
        w.slack.fail_next("chat.postMessage", fault)

    return inject


def without_scope(*scopes: str) -> Callable[[World], None]:
    """The Slack app installed without these bot scopes (they leave Slack's x-oauth-scopes header too)."""
    return lambda w: w.slack.scopes.difference_update(scopes)


def all_of(*injects: Callable[[World], None]) -> Callable[[World], None]:
    def inject(w: World) -> None:
        for one in injects:
            one(w)

    return inject


def aws_fault(service: str, operation: str, answer: Answer, **options: Any) -> Callable[[World], None]:
    def inject(w: World) -> None:
        w.aws.fail(service, operation, answer, **options)

    return inject


# The demo's channel given by its id: Slack's history, where an unanswered post is looked for, takes ids.
BY_ID = {"SLACK_CHANNEL": "C0DATAPLT"}
INCIDENT = "j-3ANP7YJ2WQ0LC.s-3H8ZKQW0EXAMP"
THROTTLED = error(400, "ProvisionedThroughputExceededException", "The level of configured provisioned throughput ...")
EMR_THROTTLED = error(400, "ThrottlingException", "Rate exceeded")
KMS_DENIED = "User: arn:aws:sts::123456789012:assumed-role/emr-triage/fn is not authorized to perform: kms:Decrypt"


def add_cancelled_step(incident: Incident) -> Incident:
    incident.children = [*incident.children, CANCELLED]
    return incident


def touch(incident: Incident) -> Incident:
    incident.timeline = [*incident.timeline, TimelineEntry(at=incident.updated_at, what="a concurrent writer")]
    return incident


# ---------------------------------------------------------------------------------------------------
# What each case shows besides "one incident, one root message"
# ---------------------------------------------------------------------------------------------------
def stored_but_not_alerted(w: World, first: Invocation) -> None:
    # The incident was stored before Slack was tried, and no claim on the post is left behind.
    incident = w.incident()
    assert incident.slack is None and incident.slack_claim_until is None
    assert not w.slack.root_messages()


def diagnosed_but_not_alerted(w: World, first: Invocation) -> None:
    # The logs were read and the verdict stored before Slack was tried: the retry only has to post.
    stored_but_not_alerted(w, first)
    diagnosis = w.incident().diagnosis
    assert diagnosis is not None and diagnosis.category == "yarn_memory_kill"


def posted_on_retry(w: World, again: Invocation) -> None:
    assert again.outcome is not None and (again.outcome["action"], again.outcome["slack"]) == ("duplicate", "posted")


def retry_after_honoured(w: World, first: Invocation) -> None:
    assert w.slack_backoff.slept and all(s >= 1 for s in w.slack_backoff.slept)
    assert len(w.slack.root_posts()) == 2 and len(w.slack.root_messages()) == 1


def rate_limited_three_times(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert len(w.slack.root_posts()) == 3 and len(w.slack_backoff.slept) == 2  # 1 call + 2 retries


def retried_by_slack_sdk_once(w: World, first: Invocation) -> None:
    assert len(w.slack.root_posts()) == 2 and len(w.slack_backoff.slept) == 1


def not_retried_by_slack_sdk(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert len(w.slack.root_posts()) == 1 and not w.slack_backoff.slept


def timed_out_once(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert len(w.slack.root_posts()) == 1  # a read timeout is not one of slack-sdk's retried errors
    # The unanswered post was looked for in the channel (by its metadata), and not found
    assert len(w.slack.calls_to("conversations.history")) == 1
    assert first.error is not None and "the retry looks for it again before posting" in first.error


def looked_again_then_posted_once(w: World, again: Invocation) -> None:
    posted_on_retry(w, again)
    assert len(w.slack.calls_to("conversations.history")) == 2  # the retry looked first
    assert len(w.slack.root_posts()) == 2 and counted(again, "SlackPostsAdopted") == 0


def counted(invocation: Invocation, metric: str) -> float:
    """The total of a metric in what an invocation printed (Powertools' EMF records)."""
    records = [json.loads(line) for line in invocation.output.splitlines() if line.startswith("{")]
    return sum(sum(r[metric]) if isinstance(r[metric], list) else r[metric] for r in records if metric in r)


def _late_post_lands(w: World) -> None:
    # Slack posts it half a second after the client gave up (before Lambda's retry, a minute later)
    deadline = time.monotonic() + 5
    while not w.slack.root_messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(w.slack.root_messages()) == 1 and w.incident().slack is None


def lands_after_the_client_gave_up(w: World, first: Invocation) -> None:
    timed_out_once(w, first)  # looked for at once: Slack had not posted it yet
    _late_post_lands(w)


def lands_not_looked_for(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert not w.slack.calls_to("conversations.history")  # a name: nothing to look in
    _late_post_lands(w)


def history_failed_then_lands(calls: int) -> Check:
    def check(w: World, first: Invocation) -> None:
        # The lookup failed (after slack-sdk's retries): the event fails as a delivery error, not a crash
        diagnosed_but_not_alerted(w, first)
        assert len(w.slack.calls_to("conversations.history")) == calls
        assert first.error is not None and "the retry looks for it again before posting" in first.error
        _late_post_lands(w)

    return check


def history_fails(*faults: Fault) -> Callable[[World], None]:
    return lambda w: w.slack.fail_next("conversations.history", *faults)


def lands_history_refused(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert len(w.slack.calls_to("conversations.history")) == 1  # refused: missing_scope, and today's behaviour
    _late_post_lands(w)


def adopted_on_retry(w: World, again: Invocation) -> None:
    # The retry looked for the unanswered post first, found it by its metadata and recorded it: not posted again
    assert len(w.slack.root_posts()) == 1 and len(w.slack.root_messages()) == 1
    (root,) = w.slack.root_messages()
    assert root.metadata == {"event_type": "emr_triage_incident", "event_payload": {"incident_id": INCIDENT}}
    incident = w.incident()
    assert incident.slack is not None and incident.slack.ts == root.ts and incident.slack_post_unanswered_at is None
    assert counted(again, "SlackPostsAdopted") == 1 and counted(again, "SlackMessagesPosted") == 1
    assert root.edits == 1  # brought up to date once: what the adopted message said was not known


def adopted_at_once(w: World, first: Invocation) -> None:
    # slack-sdk did not send the post again after the dropped connection; it was found and adopted at once
    assert len(w.slack.root_posts()) == 1 and len(w.slack.root_messages()) == 1 and not w.slack_backoff.slept
    (root,) = w.slack.root_messages()
    incident = w.incident()
    assert incident.slack is not None and incident.slack.ts == root.ts
    assert first.outcome is not None and first.outcome["slack"] == "posted"
    assert counted(first, "SlackPostsAdopted") == 1 and root.edits == 0


def names_the_fix(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert first.error is not None and "Bot User OAuth Token" in first.error and TOKEN not in first.error


def absorbed_in(attempts: int) -> Check:
    def check(w: World, first: Invocation) -> None:
        # The failing call was answered with the fault `attempts - 1` times, then the next attempt went through.
        assert w.rule().attempts == list(range(1, attempts))
        assert len(w.aws_backoff.slept) >= attempts - 1
        assert first.outcome is not None and first.outcome["action"] == "incident_opened"
        assert len(w.slack.root_messages()) == 1

    return check


def gave_up_after_5_attempts(w: World, first: Invocation) -> None:
    assert w.rule().attempts == [1, 2, 3, 4, 5]


def created_then_throttled(w: World, first: Invocation) -> None:
    gave_up_after_5_attempts(w, first)
    # The create went through before the throttling: the retry resumes this incident, it does not start over.
    incident = w.incident()
    assert not incident.logs_analysed and incident.slack is None and not w.slack.root_messages()


def table_named(w: World, first: Invocation) -> None:
    assert first.error is not None and "emr-triage-incidents" in first.error and "INCIDENTS_TABLE" in first.error
    assert w.rule().attempts == [1]  # not retried by botocore: a missing table is not a throttle
    assert not w.slack.calls


def no_incident_yet(w: World, first: Invocation) -> None:
    # Nothing was stored, nothing posted: the event itself is the only record, and it is retried.
    assert not w.incidents() and not w.slack.calls


def both_writes_kept(w: World, first: Invocation) -> None:
    incident = w.incident()
    assert CANCELLED in incident.children  # the concurrent writer's change
    assert incident.diagnosis is not None and incident.diagnosis.category == "yarn_memory_kill"  # and ours
    assert w.rule().attempts == [1]


def kept_changing(w: World, first: Invocation) -> None:
    assert first.error is not None and "kept changing" in first.error
    assert len(w.rule().attempts) == 8
    stored_but_not_alerted(w, first)


def read_recorded_unreadable(why: str, source: str) -> Check:
    def check(w: World, first: Invocation) -> None:
        incident = w.incident()
        reads = [r for r in incident.logs_analysed if r.source.endswith(source)]
        assert reads and all(r.partial and r.lines == 0 for r in reads), incident.logs_analysed
        assert any(why in note for r in reads for note in r.notes), reads
        assert len(w.slack.root_messages()) == 1  # the alert went out (or stayed) all the same

    return check


def alerted_with_emrs_reason(w: World, first: Invocation) -> None:
    read_recorded_unreadable("access denied reading", STEP_STDERR)(w, first)
    assert first.outcome is not None and first.outcome["slack"] == "posted"
    (message,) = w.slack.root_messages()
    text = json.dumps(message.blocks)
    assert "*EMR says:* Unknown Error." in text  # the step's FailureDetails
    assert "*Partial read:*" in text and "kms:Decrypt" in text  # and why the logs say nothing


def cut_short_by_the_time_budget(w: World, first: Invocation) -> None:
    incident = w.incident()
    (stderr,) = [r for r in incident.logs_analysed if r.source.endswith(STEP_STDERR)]
    assert stderr.partial and any(n.startswith("time budget reached") for n in stderr.notes), stderr
    assert stderr.bytes_read < 3134  # the object's size: not read to the end
    assert first.outcome is not None and first.outcome["slack"] == "posted"


def log_not_counted_as_read(w: World, first: Invocation) -> None:
    gave_up_after_5_attempts(w, first)
    assert not [r for r in w.incident().logs_analysed if r.source.endswith(DRIVER_STDERR)]


def log_read_on_retry(w: World, again: Invocation) -> None:
    reads = [r for r in w.incident().logs_analysed if r.source.endswith(DRIVER_STDERR)]
    assert len(reads) == 1 and reads[0].lines > 0 and not reads[0].partial


def secrets_unavailable(w: World, first: Invocation) -> None:
    diagnosed_but_not_alerted(w, first)
    assert first.error is not None and "retried" in first.error and "exists" not in first.error
    assert len(w.rule().attempts) > 1  # botocore's retries first


def alert_posted_before_failing(w: World, first: Invocation) -> None:
    assert len(w.slack.root_messages()) == 1
    assert w.rule().attempts == [1]


def one_check_queued(w: World, again: Invocation) -> None:
    sqs = clients.sqs()
    url = sqs.get_queue_url(QueueName=EMBEDDED_FOLLOW_UP_QUEUE)["QueueUrl"]
    depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "1"
    assert again.outcome is not None and again.outcome["slack"] == "unchanged"


# ---------------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------------
CASES = [
    # Slack
    Case("slack-429-once", "Slack answers 429 with Retry-After", "absorbed",
         slack_faults(RATE_LIMITED), then=retry_after_honoured),
    Case("slack-429-persistent", "Slack answers 429 to every attempt", "retried",
         slack_faults(*[RATE_LIMITED] * 3), fails_with="DeliveryError", then=rate_limited_three_times,
         after=posted_on_retry),
    Case("slack-5xx-once", "Slack answers 500 once", "absorbed",
         slack_faults(SERVER_ERROR), then=retried_by_slack_sdk_once),
    Case("slack-5xx-persistent", "Slack answers 500 to every attempt", "retried",
         slack_faults(*[SERVER_ERROR] * 3), fails_with="DeliveryError", then=diagnosed_but_not_alerted,
         after=posted_on_retry),
    Case("slack-502", "Slack answers 502 (slack-sdk retries only 500 and 503)", "retried",
         slack_faults(Fault(status=502, body={"ok": False, "error": "bad_gateway"})), fails_with="DeliveryError",
         then=not_retried_by_slack_sdk, after=posted_on_retry),
    Case("slack-timeout", "Slack does not answer within the client's timeout", "retried",
         slack_times_out(Fault(body={"ok": True}, delay=1.5)), fails_with="DeliveryError", then=timed_out_once,
         after=looked_again_then_posted_once, environment=BY_ID),
    Case("slack-timeout-after-post", "Slack posts the message but answers after the client's timeout", "retried",
         slack_times_out(POSTED_LATE), fails_with="DeliveryError", then=lands_after_the_client_gave_up,
         after=adopted_on_retry, environment=BY_ID),
    Case("slack-connection-dropped-after-post", "Slack posts the message, the connection drops before the answer",
         "absorbed", slack_faults(POSTED_UNANSWERED), then=adopted_at_once, environment=BY_ID),
    Case("slack-timeout-after-post-history-5xx", "Slack posts late, then answers 500 to every history lookup",
         "retried", all_of(slack_times_out(POSTED_LATE), history_fails(*[SERVER_ERROR] * 3)),
         fails_with="DeliveryError", then=history_failed_then_lands(3), after=adopted_on_retry, environment=BY_ID),
    Case("slack-timeout-after-post-history-missing-scope", "Slack posts late, then refuses the history lookup "
         "(missing_scope)", "retried", all_of(slack_times_out(POSTED_LATE), history_fails(HISTORY_MISSING_SCOPE)),
         fails_with="DeliveryError", then=history_failed_then_lands(1), after=adopted_on_retry, environment=BY_ID),
    Case("slack-timeout-after-post-by-name", "Slack posts late, to a channel routed by name", "retried",
         slack_times_out(POSTED_LATE), fails_with="DeliveryError", then=lands_not_looked_for,
         known_limit="conversations.history takes a channel id: a name no answer has resolved cannot be looked "
         "up, so the retry posts a second root message"),
    Case("slack-timeout-after-post-without-history-scope", "Slack posts late, and the app has no history scope",
         "retried", all_of(without_scope("channels:history", "groups:history"), slack_times_out(POSTED_LATE)),
         fails_with="DeliveryError", then=lands_history_refused, environment=BY_ID,
         known_limit="without a history scope nothing can be looked up: the retry posts a second root message"),
    Case("slack-invalid-auth", "Slack rejects the token (invalid_auth)", "retried",
         slack_faults(Fault(body={"ok": False, "error": "invalid_auth"})), fails_with="SlackConfigurationError",
         then=names_the_fix, after=posted_on_retry),
    # DynamoDB
    Case("dynamodb-throttled-briefly", "DynamoDB throttles a write twice", "absorbed",
         aws_fault("dynamodb", "PutItem", THROTTLED, times=2), then=absorbed_in(3)),
    Case("dynamodb-throttled-persistently", "DynamoDB throttles every write after the incident's creation",
         "retried", aws_fault("dynamodb", "UpdateItem", THROTTLED), fails_with="TransientError",
         then=created_then_throttled, after=posted_on_retry),
    Case("dynamodb-5xx-briefly", "DynamoDB answers 500 twice", "absorbed",
         aws_fault("dynamodb", "*", error(500, "InternalServerError"), times=2), then=absorbed_in(3)),
    Case("dynamodb-table-unavailable", "The table is briefly not found (ResourceNotFoundException)", "retried",
         aws_fault("dynamodb", "*", error(400, "ResourceNotFoundException", "Requested resource not found")),
         fails_with="AwsAccessError", then=table_named),
    Case("dynamodb-version-race", "Another invocation writes the incident between our read and write",
         "absorbed", aws_fault("dynamodb", "UpdateItem", concurrently(add_cancelled_step), times=1,
                               when=versioned_write), then=both_writes_kept),
    Case("dynamodb-version-race-persistent", "Other writers win the versioned write 8 times in a row",
         "retried", aws_fault("dynamodb", "UpdateItem", concurrently(touch), when=versioned_write),
         fails_with="TransientError", then=kept_changing, after=posted_on_retry),
    # S3
    Case("s3-log-deleted", "The log object is deleted before it is read (NoSuchKey)", "degraded",
         lambda w: w.stack.held_back.clear(), given=("01-step-failed.json",),
         event="04-driver-container-log-created.json",
         then=read_recorded_unreadable("no longer exists", DRIVER_STDERR)),
    Case("s3-access-denied", "Reading the log is denied (AccessDenied: no kms:Decrypt)", "degraded",
         aws_fault("s3", "GetObject", error(403, "AccessDenied", KMS_DENIED)),
         then=alerted_with_emrs_reason),
    Case("s3-kms-access-denied", "Reading the log is denied (KMS.AccessDeniedException)", "degraded",
         aws_fault("s3", "GetObject", error(403, "KMS.AccessDeniedException", KMS_DENIED)),
         then=alerted_with_emrs_reason),
    Case("s3-slow-read", "The log trickles in slower than the time budget", "degraded",
         aws_fault("s3", "GetObject", slowly(0.25), when=lambda r: r.url.endswith(STEP_STDERR)),
         environment={"LOG_READ_MAX_SECONDS": "2"}, then=cut_short_by_the_time_budget),  # 13 reads: 3.25 s
    Case("s3-throttled-log-event", "S3 throttles the read of a landed log (SlowDown)", "retried",
         aws_fault("s3", "GetObject", error(503, "SlowDown", "Please reduce your request rate.")),
         given=("01-step-failed.json",), event="04-driver-container-log-created.json",
         fails_with="TransientError", then=log_not_counted_as_read, after=log_read_on_retry),
    # Secrets Manager (the Slack token)
    *[
        Case(f"secrets-{name}", f"Secrets Manager {what} when the Slack token is read", "retried",
             aws_fault("secrets-manager", "GetSecretValue", answer), fails_with="TransientError",
             then=secrets_unavailable, after=posted_on_retry, token_in_secret=True)
        for name, what, answer in [
            ("5xx", "answers 500 (InternalServiceError)", error(500, "InternalServiceError")),
            ("throttled", "throttles (ThrottlingException)", error(400, "ThrottlingException", "Rate exceeded")),
            ("unreachable", "cannot be reached", unreachable),
        ]
    ],
    # EMR
    Case("emr-throttled-briefly", "EMR throttles DescribeStep twice", "absorbed",
         aws_fault("emr", "DescribeStep", EMR_THROTTLED, times=2), then=absorbed_in(3)),
    Case("emr-describe-cluster-throttled", "EMR throttles DescribeCluster through every attempt", "retried",
         aws_fault("emr", "DescribeCluster", EMR_THROTTLED), fails_with="TransientError",
         then=no_incident_yet),
    Case("emr-list-steps-throttled", "EMR throttles ListSteps (a driver log no step claims)", "retried",
         aws_fault("emr", "ListSteps", EMR_THROTTLED), scenario=APPLICATION, event="02-driver-log-created.json",
         fails_with="TransientError", then=no_incident_yet),
    # SQS (the follow-up queue)
    Case("sqs-follow-up-refused", "The follow-up queue refuses the log check (AccessDenied)", "retried",
         aws_fault("sqs", "SendMessage", error(400, "AccessDenied", "not authorized to perform sqs:SendMessage"),
                   when=to_follow_up_queue),
         fails_with="TransientError", then=alert_posted_before_failing, after=one_check_queued),
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> tuple[_Sleeps, _Sleeps]:
    aws, slack = _Sleeps(), _Sleeps()
    monkeypatch.setattr(botocore.endpoint, "time", aws)
    monkeypatch.setattr(slack_sdk.http_retry.handler, "time", slack)
    monkeypatch.setattr(slack_sdk.http_retry.builtin_handlers, "time", slack)
    return aws, slack


def _store_token_in_secrets_manager(stack: LocalStack, slack: FakeSlack) -> None:
    secret = boto3.client("secretsmanager").create_secret(Name="emr-triage/slack", SecretString=TOKEN)
    stack.extra_environment.pop("SLACK_BOT_TOKEN", None)
    stack.extra_environment.update(
        {"SLACK_DELIVERY": "secret", "SLACK_TOKEN_SECRET_ID": secret["ARN"], "SLACK_API_URL": slack.url}
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(reason=case.known_limit, strict=True)])
        if case.known_limit
        else pytest.param(case, id=case.id)
        for case in CASES
    ],
)
def test_fault(
    case: Case, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, backoffs: tuple[_Sleeps, _Sleeps]
) -> None:
    environment = {**slack_env(slack), **case.environment}
    with LocalStack(
        ROOT, scenario=load_scenario(case.scenario), folder=case.scenario, extra_environment=environment
    ) as stack:
        world = World(stack, slack, AwsFaults(), monkeypatch, *backoffs, scenario=case.scenario)
        if case.token_in_secret:
            _store_token_in_secrets_manager(stack, slack)
        for name in case.given:
            assert world.deliver(name).error is None
        # Given the fault
        case.inject(world)

        # When the event is delivered
        first = world.deliver(case.event)

        # Then it is taken as designed
        if case.behaviour == "retried":
            assert first.error is not None and first.error.startswith(f"{case.fails_with}:"), (case.fault, first.error)
        else:
            assert first.error is None, (case.fault, first.error)
        if case.then is not None:
            case.then(world, first)

        # When the fault clears and the event is delivered again (Lambda's retry; at-least-once delivery)
        world.aws.clear()
        again = world.deliver(case.event)

        # Then nothing is lost and nothing is duplicated: one incident, one Slack root message, recorded
        assert again.error is None, (case.fault, again.error)
        incident = world.incident()
        (root,) = slack.root_messages()
        assert incident.slack is not None and (incident.slack.channel, incident.slack.ts) == (root.channel, root.ts)
        assert incident.slack_claim_until is None
        if case.after is not None:
            case.after(world, again)
