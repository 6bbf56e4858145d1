"""Our own exceptions. Each message names what went wrong and what to do about it.

Adapters translate ``botocore`` and ``slack_sdk`` errors into these (raised ``from`` the original),
so the domain code and the handlers never depend on a vendor's error types.
"""

from __future__ import annotations


class EmrTriageError(Exception):
    """Base class of every error this package raises on purpose."""


class SettingsError(EmrTriageError):
    """The function's environment is missing a variable or has an invalid value."""


class InvalidEventError(EmrTriageError):
    """An event is not one we can process: not JSON, not EventBridge, or fails validation.

    Poison input: retrying cannot help, so it is dead-lettered with this message, never retried.
    """


class UnknownEventTypeError(InvalidEventError):
    """An EventBridge event whose source and detail-type emr-triage does not handle."""


class CatalogueError(EmrTriageError):
    """A failure-signature catalogue (ours or a user's) is invalid; the message names rule and problem."""


class TransientError(EmrTriageError):
    """A dependency failed in a way that a retry may fix (throttling, 5xx, timeouts).

    Handlers let it propagate so Lambda retries the event and, when retries run out,
    sends it to the dead-letter queue.
    """


class AwsAccessError(EmrTriageError):
    """An AWS call was denied or pointed at something that does not exist; retrying will not help."""


class IncidentTooLargeError(EmrTriageError):
    """An incident that DynamoDB refuses as over its 400 KB item limit even after it was trimmed."""


def too_large(incident_id: str) -> IncidentTooLargeError:
    return IncidentTooLargeError(
        f"incident {incident_id} is over DynamoDB's 400 KB item limit even after trimming its evidence and "
        "history: this is a bug in the trimming (storable() in aws/incident_items.py); report it with the event"
    )


class LogReadError(EmrTriageError):
    """A log object could not be read at all (deleted, access denied)."""


class DeliveryError(TransientError):
    """Slack did not accept a message. The incident is already recorded; the event will be retried."""


class SlackPostUnansweredError(DeliveryError):
    """A root post reached Slack but its answer never came (a read timeout, a connection dropped after the
    request was sent): Slack may have posted it. Look for it (by its metadata) before posting it again."""


class SlackMessageGoneError(EmrTriageError):
    """The alert's Slack message was deleted; a new one should be posted."""


class SlackConfigurationError(EmrTriageError):
    """Slack rejected us for a reason that needs a person: bad token, missing scope, bot not in channel."""


class ScenarioError(EmrTriageError):
    """A replay scenario folder is incomplete or inconsistent."""


class TemplateError(EmrTriageError):
    """template.yaml cannot be read or uses a construct the local runner cannot resolve."""
