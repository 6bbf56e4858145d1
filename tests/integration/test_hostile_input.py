"""The hostile-input suite (issue 6, item 1), end to end through each function's ``lambda_handler`` on the
embedded stack (moto), with Slack served by the fake Slack Web API.

Every hostile input gets a defined outcome, never an uncaught exception (a crash loop), an unbounded read
or a silent drop:

1. **Events** (hypothesis-mutated saved events, anything that is not an event, SQS batches of any shape):
   processed, or ``rejected``: counted (``InvalidEvents``, ``DeadLetteredEvents``) and on the dead-letter
   queue with a short reason that names the field, in a message SQS accepts.
2. **Log objects** (empty, corrupt, truncated, binary, non-UTF-8, a 50 MB line, gzip bombs, a read out of
   time) announced by S3 events for a failed step: analysed, flagged partial with the reason when not all
   of it could be read, and the incident's Slack alert is there.
3. **S3 keys** with spaces, unicode and URL-encoding: the same object is analysed once, whichever form the
   event carries.

Each part runs on one embedded stack (a class-scoped fixture: two embedded stacks cannot be up at once).
The pure parsing level of part 1 runs many more examples in tests/unit/test_hostile_events.py.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from tests.fakes.slack_api import FakeSlack, FakeSlackServer
from tests.integration.conftest import EVENTS, ROOT, TOKEN, load_event, slack_env, step_event, write_scenario
from tests.unit.test_hostile_events import (
    JSON_VALUES,
    MAX_REASON_CHARS,
    SAVED,
    Mutation,
    follow_up_bodies,
    huge_text,
    mutated_events,
    names_the_field,
    not_objects,
)

from emr_triage import runtime
from emr_triage.aws import clients
from emr_triage.exceptions import InvalidEventError
from emr_triage.local.replay import EMBEDDED_QUEUE, LocalContext, LocalStack, environment
from emr_triage.local.scenario import load_scenario
from emr_triage.models.analysis import LogRead
from emr_triage.models.events import parse_event
from emr_triage.models.incident import Incident

MIB = 1 << 20
# SQS's MaximumMessageSize when a queue sets none (template.yaml's DeadLetterQueue does not); moto's
# default is 1 MiB, so the embedded queue is given AWS's value. EventBridge events are at most 256 KB.
SQS_MAX_MESSAGE_BYTES = 256 * 1024
EVENTBRIDGE_MAX_EVENT_BYTES = 256 * 1024
# The function names reject_event puts in a dead-letter message.
FUNCTION_NAMES = {
    "EmrEventFunction": "emr-events",
    "LogArrivalFunction": "log-arrivals",
    "FollowUpFunction": "follow-ups",
}
EVENTBRIDGE_FUNCTIONS = ("EmrEventFunction", "LogArrivalFunction")
# Large values, including the characters JSON writes as two ('"', '\\', newline), which double again when
# a rejected event is dead-lettered.
HUGE_TEXT = huge_text(["x", "é", "東京", "🙂", "\u2028", "\x00", "a b\n", '"', "\\"])
FOLLOW_UP_BODIES = follow_up_bodies(HUGE_TEXT, nesting=("[",))
# Few examples: each is a Lambda invocation on moto (the parsing level runs hundreds). No shrinking: through
# the handlers it takes minutes; a failing example is shown as generated.
THROUGH_HANDLERS = settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------------------------------
# Delivering an event to one function, and what came of it
# ---------------------------------------------------------------------------------------------------
@dataclass
class DeadLetter:
    body: dict[str, Any]
    size: int  # what SQS counts against its limit: the body and the message attributes, in bytes


@dataclass
class Delivery:
    """One invocation: its outcomes (one per SQS record), the records SQS would deliver again, the
    exception that would make Lambda retry it, the metrics it emitted and what it dead-lettered."""

    function: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    retried: list[Any] = field(default_factory=list)
    error: str | None = None
    metrics: Counter[str] = field(default_factory=Counter)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def actions(self) -> list[str]:
        return [outcome["action"] for outcome in self.outcomes]

    @property
    def rejections(self) -> list[str]:
        """The reasons of the rejected outcomes (without the dead-letter message id the detail adds)."""
        return [
            o["detail"].split(" (sent to the dead-letter queue")[0] for o in self.outcomes if o["action"] == "rejected"
        ]


def deliver(
    stack: LocalStack, function: str, event: Any, context: Any = None, environment_changes: dict[str, str] | None = None
) -> Delivery:
    """Invoke ``function``'s handler on ``event`` with the environment template.yaml gives it (plus
    ``environment_changes``) and a Lambda context (``context``, else one with the function's timeout)."""
    spec = next(s for s in stack.specs if s.logical_id == function)
    context = context or LocalContext(
        spec.logical_id, spec.memory_mb, spec.timeout_seconds, stack.region, stack.account
    )
    delivery = Delivery(function)
    output = io.StringIO()
    started = time.monotonic()
    with environment({**spec.environment, **stack.extra_environment, **(environment_changes or {})}):
        runtime.reset_settings()
        try:
            with redirect_stdout(output):
                result = stack.handler(spec)(event, context)
        except Exception as exc:
            delivery.error = f"{type(exc).__name__}: {str(exc)[:500]}"
            result = None
    delivery.seconds = time.monotonic() - started
    from emr_triage.observability import metrics

    metrics.clear_metrics()
    if isinstance(result, dict) and "batchItemFailures" in result:
        delivery.outcomes, delivery.retried = result.get("outcomes", []), result["batchItemFailures"]
    elif result is not None:
        delivery.outcomes = [result]
    delivery.metrics = emitted_metrics(output.getvalue())
    delivery.dead_letters = drain_dead_letters(stack)
    return delivery


def emitted_metrics(output: str) -> Counter[str]:
    """The business metrics in the CloudWatch EMF records a function printed, summed by name."""
    counts: Counter[str] = Counter()
    for line in output.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return counts


def drain_dead_letters(stack: LocalStack) -> list[DeadLetter]:
    """Take every message off the embedded dead-letter queue."""
    sqs = clients.sqs(stack.region)
    url = sqs.get_queue_url(QueueName=EMBEDDED_QUEUE)["QueueUrl"]
    taken: list[DeadLetter] = []
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
    ).get("Messages"):
        for message in messages:
            size = len(message["Body"].encode()) + sum(
                len(name) + len(value["DataType"]) + len(value.get("StringValue", "").encode())
                for name, value in message.get("MessageAttributes", {}).items()
            )
            taken.append(DeadLetter(json.loads(message["Body"]), size))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return taken


