"""EMR and EMR Serverless state changes: steps, clusters and job runs (EMR on EKS: incidents/eks.py).

Flow of a failed step::

    EMR Step Status Change (FAILED)
      -> duplicate?                              (the stored incident is complete: done, no EMR call)
      -> DescribeCluster + DescribeStep          (names, tags, LogUri, FailureDetails, timeline)
      -> create incident <cluster>.<step>        (conditional put: a duplicate event finds it)
      -> read the step's logs already in S3      (stderr, controller, syslog; gzip, streamed)
      -> diagnose, update the incident           (versioned write)
      -> post or update the Slack root message   (claimed first, recorded after)
"""

from __future__ import annotations

from emr_triage.analysis.redact import redact
from emr_triage.exceptions import LogReadError
from emr_triage.incidents.building import (
    cluster_incident_id,
    job_run_incident_id,
    new_cluster_incident,
    new_job_run_incident,
    new_step_incident,
    step_incident_id,
)
from emr_triage.incidents.eks import handle_eks_event
from emr_triage.incidents.folding import adopt_held, fold_into, hold, recent_step_failure
from emr_triage.incidents.infrastructure import handle_infrastructure_event
from emr_triage.incidents.lifecycle import already_alerted, finish, known_duplicate, open_or_resume
from emr_triage.incidents.log_reads import analyse_object, container_candidates, read_step_logs, sweep_logs
from emr_triage.incidents.recovery import handle_job_run_success, handle_step_success
from emr_triage.incidents.runs import handle_job_run_started, handle_step_started, take_over_slow_alert
from emr_triage.incidents.spot import handle_spot_event
from emr_triage.models.emr import StepInfo
from emr_triage.models.events import (
    Ec2SpotEvent,
    EksJobRunEvent,
    EmrClusterStateChange,
    EmrEvent,
    EmrInfrastructureEvent,
    EmrServerlessJobRunStateChange,
    EmrStepStatusChange,
)
from emr_triage.models.incident import Outcome
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies

FAILING_STEP_STATES = frozenset({"FAILED", "CANCELLED", "INTERRUPTED"})


FAILING_CLUSTER_STATES = frozenset({"TERMINATED_WITH_ERRORS"})


FAILING_JOB_RUN_STATES = frozenset({"FAILED", "CANCELLED"})


def handle_step_event(event: EmrStepStatusChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state == "COMPLETED":
        return handle_step_success(event, deps)
    if detail.state == "RUNNING":
        return handle_step_started(event, deps)
    if detail.state not in FAILING_STEP_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"step state {detail.state} is not a failure")
    incident_id = deps.scoped(step_incident_id(detail.cluster_id, detail.step_id))
    stored, done = known_duplicate(incident_id, deps)
    if done:
        return done
    if detail.state != "FAILED" and stored is None:
        # A step cancelled or interrupted because another step failed (ActionOnFailure) or the
        # cluster died is part of that story, not a new page.
        parent = recent_step_failure(detail.cluster_id, event.time, deps)
        if parent is not None:
            child = f"step {detail.name or detail.step_id} ({detail.step_id}) {detail.state}"
            return fold_into(parent, child, event.id, event.time, deps)
    cluster = deps.emr.describe_cluster(detail.cluster_id)
    # A cluster EMR cannot describe has no step to describe either: save the call.
    step = (
        deps.emr.describe_step(detail.cluster_id, detail.step_id) if cluster.found else StepInfo(step_id=detail.step_id)
    )
    new = new_step_incident(event, cluster, step, deps)
    # No failed step to fold into yet: it may still be reported (held), when there are checks to wait with.
    new.held_for_parent = detail.state != "FAILED" and deps.follow_ups is not None
    take_over_slow_alert(new, deps)  # alerted as slow while it ran: that message becomes this alert
    incident, created = open_or_resume(new, deps)
    if incident.held_for_parent:
        return hold(incident, deps, created, f"its failed step has not been reported on {detail.cluster_id}")
    if done := already_alerted(incident, created, deps):
        return done
    if detail.state == "FAILED":
        adopt_held(incident, deps)
    results = read_step_logs(incident, deps)
    # The driver's container log may have landed before this event (its S3 event found no incident).
    applications = [app for analysis, _ in results for app in analysis.application_ids]
    try:
        candidates = container_candidates(incident, applications, deps)
    except LogReadError as exc:
        logger.warning("container logs could not be listed", reason=redact(str(exc)))
        candidates = []
    results += [analyse_object(deps, bucket, key, etag) for bucket, key, etag in candidates]
    return finish(incident, created, results, deps)


def handle_cluster_event(event: EmrClusterStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state not in FAILING_CLUSTER_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"cluster state {detail.state} is not a failure")
    code = detail.state_change_reason.code
    if code == "STEP_FAILURE":
        parent = recent_step_failure(detail.cluster_id, event.time, deps)
        if parent is not None:
            child = f"cluster {detail.name or detail.cluster_id} {detail.state} ({code})"
            return fold_into(parent, child, event.id, event.time, deps)
    if done := known_duplicate(deps.scoped(cluster_incident_id(detail.cluster_id)), deps)[1]:
        return done
    cluster = deps.emr.describe_cluster(detail.cluster_id)
    new = new_cluster_incident(event, cluster, deps)
    new.held_for_parent = code == "STEP_FAILURE" and deps.follow_ups is not None
    incident, created = open_or_resume(new, deps)
    if incident.held_for_parent:
        return hold(incident, deps, created, "the step failure that terminated the cluster has not been reported")
    if done := already_alerted(incident, created, deps):
        return done
    return finish(incident, created, [], deps)


def handle_job_run_event(event: EmrServerlessJobRunStateChange, deps: Dependencies) -> Outcome:
    detail = event.detail
    if detail.state == "SUCCESS":
        return handle_job_run_success(event, deps)
    if detail.state == "RUNNING":
        return handle_job_run_started(event, deps)
    if detail.state not in FAILING_JOB_RUN_STATES:
        count(MetricName.IGNORED_EVENTS)
        return Outcome(action="ignored", detail=f"job run state {detail.state} is not a failure")
    if done := known_duplicate(deps.scoped(job_run_incident_id(detail.application_id, detail.job_run_id)), deps)[1]:
        return done
    run = deps.emr.get_job_run(detail.application_id, detail.job_run_id)
    new = new_job_run_incident(event, run, deps)
    take_over_slow_alert(new, deps)
    incident, created = open_or_resume(new, deps)
    if done := already_alerted(incident, created, deps):
        return done
    # The driver's and executors' logs already in S3 (the rest are looked for by the log checks).
    return finish(incident, created, sweep_logs(incident, deps), deps)


def handle_emr_event(event: EmrEvent, deps: Dependencies) -> Outcome:
    """Dispatch an EMR, EMR Serverless, EMR on EKS or EC2 Spot event to its handler (a member account's
    event with that account's EMR and S3, and ids that carry the account)."""
    deps = deps.in_account(event.account)
    if isinstance(event, EmrStepStatusChange):
        return handle_step_event(event, deps)
    if isinstance(event, EmrClusterStateChange):
        return handle_cluster_event(event, deps)
    if isinstance(event, EmrInfrastructureEvent):
        return handle_infrastructure_event(event, deps)
    if isinstance(event, Ec2SpotEvent):
        return handle_spot_event(event, deps)
    if isinstance(event, EksJobRunEvent):
        return handle_eks_event(event, deps)
    return handle_job_run_event(event, deps)
