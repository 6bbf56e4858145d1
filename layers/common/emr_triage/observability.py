"""Logger, tracer and metrics, created once and imported everywhere.

Structured logs carry ids (``cluster_id=``, ``step_id=``) and never raw log excerpts.
Business metrics are PascalCase, one per outcome.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

SERVICE = "emr-triage"
METRICS_NAMESPACE = "EmrTriage"


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log lines with every string redacted (message, fields, traceback): what reaches
    CloudWatch goes through the same redaction as Slack, DynamoDB and the terminal."""

    def serialize(self, log: Any) -> str:
        import json

        from emr_triage.analysis.redact import redact_strings

        # Serialised first, so that values only the JSON default turns into text (an exception) are text.
        return super().serialize(redact_strings(json.loads(super().serialize(log))))


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
# AWS calls only (botocore), as before: Powertools' default patches every library the X-Ray SDK knows
# that is installed (here also requests, with its charset detection, and sqlite3, neither of which we
# call), importing each at every cold start.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


class MetricName:
    """The business metrics this service emits (unit: Count)."""

    INCIDENTS_OPENED = "IncidentsOpened"
    INCIDENTS_UPDATED = "IncidentsUpdated"
    DUPLICATE_EVENTS = "DuplicateEvents"
    FOLDED_EVENTS = "FoldedEvents"
    INVALID_EVENTS = "InvalidEvents"
    DEAD_LETTERED_EVENTS = "DeadLetteredEvents"
    IGNORED_EVENTS = "IgnoredEvents"
    SUCCESSFUL_RUNS = "SuccessfulRunsRecorded"
    INCIDENTS_RESOLVED = "IncidentsResolved"
    INFRASTRUCTURE_EVENTS = "InfrastructureEvents"
    LOGS_UNAVAILABLE = "LogsUnavailable"
    LOG_OBJECTS_ANALYSED = "LogObjectsAnalysed"
    # Logs analysed whose findings changed nothing the incident shows (so it was not rewritten).
    LOGS_ADDING_NOTHING = "LogsAddingNothing"
    PARTIAL_LOG_READS = "PartialLogReads"
    FAILURES_CLASSIFIED = "FailuresClassified"
    SLACK_MESSAGES_POSTED = "SlackMessagesPosted"
    SLACK_MESSAGES_UPDATED = "SlackMessagesUpdated"
    SLACK_DELIVERY_FAILURES = "SlackDeliveryFailures"
    SLACK_THREAD_REPLIES = "SlackThreadReplies"
    SLACK_POSTS_PACED = "SlackPostsPaced"
    # Root messages Slack posted without answering us, found in the channel's history and adopted (not
    # posted again); they count in SlackMessagesPosted too.
    SLACK_POSTS_ADOPTED = "SlackPostsAdopted"
    STORM_FOLDED_INCIDENTS = "StormFoldedIncidents"
    # People acting from Slack (the interactive function): failures of a muted signature threaded instead
    # of alerted, interactions acted on, requests refused (dimension ``reason``).
    ALERTS_MUTED = "AlertsMuted"
    INTERACTIONS_HANDLED = "InteractionsHandled"
    INTERACTIONS_REJECTED = "InteractionsRejected"
    # Unit: seconds, from the alert to its acknowledgement.
    TIME_TO_ACKNOWLEDGE = "TimeToAcknowledge"
    # Runs over time: runs seen starting, alerted as slow, and weekly digests posted.
    RUNS_STARTED = "RunsStarted"
    SLOW_RUNS = "SlowRunsAlerted"
    DIGESTS_POSTED = "DigestsPosted"


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Add one business metric (Count). With dimensions, it is emitted at once as its own EMF record."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    if is_metrics_disabled():  # single_metric itself ignores POWERTOOLS_METRICS_DISABLED
        return
    # With the dimensions every other metric gets at flush (the service), so that they aggregate alike.
    defaults = {"service": SERVICE, **metrics.default_dimensions}
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, namespace=METRICS_NAMESPACE, default_dimensions=defaults
    ) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


def seconds(name: str, value: float) -> None:
    """Add a duration metric (unit: Seconds)."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)