def assert_defined_outcome(delivery: Delivery, records: int = 1) -> None:
    """The handler returned (never raised); every record was processed or rejected, none left for a
    retry; each rejection was counted and dead-lettered with its short reason, in a message SQS accepts."""
    assert delivery.error is None, f"{delivery.function} raised {delivery.error}"
    assert not delivery.retried, f"poison input left for SQS to deliver again: {delivery.retried}"
    assert len(delivery.outcomes) == records, "a record was dropped without an outcome"
    rejected = delivery.rejections
    for reason in rejected:
        assert len(reason) <= MAX_REASON_CHARS, f"a reason of {len(reason):,} characters"
    assert delivery.metrics["InvalidEvents"] == len(rejected)
    assert delivery.metrics["DeadLetteredEvents"] == len(rejected)
    assert sorted(d.body["reason"] for d in delivery.dead_letters) == sorted(rejected)
    for dead in delivery.dead_letters:
        assert dead.body["function"] == FUNCTION_NAMES[delivery.function]
        assert "event" in dead.body
        assert dead.size <= SQS_MAX_MESSAGE_BYTES, f"a dead-letter message of {dead.size:,} bytes"


def queue_batch(*bodies: Any) -> dict[str, Any]:
    """An SQS batch as Lambda's event source delivers it to FollowUpFunction (a body may be any value)."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:emr-triage-follow-ups",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def function_for(event: dict[str, Any]) -> str:
    return "LogArrivalFunction" if event["source"] == "aws.s3" else "EmrEventFunction"


def with_dead_letter_limit(stack: LocalStack) -> LocalStack:
    sqs = clients.sqs(stack.region)
    url = sqs.get_queue_url(QueueName=EMBEDDED_QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES)})
    return stack


def valid_beyond_eventbridge(event: Any) -> bool:
    """A valid event larger than EventBridge delivers: only a direct invoke can send it (see
    TestEvents.test_a_valid_event_too_large_for_eventbridge_is_stored_or_rejected)."""
    try:
        parse_event(event)
    except InvalidEventError:
        return False
    return len(json.dumps(event, ensure_ascii=False).encode()) > EVENTBRIDGE_MAX_EVENT_BYTES


def saved(name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """A copy of a saved event with ``change`` applied."""
    event = copy.deepcopy(SAVED[name])
    change(event)
    return event


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.fixture(scope="module")
def module_slack() -> Iterator[FakeSlack]:
    with FakeSlackServer(TOKEN) as fake:
        yield fake


# ---------------------------------------------------------------------------------------------------
# 1. Events
# ---------------------------------------------------------------------------------------------------
QUEUE_RECORDS = st.one_of(
    FOLLOW_UP_BODIES.map(lambda body: queue_batch(body)["Records"][0]),
    JSON_VALUES.map(lambda body: queue_batch(body)["Records"][0]),  # a body that is not text
    JSON_VALUES,  # a record that is not a record
)


class TestEvents:
    """Hostile events through each function: processed, or rejected and dead-lettered with a short reason."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, module_slack: FakeSlack) -> Iterator[LocalStack]:
        """The saved events' AWS state (events/scenario.yaml), metrics on, Slack to the fake Web API. One
        stack for the class: a hostile event leaves nothing behind that another could trip on."""
        extra = {**slack_env(module_slack), "POWERTOOLS_METRICS_DISABLED": "false"}
        with LocalStack(ROOT, scenario=load_scenario(EVENTS), folder=EVENTS, extra_environment=extra) as stack:
            yield with_dead_letter_limit(stack)

    @THROUGH_HANDLERS
    @given(mutation=mutated_events(HUGE_TEXT))
    def test_a_mutated_saved_event_is_processed_or_dead_lettered_naming_the_field(
        self, stack: LocalStack, mutation: Mutation
    ) -> None:
        """Given a saved event with one field dropped, added, of the wrong type, 1 MiB long, or an unknown
        event type,
        When it reaches the function that handles its kind,
        Then the function returns: the event is processed, or rejected, counted and dead-lettered with a
        short reason naming the changed field."""
        assume(not valid_beyond_eventbridge(mutation.event))
        delivery = deliver(stack, function_for(SAVED[mutation.base]), mutation.event)

        assert_defined_outcome(delivery)
        for reason in delivery.rejections:
            assert names_the_field(reason, mutation), reason

    @THROUGH_HANDLERS
    @given(raw=not_objects(HUGE_TEXT), function=st.sampled_from([*EVENTBRIDGE_FUNCTIONS, "FollowUpFunction"]))
    def test_anything_that_is_not_an_event_is_dead_lettered_by_every_function(
        self, stack: LocalStack, raw: object, function: str
    ) -> None:
        """Given a JSON value that is not an object (a list, 1 MiB of text, null...), When any function is
        invoked with it, Then it is rejected as not an event (the follow-up function: not an SQS batch)."""
        delivery = deliver(stack, function, raw)

        assert_defined_outcome(delivery)
        (reason,) = delivery.rejections
        assert reason.startswith(("event is not a JSON object", "not an SQS batch"))

    @THROUGH_HANDLERS
    @given(records=st.lists(QUEUE_RECORDS, min_size=1, max_size=4))
    def test_a_follow_up_batch_of_any_shape_has_one_outcome_per_record_and_no_retry(
        self, stack: LocalStack, records: list[Any]
    ) -> None:
        """Given an SQS batch whose records carry hostile bodies (not JSON, nested 200,000 deep, a number of
        20,000 digits, a check with a field dropped, added or of the wrong type) or are not records at all,
        When the follow-up function receives it,
        Then each record has an outcome (processed, or rejected and dead-lettered) and none is left for SQS
        to deliver again: five redeliveries of poison would only delay its dead-lettering."""
        delivery = deliver(stack, "FollowUpFunction", {"Records": records})

        assert_defined_outcome(delivery, records=len(records))

    @pytest.mark.parametrize("name", sorted(SAVED))
    def test_a_saved_event_sent_to_the_other_function_is_dead_lettered_as_misrouted(
        self, stack: LocalStack, name: str
    ) -> None:
        # Given any saved event, When it reaches the EventBridge function that does not handle its kind (a
        # rule pointing at the wrong function)
        other = next(f for f in EVENTBRIDGE_FUNCTIONS if f != function_for(SAVED[name]))
        delivery = deliver(stack, other, SAVED[name])
        # Then it is rejected, saying to check the rule, counted and dead-lettered
        assert_defined_outcome(delivery)
        assert "check the EventBridge rule" in delivery.rejections[0]

    @pytest.mark.parametrize(
        ("function", "event", "expected"),
        [
            pytest.param(
                "EmrEventFunction",
                saved("step-failed.json", lambda e: e.update({"detail-type": "x" * MIB})),
                "unknown event type 'xxx",
                id="1 MiB detail-type",
            ),
            pytest.param(
                "EmrEventFunction",
                saved("step-failed.json", lambda e: e.update(resources=["arn"] * 20 + [1] * 50_000)),
                "and 49,980 more problems",
                id="50,000 wrong resources",
            ),
            pytest.param(
                "EmrEventFunction",
                saved("instance-group-suspended.json", lambda e: e.update(id="i" * 200_000)),
                "id: String should have at most 128 characters",
                id="200,000-character event id",
            ),
            pytest.param(
                "EmrEventFunction",
                saved("step-failed.json", lambda e: e.update(account="1" * MIB)),
                "account: String should match pattern",
                id="1 MiB account",
            ),
            pytest.param(
                "EmrEventFunction",
                saved(
                    "cluster-terminated-with-errors.json", lambda e: e["detail"].update(stateChangeReason="[" * 100_000)
                ),
                "detail.stateChangeReason: Value error, stateChangeReason is not JSON we can read (nested too deeply)",
                id="stateChangeReason nested 100,000 deep",
            ),
            pytest.param(
                "LogArrivalFunction",
                saved("s3-step-log-created.json", lambda e: e["detail"]["object"].update(key=nested(400))),
                "detail.object.key: Input should be a valid string",
                id="S3 key a structure 800 levels deep",
            ),
            pytest.param(
                "FollowUpFunction",
                queue_batch("[" * 100_000),
                "follow-up message body is not JSON we can read (nested too deeply)",
                id="follow-up body nested 100,000 deep",
            ),
            pytest.param(
                "FollowUpFunction",
                queue_batch('{"incident_id": "abc", "check": ' + "9" * 5000 + ', "checks": 1}'),
                "Exceeds the limit (4300 digits)",
                id="follow-up body with a 5,000-digit number",
            ),
            pytest.param(
                "FollowUpFunction",
                queue_batch(json.dumps({"incident_id": "abc", "check": 1, "checks": 1, "k" * 200_000: 1})),
                "Extra inputs are not permitted",
                id="follow-up body with a 200,000-character key",
            ),
        ],
    )
    def test_a_deep_huge_or_numerous_value_is_dead_lettered_with_a_short_reason(
        self, stack: LocalStack, function: str, event: dict[str, Any], expected: str
    ) -> None:
        # Given an event with a value nested deeper than Python decodes, a number it will not convert, a
        # megabyte where a few bytes belong, or 50,000 wrong items. (Before: the parsing raised RecursionError
        # or ValueError, failing a follow-up's whole batch; the reason was as large as the value, so its
        # dead-letter message was refused; or an event id too long for its DynamoDB key raised at PutItem.)
        # When it is delivered
        delivery = deliver(stack, function, event)
        # Then it is rejected with a short reason saying why, counted and dead-lettered
        assert_defined_outcome(delivery, records=len(event.get("Records", [None])))
        assert expected in delivery.rejections[0]

    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            pytest.param(
                saved("step-failed.json", lambda e: e.update(time="0001-01-01T00:00:00Z")), "time:", id="year 1"
            ),
            pytest.param(
                saved("step-failed.json", lambda e: e.update(time="9999-12-31T23:59:59Z")), "time:", id="year 9999"
            ),
            pytest.param(
                saved("serverless-job-run-failed.json", lambda e: e["detail"].update(createdAt="9999-12-31T23:59:59Z")),
                "detail.createdAt:",
                id="job run created in year 9999",
            ),
        ],
    )
    def test_an_event_time_outside_2000_to_2100_is_dead_lettered_naming_the_field(
        self, stack: LocalStack, event: dict[str, Any], expected: str
    ) -> None:
        # Given a failure event stamped in year 1 or 9999 (before: adding the incident's time-to-live or a
        # fold window overflowed datetime, the handler raised, Lambda retried it and then dead-lettered it
        # without a reason)
        # When it is delivered
        delivery = deliver(stack, "EmrEventFunction", event)
        # Then it is rejected as malformed with a one-line reason naming the field and the range, and
        # dead-lettered, not retried
        assert_defined_outcome(delivery)
        (reason,) = delivery.rejections
        assert expected in reason and "2000" in reason and "2100" in reason and "\n" not in reason, reason

    def test_a_real_failure_with_a_multi_megabyte_step_name_is_alerted_with_the_name_cut(
        self, stack: LocalStack, module_slack: FakeSlack
    ) -> None:
        # Given a failed step whose name is 3 MiB, in DescribeStep's answer and in the event, and whose
        # event message is 3 MiB (before: the incident's DynamoDB item was over 400 KB and the write failed)
        cluster_id = SAVED["step-failed.json"]["detail"]["clusterId"]
        name = "nnnn " * (3 * MIB // 5)
        step = {"Name": name, "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit"]}}
        (step_id,) = clients.emr(stack.region).add_job_flow_steps(JobFlowId=cluster_id, Steps=[step])["StepIds"]

        def absurd(event: dict[str, Any]) -> None:
            event["detail"].update(stepId=step_id, name=name, message="m" * 3 * MIB)

        event = saved("step-failed.json", absurd)
        # When it is delivered
        delivery = deliver(stack, "EmrEventFunction", event)
        # Then the incident is opened and alerted, with its step name cut to the documented bound and marked
        assert_defined_outcome(delivery)
        assert delivery.actions == ["incident_opened"], delivery.outcomes
        incident = stack.incident(delivery.outcomes[0]["incident_id"])
        assert incident is not None and incident.step_name is not None
        assert incident.step_name.startswith("nnnn") and len(incident.step_name) < 300
        assert "characters)" in incident.step_name
        assert "nnnn" in alert_of(incident, module_slack)

    def test_a_valid_event_with_a_deeply_nested_extra_field_is_processed(self, stack: LocalStack) -> None:
        # Given the saved failed-step event with an extra field 800 levels deep (AWS adds fields over time)
        event = saved("step-failed.json", lambda e: e["detail"].update(newFieldFromAws=nested(400)))
        # When it is delivered
        delivery = deliver(stack, "EmrEventFunction", event)
        # Then it is processed like the saved event
        assert_defined_outcome(delivery)
        assert delivery.actions[0] in ("incident_opened", "duplicate")

    @pytest.mark.parametrize(
        ("function", "event"),
        [
            pytest.param(
                "EmrEventFunction",
                saved("step-failed.json", lambda e: e["detail"].update(clusterId='"' * 120_000)),
                id="EventBridge event of 240 KB, a clusterId of quotes",
            ),
            pytest.param(
                "FollowUpFunction",
                queue_batch(json.dumps(json.dumps([{"incident_id": "x"}] * 7_000))),
                id="SQS body of 180 KB, a check list encoded twice",
            ),
        ],
    )
    def test_an_event_full_of_characters_json_escapes_is_dead_lettered_within_the_sqs_limit(
        self, stack: LocalStack, function: str, event: dict[str, Any]
    ) -> None:
        # Given a malformed event that the service delivering it accepted (EventBridge: 256 KB an event;
        # SQS: 256 KiB a body), made mostly of characters JSON escapes
        assert len(json.dumps(event).encode()) < EVENTBRIDGE_MAX_EVENT_BYTES * 1.1
        # When it is delivered
        delivery = deliver(stack, function, event)
        # Then it is rejected and dead-lettered in a message SQS accepts
        assert_defined_outcome(delivery)

    def test_a_valid_event_too_large_for_eventbridge_is_stored_or_rejected(self, stack: LocalStack) -> None:
        # Given an instance group event with a 1 MiB message, invoked directly (EventBridge stops at 256 KB)
        event = saved("instance-group-suspended.json", lambda e: e["detail"].update(message="x" * MIB))
        # When it is delivered
        delivery = deliver(stack, "EmrEventFunction", event)
        # Then it is processed (trimmed to fit) or rejected, not raised
        assert_defined_outcome(delivery)


