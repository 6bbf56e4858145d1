"""Behaviour added after the independent review: windows on folding and on unlinked logs, edits that
catch up with concurrent changes, honest waiting wording, verbatim Slack text, time budgets, storage
that always fits DynamoDB's item limit and redacts every string."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.memory import make_dependencies

from emr_triage.alerts.message import build_incident_message
from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.aws.incident_items import ITEM_BUDGET_BYTES, json_bytes, storable
from emr_triage.incidents.delivery import _root_message
from emr_triage.incidents.emr_events import handle_cluster_event, handle_step_event
from emr_triage.incidents.service import deliver_alert, handle_log_event, step_incident_id
from emr_triage.models.analysis import Diagnosis, Finding
from emr_triage.models.emr import ClusterInfo, StepInfo
from emr_triage.models.events import EmrClusterStateChange, EmrStepStatusChange, parse_event
from emr_triage.models.incident import Incident

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLUSTER, STEP = "j-123456789ABCD", "s-ZYXWVUTSRQPON"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _event(name: str, *, time_: datetime, **detail: object) -> object:
    raw = json.loads((EVENTS / name).read_text())
    raw["detail"].update(detail)
    raw["time"] = time_.isoformat()
    return parse_event(raw)


def _with_failed_step(failed_at: datetime):  # type: ignore[no-untyped-def]
    deps, repo, emr, logs, notifier = make_dependencies()
    emr.clusters[CLUSTER] = ClusterInfo(cluster_id=CLUSTER, name="long-running", log_uri="s3://logs-bucket/emr/")
    emr.steps[STEP] = StepInfo(step_id=STEP, name="nightly", state="FAILED")
    event = _event("step-failed.json", time_=failed_at)
    assert isinstance(event, EmrStepStatusChange)
    handle_step_event(event, deps)
    return deps, repo, emr, logs, notifier


def test_a_step_cancelled_days_after_an_old_failure_is_its_own_incident() -> None:
    deps, repo, emr, _, _notifier = _with_failed_step(NOW - timedelta(days=3))
    emr.steps["s-1CANCELLEDSTEP"] = StepInfo(step_id="s-1CANCELLEDSTEP", name="refresh", state="CANCELLED")
    cancelled = _event("step-cancelled.json", time_=NOW)
    assert isinstance(cancelled, EmrStepStatusChange)
    outcome = handle_step_event(cancelled, deps)
    assert outcome.action == "incident_opened"
    assert repo.get(step_incident_id(CLUSTER, STEP)).children == []  # type: ignore[union-attr]


def test_a_step_cancelled_right_after_a_failure_is_folded() -> None:
    deps, _repo, _emr, _, _ = _with_failed_step(NOW - timedelta(minutes=1))
    cancelled = _event("step-cancelled.json", time_=NOW)
    assert isinstance(cancelled, EmrStepStatusChange)
    assert handle_step_event(cancelled, deps).action == "folded"


def test_a_cluster_step_failure_long_after_an_old_incident_is_not_folded_into_it() -> None:
    deps, _repo, _emr, _, _ = _with_failed_step(NOW - timedelta(days=2))
    cluster = _event(
        "cluster-terminated-with-errors.json",
        time_=NOW,
        clusterId=CLUSTER,
        stateChangeReason='{"code":"STEP_FAILURE","message":"Shut down as step failed"}',
    )
    assert isinstance(cluster, EmrClusterStateChange)
    outcome = handle_cluster_event(cluster, deps)
    assert outcome.action == "incident_opened" and outcome.incident_id == f"{CLUSTER}.cluster"


def _container_event(app: str, at: datetime) -> object:
    raw = json.loads((EVENTS / "s3-container-log-created.json").read_text())
    raw = json.loads(
        json.dumps(raw)
        .replace("elasticmapreduce/", "emr/")
        .replace("emr-triage-example-logs", "logs-bucket")
        .replace("1763480000001_0007", app)
    )
    raw["time"] = at.isoformat()
    return parse_event(raw)


def test_a_container_log_of_another_application_does_not_join_a_linked_incident() -> None:
    # Given an incident linked to application _0007 (from its step stderr)
    deps, repo, _, _logs, _ = _with_failed_step(NOW - timedelta(minutes=10))
    repo.update(
        step_incident_id(CLUSTER, STEP), lambda i: i.model_copy(update={"application_ids": ["application_1_0007"]})
    )
    # When a healthy later application's container log lands
    event = _container_event("1763480000001_0099", NOW)
    outcome = handle_log_event(event, deps)  # type: ignore[arg-type]
    # Then it is not attached to the unrelated incident
    assert outcome.action == "no_incident"


def test_an_unlinked_container_log_joins_only_a_recent_failure() -> None:
    deps, *_ = _with_failed_step(NOW - timedelta(days=1))
    assert handle_log_event(_container_event("1763480000001_0007", NOW), deps).action == "no_incident"  # type: ignore[arg-type]
    deps, _, _, logs, _ = _with_failed_step(NOW - timedelta(minutes=20))
    app = "application_1763480000001_0007"
    key = f"emr/j-123456789ABCD/containers/{app}/container_e02_1763480000001_0007_01_000001/stderr.gz"
    logs.put(key, "java.lang.OutOfMemoryError: Java heap space\n")
    assert handle_log_event(_container_event("1763480000001_0007", NOW), deps).action == "incident_updated"  # type: ignore[arg-type]


def test_an_edit_catches_up_with_a_change_made_while_it_was_sent() -> None:
    # Given an alerted incident, and a concurrent writer that changes it while our edit is in flight
    deps, repo, _, _, notifier = _with_failed_step(NOW)
    incident_id = step_incident_id(CLUSTER, STEP)
    repo.update(incident_id, lambda i: i.model_copy(update={"children": ["step a CANCELLED"]}))
    changed = {"done": False}

    def concurrent_change() -> None:
        if not changed["done"]:
            changed["done"] = True
            repo.update(incident_id, lambda i: i.model_copy(update={"children": [*i.children, "cluster x TERMINATED"]}))

    notifier.on_update = concurrent_change
    # When the edit goes out
    deliver_alert(incident_id, deps)
    # Then a second edit brings Slack up to the latest content
    assert len(notifier.updates) == 2
    assert "cluster x TERMINATED" in json.dumps(notifier.updates[-1][1].blocks)
    incident = repo.get(incident_id)
    assert incident is not None and incident.slack is not None
    assert incident.slack.digest == _root_message(incident, deps)[1].digest()


def _incident(**changes: object) -> Incident:
    base = Incident(
        incident_id="x.y",
        kind="step",
        state="FAILED",
        severity="high",
        region="us-east-1",
        failed_at=NOW,
        opened_at=NOW,
        updated_at=NOW,
        expires_at=0,
        cluster_id="j-X",
        log_location="s3://b/p/j-X/steps/s-Y/",
    )
    return base.model_copy(update=changes)


def test_waiting_wording_only_promises_updates_when_logs_can_come() -> None:
    def text(incident: Incident) -> str:
        return json.dumps(build_incident_message(incident).blocks)

    assert "updated when they arrive" in text(_incident())
    assert "does not write logs to S3" in text(_incident(log_location=None))
    job_run = {"kind": "job_run", "cluster_id": None, "application_id": "a1b2c3d4", "job_run_id": "e5f6a7b8"}
    assert "updated when they arrive" in text(_incident(**job_run))
    assert "does not send its logs to S3" in text(_incident(**job_run, log_location=None))
    assert "logs unavailable" in text(_incident(logs_unavailable=True, logs_deadline_minutes=20))
    assert "within 20 min" in text(_incident(logs_unavailable=True, logs_deadline_minutes=20))


def test_every_mrkdwn_object_is_verbatim() -> None:
    message = build_incident_message(_incident(emr_reason="see #general and https://evil.example"))
    objects = []
    for block in message.blocks:
        objects += [block["text"]] if block.get("text", {}).get("type") == "mrkdwn" else []
        objects += block.get("fields", []) + block.get("elements", [])
    assert objects and all(o["verbatim"] is True for o in objects if o["type"] == "mrkdwn")


def test_a_past_deadline_stops_a_read_with_a_note() -> None:
    _analysis, read = analyse_stream(
        [b"line\n"] * 10, catalogue=load_catalogue(), source="s", deadline=time.monotonic() - 1
    )
    assert read.partial and read.notes[0].startswith("time budget reached")
    assert read.lines == 0


def test_storage_fits_the_item_limit_even_for_multibyte_evidence() -> None:
    # Given the worst case the caps allow, in 3-byte characters (CJK, or U+FFFD from binary data)
    line = "東" * 500
    findings = [
        Finding(
            rule_id=f"r{i}",
            category="c",
            kind="cause",
            rank=i,
            severity="high",
            retryable=False,
            title="t",
            source="s3://b/" + "k" * 300,
            line_no=1,
            headline=line,
            evidence=[line] * 25,
        )
        for i in range(12)
    ]
    incident = _incident(
        findings=findings,
        diagnosis=Diagnosis(category="c", title="t", severity="high", summary=line, evidence=[line] * 25),
    )
    assert json_bytes(incident.model_dump(mode="json")) > 400_000
    # When it is prepared for DynamoDB
    body = storable(incident)
    # Then it fits, and the verdict's evidence is still there
    assert json_bytes(body) <= ITEM_BUDGET_BYTES
    assert body["diagnosis"]["evidence"] and body["findings"][0]["evidence"]


def test_storage_redacts_every_string_not_only_log_lines() -> None:
    incident = _incident(
        step_name="export password=hunter2",
        children=["step x (token=abc123secret) CANCELLED"],
        lookup_errors=["failed for s3a://AKIAIOSFODNN7EXAMPLE:wJalr%2Fsecret@bucket/"],
    )
    stored = json.dumps(storable(incident))
    for secret in ("hunter2", "abc123secret", "AKIAIOSFODNN7EXAMPLE", "wJalr"):
        assert secret not in stored
