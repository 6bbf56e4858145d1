"""EventBridge events emr-triage handles, as pydantic models parsed with the Powertools parser.

Shapes follow AWS's published samples (see ``../shared/reference/aws-slack-sam-facts.md`` §1, §2).
Unknown extra fields are tolerated (AWS adds fields over time); what we rely on is validated.
We key on ``state``, ids and reason *codes*, never on the human ``message`` text, as the EMR guide advises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emr_triage.exceptions import InvalidEventError, UnknownEventTypeError
from emr_triage.models.validation import EventTime, Message, Name, describe_validation_error, quoted, shorten

ClusterId = Annotated[str, Field(pattern=r"^j-[A-Z0-9]{1,64}$")]
StepId = Annotated[str, Field(pattern=r"^s-[A-Z0-9]{1,64}$")]
# States stay open strings (AWS may add one); the domain decides what each known state means.
State = Annotated[str, Field(pattern=r"^[A-Z][A-Z_]{1,40}$")]
# Envelope fields EventBridge fills in itself (an event id is a UUID). Bounded so that an event that did not
# come through EventBridge (a direct invoke, a replayed file) cannot put a megabyte where a DynamoDB key
# (1 KiB) or item (400 KB) expects a few bytes: such an event is rejected, naming the field.
EventId = Annotated[str, Field(min_length=1, max_length=128)]
AccountId = Annotated[str, Field(pattern=r"^\d{12}$")]
Region = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]


class _Detail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StepStatusDetail(_Detail):
    """``detail`` of ``EMR Step Status Change``. It has no FailureDetails: DescribeStep has them."""

    cluster_id: ClusterId = Field(alias="clusterId")
    step_id: StepId = Field(alias="stepId")
    name: Name = ""
    state: State
    severity: str | None = None
    action_on_failure: str | None = Field(None, alias="actionOnFailure")
    message: Message | None = None


class ClusterStateChangeReason(_Detail):
    """The reason inside ``stateChangeReason``; ``code`` is empty on STARTING, ``message`` may be absent."""

    code: str = ""
    message: Message | None = None


class ClusterStateDetail(_Detail):
    """``detail`` of ``EMR Cluster State Change``."""

    cluster_id: ClusterId = Field(alias="clusterId")
    name: Name = ""
    state: State
    severity: str | None = None
    state_change_reason: ClusterStateChangeReason = Field(
        default_factory=ClusterStateChangeReason, alias="stateChangeReason"
    )
    message: Message | None = None

    @field_validator("state_change_reason", mode="before")
    @classmethod
    def _decode_json_string(cls, value: Any) -> Any:
        # EMR sends this field as a JSON-encoded *string*; accept an object too.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"stateChangeReason is not valid JSON ({exc.msg})") from exc
            except (RecursionError, ValueError) as exc:
                raise ValueError(f"stateChangeReason is not JSON we can read ({_undecodable(exc)})") from exc
        return value


class JobRunStateDetail(_Detail):
    """``detail`` of ``EMR Serverless Job Run State Change``. It has no stateDetails: GetJobRun has them."""

    job_run_id: str = Field(alias="jobRunId", pattern=r"^[0-9a-z]{8,64}$")
    application_id: str = Field(alias="applicationId", pattern=r"^[0-9a-z]{8,64}$")
    arn: str | None = None
    release_label: str | None = Field(None, alias="releaseLabel")
    state: State
    previous_state: str | None = Field(None, alias="previousState")
    job_run_name: Name | None = Field(None, alias="jobRunName")
    created_by: str | None = Field(None, alias="createdBy")
    created_at: EventTime | None = Field(None, alias="createdAt")
    updated_at: EventTime | None = Field(None, alias="updatedAt")


DRIVER_ATTEMPT = "EMR Job Run New Driver Attempt"
EksId = Annotated[str, Field(pattern=r"^[0-9a-z]{1,64}$")]
# arn:aws:emr-containers:<region>:<account>:/virtualclusters/<vc>/jobruns/<job run> (the API's JobArn pattern).
_JOB_RUN_ARN = re.compile(
    r"^arn:aws[a-zA-Z0-9-]*:emr-containers:[^:]+:\d{12}:/virtualclusters/([0-9a-z]+)/jobruns/([0-9a-z]+)$"
)


class EksJobRunDetail(_Detail):
    """``detail`` of EMR on EKS's ``EMR Job Run State Change`` / ``EmrContainers Job Run State Change``
    (and of ``EMR Job Run New Driver Attempt``, which adds the new driver's pod and attempt count). AWS
    publishes no sample payload (README facts): the field names are the API's JobRun members, and only the
    ids are relied on (from ``id``/``virtualClusterId``, else the job run's ARN in ``arn`` or the envelope's
    ``resources``); DescribeJobRun has the authoritative state, failureReason and stateDetails."""

    job_run_id: EksId | None = Field(None, alias="id")
    virtual_cluster_id: EksId | None = Field(None, alias="virtualClusterId")
    arn: str | None = Field(None, max_length=300)
    name: Name | None = None
    state: State | None = None
    failure_reason: str | None = Field(None, alias="failureReason", max_length=40)
    state_details: Message | None = Field(None, alias="stateDetails")
    release_label: str | None = Field(None, alias="releaseLabel", max_length=100)
    # EMR Job Run New Driver Attempt (retry policies, EMR 6.9.0+).
    new_driver_pod_name: str | None = Field(None, alias="newDriverPodName", max_length=253)
    previous_driver_failure_message: Message | None = Field(None, alias="previousDriverFailureMessage")
    current_attempt_count: int | None = Field(None, alias="currentAttemptCount", ge=0, le=2_147_483_647)


class _Envelope(BaseModel):
    """EventBridge's envelope, the fields every event has: Powertools' ``EventBridgeModel``, with bounds.

    Our own rather than Powertools': importing its event models builds every event source's (API Gateway,
    SQS, S3, ...), a tenth of a function's cold start.
    """

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: EventId
    source: str
    account: AccountId
    time: EventTime
    region: Region
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any
    replay_name: str | None = Field(None, alias="replay-name")


class EmrStepStatusChange(_Envelope):
    detail: StepStatusDetail


class EmrClusterStateChange(_Envelope):
    detail: ClusterStateDetail


class EmrServerlessJobRunStateChange(_Envelope):
    detail: JobRunStateDetail


class EksJobRunEvent(_Envelope):
    """An EMR on EKS job run event: a state change, or a new driver attempt (``detail-type`` tells which)."""

    detail: EksJobRunDetail

    @model_validator(mode="after")
    def _ids(self) -> EksJobRunEvent:
        detail = self.detail
        for arn in (detail.arn, *self.resources):
            match = _JOB_RUN_ARN.match(arn or "")
            if match:
                detail.virtual_cluster_id = detail.virtual_cluster_id or match[1]
                detail.job_run_id = detail.job_run_id or match[2]
        if not detail.job_run_id or not detail.virtual_cluster_id:
            raise ValueError(
                "detail: the job run is not named: expected 'id' and 'virtualClusterId', or the job run's ARN "
                "(arn:aws:emr-containers:<region>:<account>:/virtualclusters/<id>/jobruns/<id>) in 'arn' or "
                "'resources'"
            )
        if self.detail_type != DRIVER_ATTEMPT and not detail.state:
            raise ValueError("detail.state: missing (a job run state change names the new state)")
        return self

    @property
    def ids(self) -> tuple[str, str]:
        """(virtual cluster id, job run id), both known once validated."""
        return self.detail.virtual_cluster_id or "", self.detail.job_run_id or ""

    @property
    def is_driver_attempt(self) -> bool:
        return self.detail_type == DRIVER_ATTEMPT


class InfrastructureDetail(_Detail):
    """``detail`` of the EMR instance group / instance fleet events (state changes, provisioning, resize).
    Only the cluster id is required: AWS documents few of these shapes verbatim (facts §1.3-1.5), counts
    come as strings, and the rest is kept as sent."""

    cluster_id: ClusterId = Field(alias="clusterId")
    state: str | None = None
    severity: str | None = None
    message: Message | None = None
    event_code: str | None = Field(None, alias="eventCode")
    instance_group_id: str | None = Field(None, alias="instanceGroupId")
    instance_group_type: str | None = Field(None, alias="instanceGroupType")
    instance_fleet_id: str | None = Field(None, alias="instanceFleetId")
    instance_fleet_type: str | None = Field(None, alias="instanceFleetType")
    market: str | None = None


class EmrInfrastructureEvent(_Envelope):
    detail: InfrastructureDetail


class Ec2InstanceDetail(_Detail):
    """``detail`` of ``EC2 Spot Instance Interruption Warning`` (``instance-id``, ``instance-action``:
    terminate, stop or hibernate) and of ``EC2 Instance Rebalance Recommendation`` (``instance-id``)."""

    instance_id: str = Field(alias="instance-id", pattern=r"^i-[0-9a-f]{8,17}$")
    instance_action: str | None = Field(None, alias="instance-action", max_length=40)


class Ec2SpotEvent(_Envelope):
    detail: Ec2InstanceDetail


class S3Object(BaseModel):
    key: str
    size: float | None = Field(None, ge=0)
    etag: str
    version_id: str | None = Field(None, alias="version-id")
    sequencer: str | None = None


class S3Bucket(BaseModel):
    name: str


class S3ObjectCreatedDetail(BaseModel):
    """``detail`` of S3's ``Object Created``: what Powertools' model requires, and the fields we read."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    bucket: S3Bucket
    object: S3Object
    request_id: str = Field(alias="request-id")
    requester: str
    source_ip_address: str | None = Field(None, alias="source-ip-address")
    reason: str | None = None


class S3ObjectCreated(_Envelope):
    """S3 ``Object Created`` through EventBridge (``detail.object.key`` as sent)."""

    detail: S3ObjectCreatedDetail


class ScheduledEvent(_Envelope):
    """EventBridge's ``Scheduled Event`` (the weekly digest's schedule): only its time is read."""

    detail: dict[str, Any] = Field(default_factory=dict)


EmrEvent = (
    EmrStepStatusChange
    | EmrClusterStateChange
    | EmrServerlessJobRunStateChange
    | EksJobRunEvent
    | EmrInfrastructureEvent
    | Ec2SpotEvent
)
ParsedEvent = EmrEvent | S3ObjectCreated | ScheduledEvent
# EventBridge's reference lists both state-change names for aws.emr-containers without telling them apart.
EKS_EVENT_TYPES = ("EMR Job Run State Change", "EmrContainers Job Run State Change", DRIVER_ATTEMPT)
INFRASTRUCTURE_EVENT_TYPES = (
    "EMR Instance Group State Change",
    "EMR Instance Fleet State Change",
    "EMR Instance Group Provisioning",
    "EMR Instance Fleet Provisioning",
    "EMR Instance Fleet Resize",
)

EVENT_MODELS: dict[tuple[str, str], type[ParsedEvent]] = {
    ("aws.emr", "EMR Step Status Change"): EmrStepStatusChange,
    ("aws.emr", "EMR Cluster State Change"): EmrClusterStateChange,
    ("aws.emr-serverless", "EMR Serverless Job Run State Change"): EmrServerlessJobRunStateChange,
    **{("aws.emr-containers", detail_type): EksJobRunEvent for detail_type in EKS_EVENT_TYPES},
    **{("aws.emr", detail_type): EmrInfrastructureEvent for detail_type in INFRASTRUCTURE_EVENT_TYPES},
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"): Ec2SpotEvent,
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"): Ec2SpotEvent,
    ("aws.s3", "Object Created"): S3ObjectCreated,
    ("aws.events", "Scheduled Event"): ScheduledEvent,
}

_ENVELOPE_KEYS = ("version", "id", "source", "account", "time", "region", "detail-type", "detail")


def describe_event(raw: Mapping[str, Any]) -> str:
    """A short human label for an event, safe to print before it has been validated."""
    detail = raw.get("detail") if isinstance(raw.get("detail"), Mapping) else {}
    assert isinstance(detail, Mapping)
    label = str(raw.get("detail-type", "?"))
    state = detail.get("state")
    if isinstance(state, str):
        label += f" ({state})"
    obj = detail.get("object")
    if isinstance(obj, Mapping) and isinstance(obj.get("key"), str):
        label += f" ({obj['key']})"
    return label


def parse_event(raw: object, accept: tuple[type[ParsedEvent], ...] | None = None) -> ParsedEvent:
    """Validate a raw EventBridge event into the model for its source and detail-type.

    Parameters
    ----------
    raw:
        The event as Lambda passes it (decoded JSON).
    accept:
        The models this function handles; others are rejected as misrouted (default: all four).

    Returns
    -------
    ParsedEvent
        One of the four event models.

    Raises
    ------
    UnknownEventTypeError
        The source/detail-type pair is not one emr-triage subscribes to.
    InvalidEventError
        Not a JSON object, not an EventBridge envelope, or a field is missing or malformed
        (the message names each field and its problem).
    """
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"event is not a JSON object (got {type(raw).__name__})")
    missing = [key for key in _ENVELOPE_KEYS if key not in raw]
    if missing:
        raise InvalidEventError(f"not an EventBridge event: missing {', '.join(repr(k) for k in missing)}")
    source, detail_type = raw["source"], raw["detail-type"]
    model = EVENT_MODELS.get((str(source), str(detail_type)))
    if model is None:
        known = ", ".join(f"{dt!r} ({src})" for src, dt in EVENT_MODELS)
        raise UnknownEventTypeError(
            f"unknown event type {quoted(detail_type)} from {quoted(source)}; emr-triage handles {known}"
        )
    if accept is not None and model not in accept:
        wanted = ", ".join(repr(dt) for (_, dt), m in EVENT_MODELS.items() if m in accept)
        raise UnknownEventTypeError(
            f"this function handles {wanted}, not {detail_type!r}: check the EventBridge rule that sent it"
        )
    try:
        return parse(event=dict(raw), model=model)
    except ValidationError as exc:
        raise InvalidEventError(f"malformed {detail_type!r} event: {describe_validation_error(exc)}") from exc