# ---------------------------------------------------------------------------------------------------
# 2. Log objects
# ---------------------------------------------------------------------------------------------------
LOG_BUCKET = "hostile-logs"
LOG_PREFIX = "emr/"
READ_BUDGET = 64 * MIB  # LOG_READ_MAX_BYTES of this stack (the template's is 256 MiB)
ERROR_LINE = 'Exception in thread "main" org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-raw/{}'
NOISE_LINE = (
    "26/11/20 02:00:00 INFO BlockManagerInfo: Added broadcast_7_piece0 in memory on "
    "ip-10-0-1-23.ec2.internal:41234 (size: 5.2 KiB, free: 2.1 GiB)\n"
)


def lines(*texts: str) -> bytes:
    return "".join(f"{text}\n" for text in texts).encode()


def healthy_then_error(where: str = "orders") -> bytes:
    noise = [f"26/11/20 02:00:{i % 60:02d} INFO DAGScheduler: Submitting task {i}" for i in range(2000)]
    return lines(*noise, ERROR_LINE.format(where), *noise)


@cache
def gzip_bomb(content: bytes, members: int) -> bytes:
    """``members`` copies of one gzip member inflating to 64 MiB of ``content`` repeated (concatenated
    members are valid gzip): 80 of them are 5 GiB of text."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = compressor.compress(content * (64 * MIB // len(content))) + compressor.flush()
    return member * members


def corrupt_in_the_middle() -> bytes:
    data = bytearray(gzip.compress(lines(ERROR_LINE.format("orders"), *[f"INFO line {i} " * 8 for i in range(40_000)])))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    return bytes(data)


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 3 // 4]


@dataclass(frozen=True)
class LogCase:
    """A hostile log object, and what reading it must say."""

    id: str
    content: Callable[[], bytes]
    partial: bool
    note: str | None  # in the notes of the incident's read of the object (None: no note)
    category: str | None = None  # the verdict from what could be read (None: the event's own)
    headline: str | None = None  # in the verdict's headline


LOG_CASES = [
    LogCase("empty object", lambda: b"", False, "empty log"),
    LogCase("empty gzip", lambda: gzip.compress(b""), False, "empty log"),
    LogCase("corrupt gzip in the middle", corrupt_in_the_middle, True, "corrupt gzip data", "input_not_found"),
    LogCase(
        "truncated gzip",
        lambda: truncated(gzip.compress(healthy_then_error())),
        True,
        "gzip stream ends early",
        "input_not_found",
    ),
    LogCase("binary bytes", lambda: bytes(range(256)) * 64, True, "binary data, not a text log"),
    # Undecodable bytes become U+FFFD in the lines the verdict quotes; the engine decodes only those, so
    # the read does not note them (tests/unit/test_reader.py: the line reader does).
    LogCase(
        "Latin-1 text",
        lambda: lines(ERROR_LINE.format("café_ventes")).decode().encode("latin-1"),
        False,
        None,
        "input_not_found",
        "s3://acme-raw/caf\ufffd_ventes",
    ),
    LogCase(
        "invalid UTF-8 sequences",
        lambda: b"\xc3\x28 \xe2\x82 \xf0\x9f\x98 \xff\xfe\n" + healthy_then_error(),
        False,
        None,
        "input_not_found",
    ),
    LogCase(
        "a single 50 MB line, then the error",
        lambda: gzip.compress(b"x" * (50 * MIB) + b"\n" + lines(ERROR_LINE.format("orders")), 1),
        False,
        "line(s) over 1,048,576 bytes were read in pieces",
        "input_not_found",
    ),
    LogCase(
        "gzip bomb of NUL bytes, 5 GiB from 5 MB",
        lambda: gzip_bomb(b"\x00", 80),
        True,
        f"read budget of {READ_BUDGET:,} bytes reached",
    ),
    LogCase(
        "5 GiB of noise from 20 MB",
        lambda: gzip_bomb(NOISE_LINE.encode(), 80),
        True,
        f"read budget of {READ_BUDGET:,} bytes reached",
    ),
]
TIME_BUDGET_CASE = len(LOG_CASES)  # the cluster of the time-budget test


def cluster_of(case: int) -> str:
    return f"j-HOSTILE{case:04d}"


def channel_of(case: int) -> str:
    return f"#hostile-{case}"


def object_created(bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """The S3 Object Created event (through EventBridge) of an object just put."""
    event = load_event(EVENTS, "s3-step-log-created.json")
    event["id"] = str(uuid.uuid4())
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    etag = str(clients.s3().head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, size=len(body), etag=etag)
    return event


def failed_step_with_an_alert(stack: LocalStack, cluster: str, step: str = "s-HOSTILESTEP0") -> Incident:
    """Deliver the step's FAILED event (its logs are not in S3 yet): the incident is opened and alerted."""
    delivery = deliver(stack, "EmrEventFunction", step_event(cluster, step, event_id=str(uuid.uuid4())))
    assert_defined_outcome(delivery)
    assert delivery.actions == ["incident_opened"], delivery.outcomes
    incident = stack.incident(f"{cluster}.{step}")
    assert incident is not None and incident.slack is not None
    return incident


