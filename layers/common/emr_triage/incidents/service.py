"""What happens to each event: the entry points of the incident lifecycle, from a failure event to a
Slack alert. Each is idempotent by construction (natural-key incident ids, conditional writes, a claim
before posting to Slack), so EventBridge's at-least-once delivery and Lambda's retries never produce a
second incident or a second root message.

Where each concern lives (``incidents/``):

- ``emr_events``: step, cluster and job-run state changes; ``log_events``: log objects landing in S3;
  ``log_checks``: the scheduled checks after a failure; ``infrastructure``: capacity and instance events.
- ``building``: incident ids and construction; ``log_reads``: reading logs into incidents;
  ``lifecycle``: open or resume, duplicates, finish; ``folding``: folds and holds; ``recovery``: successes.
- ``delivery``: the one way into Slack; ``pacing``: per-channel pace and storms; ``claims``: doing a
  thing once across invocations; ``schedule``: the follow-up queue.
- ``repository`` (DynamoDB) and ``history`` (recurrence, last success) are the store and its reading.
"""

from emr_triage.incidents.building import (
    application_incident_id,
    cluster_incident_id,
    job_run_incident_id,
    step_incident_id,
)
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.emr_events import handle_emr_event
from emr_triage.incidents.infrastructure import describe_infrastructure
from emr_triage.incidents.lifecycle import reject_event
from emr_triage.incidents.log_checks import handle_follow_up
from emr_triage.incidents.log_events import handle_log_event

__all__ = [
    "application_incident_id",
    "cluster_incident_id",
    "deliver_alert",
    "describe_infrastructure",
    "handle_emr_event",
    "handle_follow_up",
    "handle_log_event",
    "job_run_incident_id",
    "reject_event",
    "step_incident_id",
]