EMR_EVENT_MODELS: tuple[type[ParsedEvent], ...] = (
    EmrStepStatusChange,
    EmrClusterStateChange,
    EmrServerlessJobRunStateChange,
    EksJobRunEvent,
    EmrInfrastructureEvent,
    Ec2SpotEvent,
)


def parse_emr_event(raw: object) -> EmrEvent:
    """Validate an EMR or EMR Serverless state change (see :func:`parse_event`)."""
    event = parse_event(raw, accept=EMR_EVENT_MODELS)
    assert not isinstance(event, (S3ObjectCreated, ScheduledEvent))
    return event


def parse_scheduled_event(raw: object) -> ScheduledEvent:
    """Validate the digest schedule's event (see :func:`parse_event`)."""
    event = parse_event(raw, accept=(ScheduledEvent,))
    assert isinstance(event, ScheduledEvent)
    return event


def parse_log_event(raw: object) -> S3ObjectCreated:
    """Validate an S3 Object Created event (see :func:`parse_event`)."""
    event = parse_event(raw, accept=(S3ObjectCreated,))
    assert isinstance(event, S3ObjectCreated)
    return event


class FollowUp(BaseModel):
    """A scheduled check of an incident's logs (the body of a follow-up queue message)."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str = Field(min_length=3, max_length=300)
    check: int = Field(ge=1, le=100)
    checks: int = Field(ge=1, le=100)
    # logs: a check of the incident's logs; hold: the check of an incident held for its failed step
    # (fold it, or alert it on its own), which does nothing once the incident is no longer held; run: a
    # check of a run being watched for slowness (``incident_id`` is the run's id).
    purpose: Literal["logs", "hold", "run"] = "logs"


def parse_follow_up(body: object) -> FollowUp:
    """Validate a follow-up message body (JSON text).

    Raises
    ------
    InvalidEventError
        Not JSON, or not a follow-up (names the problem).
    """
    if not isinstance(body, str):
        raise InvalidEventError(f"follow-up message body is not text (got {type(body).__name__})")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(f"follow-up message body is not JSON ({exc.msg})") from exc
    except (RecursionError, ValueError) as exc:
        raise InvalidEventError(f"follow-up message body is not JSON we can read ({_undecodable(exc)})") from exc
    try:
        return FollowUp.model_validate(data)
    except ValidationError as exc:
        raise InvalidEventError(f"malformed follow-up message: {describe_validation_error(exc, root='body')}") from exc


def _undecodable(exc: Exception) -> str:
    """Why valid-looking JSON could not be decoded: Python's own limits, which hostile input can hit."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return shorten(str(exc), 200)  # e.g. an integer of more than 4,300 digits