def log_lands(
    stack: LocalStack, bucket: str, key: str, body: bytes, context: Any = None, **environment_changes: str
) -> Delivery:
    """Put a log object in S3 and deliver its Object Created event to LogArrivalFunction."""
    clients.s3().put_object(Bucket=bucket, Key=key, Body=body)
    return deliver(stack, "LogArrivalFunction", object_created(bucket, key, body), context, environment_changes)


def read_of(incident: Incident, bucket: str, key: str) -> LogRead:
    """The incident's record of reading one object (exactly one: a second read would be a duplicate)."""
    (read,) = [r for r in incident.logs_analysed if r.source == f"s3://{bucket}/{key}"]
    return read


def alert_of(incident: Incident, slack: FakeSlack) -> str:
    """The incident's root message in Slack, as JSON: it must exist (an incident is never silently dropped)."""
    assert incident.slack is not None, f"{incident.incident_id} has no Slack message"
    message = slack.messages.get((incident.slack.channel, incident.slack.ts))
    assert message is not None, f"{incident.incident_id}'s Slack message is not in the channel"
    return json.dumps(message.blocks)


class TestLogObjects:
    """Hostile log objects landing for a failed step: read as far as possible, flagged partial with the
    reason, within the byte and time budgets, and the incident stays alerted."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, module_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
        """A cluster per log case, each with a failed step and its own Slack channel (so no alert waits
        for or folds into another), a 64 MiB read budget, metrics on."""
        clusters = [
            {
                "id": cluster_of(case),
                "name": f"hostile-{case}",
                "tags": {"emr-triage:slack-channel": channel_of(case)},
                "steps": [{"id": "s-HOSTILESTEP0", "name": "load"}],
            }
            for case in range(TIME_BUDGET_CASE + 1)
        ]
        for case in range(len(clusters)):
            module_slack.channels[channel_of(case)] = f"C0HOSTILE{case:02d}"
        scenario = {
            "description": "hostile log objects",
            "log_uri": f"s3://{LOG_BUCKET}/{LOG_PREFIX}",
            "slack_channel": "#emr-alerts",
            "clusters": clusters,
        }
        folder = write_scenario(tmp_path_factory.mktemp("hostile-logs"), scenario, {}, {})
        extra = {
            **slack_env(module_slack),
            "POWERTOOLS_METRICS_DISABLED": "false",
            "LOG_READ_MAX_BYTES": str(READ_BUDGET),
            # Slack's pace per channel is the load suite's subject; here it would add a second per case.
            "SLACK_POST_INTERVAL_SECONDS": "0",
        }
        with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=extra) as stack:
            yield with_dead_letter_limit(stack)

    @pytest.mark.parametrize("case", LOG_CASES, ids=[case.id for case in LOG_CASES])
    def test_a_hostile_log_object_is_read_as_far_as_it_can_be_and_the_alert_stays(
        self, stack: LocalStack, module_slack: FakeSlack, case: LogCase
    ) -> None:
        # Given a failed step, alerted before its logs landed
        cluster = cluster_of(LOG_CASES.index(case))
        failed_step_with_an_alert(stack, cluster)
        key = f"{LOG_PREFIX}{cluster}/steps/s-HOSTILESTEP0/stderr.gz"
        body = case.content()

        # When a hostile object lands as its stderr, and its S3 event is delivered
        delivery = log_lands(stack, LOG_BUCKET, key, body)

        # Then the function returns, having merged the object into the incident
        assert_defined_outcome(delivery)
        assert delivery.actions == ["incident_updated"], delivery.outcomes
        incident = stack.incident(f"{cluster}.s-HOSTILESTEP0")
        assert incident is not None
        # And the read says how far it got: partial with its reason, or complete with what was odd in it
        read = read_of(incident, LOG_BUCKET, key)
        assert read.partial is case.partial, read
        if case.note is None:
            assert not read.notes, read.notes
        else:
            assert any(case.note in note for note in read.notes), read.notes
        assert delivery.metrics["PartialLogReads"] == int(case.partial)
        # And no more than the byte budget was inflated, from no more of the object than that took
        assert read.bytes_scanned <= READ_BUDGET
        if case.note and "budget" in case.note:
            assert read.bytes_scanned == READ_BUDGET and read.bytes_read < len(body) // 2
        # And what could be read is diagnosed, and the alert, still there, says when the read was partial
        if case.category is not None:
            assert incident.diagnosis is not None and incident.diagnosis.category == case.category
            assert case.headline is None or case.headline in (incident.diagnosis.headline or "")
        alert = alert_of(incident, module_slack)
        assert ("Partial read" in alert) is case.partial

    def test_a_log_that_cannot_be_read_in_time_is_cut_at_the_time_budget_and_the_alert_goes_out(
        self, stack: LocalStack, module_slack: FakeSlack
    ) -> None:
        # Given a failed step, alerted, whose stderr inflates to 16 GiB (from 16 MB), with no byte budget
        cluster = cluster_of(TIME_BUDGET_CASE)
        failed_step_with_an_alert(stack, cluster)
        key = f"{LOG_PREFIX}{cluster}/steps/s-HOSTILESTEP0/stderr.gz"
        # And an invocation with 35 s left: 30 s are kept for storing and posting, so it reads for the
        # minimum of 5 s
        spec = next(s for s in stack.specs if s.logical_id == "LogArrivalFunction")
        context = LocalContext(spec.logical_id, spec.memory_mb, 35, stack.region, stack.account)

        # When the object's S3 event is delivered
        body = gzip_bomb(b"\x00", 256)
        delivery = log_lands(stack, LOG_BUCKET, key, body, context, LOG_READ_MAX_BYTES=str(1 << 40))

        # Then the function returns in time, the read cut at the time budget and flagged partial
        assert_defined_outcome(delivery)
        assert delivery.seconds < 30, f"took {delivery.seconds:.1f} s of the 35 s left"
        incident = stack.incident(f"{cluster}.s-HOSTILESTEP0")
        assert incident is not None
        read = read_of(incident, LOG_BUCKET, key)
        assert read.partial and any(note.startswith("time budget reached") for note in read.notes), read.notes
        assert 0 < read.bytes_scanned < 16 * 1024 * MIB
        # And the alert says so
        assert "time budget reached" in alert_of(incident, module_slack)


# ---------------------------------------------------------------------------------------------------
# 3. S3 keys with spaces, unicode and URL-encoding
# ---------------------------------------------------------------------------------------------------
KEYS_BUCKET = "hostile-keys"
KEYS_PREFIX = "emr logs/café/"  # a LogUri with a space and an 'é'
KEYS_CLUSTER = "j-KEYS00000001"


def url_encoded(key: str) -> str:
    """The key as classic S3 event notifications carry it: URL-encoded, a space as '+', '/' kept."""
    return quote_plus(key, safe="/")


class TestS3Keys:
    """An S3 event's key is used as sent; if that object does not exist and its URL-decoded form differs,
    the decoded key is used (EventBridge's key encoding is undocumented; classic notifications encode)."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, module_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
        """A cluster whose LogUri has a space and an 'é', with a failed step per test."""
        steps = ["s-RAWFIRST0000", "s-ENCODEDFIRST0", "s-PLUSINKEY0000"]
        scenario = {
            "description": "log keys with a space and unicode",
            "log_uri": f"s3://{KEYS_BUCKET}/{KEYS_PREFIX}",
            "slack_channel": "#emr-alerts",
            "clusters": [{"id": KEYS_CLUSTER, "name": "keys", "steps": [{"id": s, "name": s} for s in steps]}],
        }
        folder = write_scenario(tmp_path_factory.mktemp("hostile-keys"), scenario, {}, {})
        extra = {**slack_env(module_slack), "SLACK_POST_INTERVAL_SECONDS": "0"}
        with LocalStack(ROOT, scenario=load_scenario(folder), folder=folder, extra_environment=extra) as stack:
            yield stack

    @pytest.mark.parametrize(
        ("step", "forms"),
        [("s-RAWFIRST0000", ["raw", "URL-encoded"]), ("s-ENCODEDFIRST0", ["URL-encoded", "raw"])],
        ids=["raw key first", "URL-encoded key first"],
    )
    def test_a_key_with_a_space_and_unicode_is_analysed_once_whichever_form_the_event_carries(
        self, stack: LocalStack, module_slack: FakeSlack, step: str, forms: list[str]
    ) -> None:
        # Given a failed step, alerted, whose stderr then lands under "emr logs/café/"
        failed_step_with_an_alert(stack, KEYS_CLUSTER, step)
        key = f"{KEYS_PREFIX}{KEYS_CLUSTER}/steps/{step}/stderr.gz"
        body = gzip.compress(lines(ERROR_LINE.format("ventes")))
        clients.s3().put_object(Bucket=KEYS_BUCKET, Key=key, Body=body)
        keys = {"raw": key, "URL-encoded": url_encoded(key)}
        assert keys["URL-encoded"].startswith("emr+logs/caf%C3%A9/")

        # When its S3 event is delivered with the key in one form, then again with the key in the other
        deliveries = []
        for form in forms:
            event = object_created(KEYS_BUCKET, key, body)
            event["detail"]["object"]["key"] = keys[form]
            deliveries.append(deliver(stack, "LogArrivalFunction", event))

        # Then the first analyses the object into the incident, and the second finds it already analysed
        for delivery in deliveries:
            assert_defined_outcome(delivery)
        assert [d.actions[0] for d in deliveries] == ["incident_updated", "duplicate"], [d.outcomes for d in deliveries]
        incident = stack.incident(f"{KEYS_CLUSTER}.{step}")
        assert incident is not None and incident.diagnosis is not None
        assert [r.source for r in incident.logs_analysed] == [f"s3://{KEYS_BUCKET}/{key}"]
        assert incident.diagnosis.category == "input_not_found"
        alert_of(incident, module_slack)

    def test_a_key_with_a_literal_plus_is_used_as_sent(self, stack: LocalStack, module_slack: FakeSlack) -> None:
        # Given a failed step whose log object's name has a literal '+' (decoded, it would be a space)
        failed_step_with_an_alert(stack, KEYS_CLUSTER, "s-PLUSINKEY0000")
        key = f"{KEYS_PREFIX}{KEYS_CLUSTER}/steps/s-PLUSINKEY0000/stderr+retry.gz"
        body = gzip.compress(lines(ERROR_LINE.format("plus")))
        # When it lands and its S3 event carries the key as it is
        delivery = log_lands(stack, KEYS_BUCKET, key, body)
        # Then that object is analysed (not "stderr retry.gz", which does not exist)
        assert_defined_outcome(delivery)
        assert delivery.actions == ["incident_updated"], delivery.outcomes
        incident = stack.incident(f"{KEYS_CLUSTER}.s-PLUSINKEY0000")
        assert incident is not None and read_of(incident, KEYS_BUCKET, key).lines > 0
        alert_of(incident, module_slack)
