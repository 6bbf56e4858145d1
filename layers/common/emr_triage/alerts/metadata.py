"""The Slack message metadata that names an incident on its root message. Pure: no I/O.

Slack keeps an app's ``metadata`` (``event_type`` and a free-form ``event_payload``) on the message
(https://docs.slack.dev/messaging/message-metadata) and returns it from ``conversations.history`` with
``include_all_metadata=true``. It lets a root post whose answer was lost be found again by its incident,
instead of posted a second time. Anyone in the workspace can read metadata: it holds only the incident id,
which the message's footer shows anyway.
"""

from __future__ import annotations

from typing import Any

INCIDENT_EVENT_TYPE = "emr_triage_incident"


def incident_metadata(incident_id: str) -> dict[str, Any]:
    """The metadata of an incident's root message (chat.postMessage and chat.update ``metadata``)."""
    return {"event_type": INCIDENT_EVENT_TYPE, "event_payload": {"incident_id": incident_id}}


def metadata_incident(metadata: object) -> str | None:
    """The incident a message's metadata names, or None (no metadata, or another app's)."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != INCIDENT_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    incident_id = payload.get("incident_id") if isinstance(payload, dict) else None
    return incident_id if isinstance(incident_id, str) and incident_id else None
