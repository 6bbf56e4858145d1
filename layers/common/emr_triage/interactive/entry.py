"""The interactive function's one entry: a function-URL request or bolt's lazy self-invocation."""

from __future__ import annotations

from typing import Any

from emr_triage.exceptions import SlackConfigurationError
from emr_triage.interactive.app import respond
from emr_triage.observability import logger
from emr_triage.runtime import bot_token, get_dependencies, signing_secret, slack_state, usergroup_members


def handle(event: object, context: Any) -> dict[str, Any]:
    """Answer Slack: 200 with what Slack shows, 400/401 for a request refused (see
    :mod:`emr_triage.interactive.gate`), 500 when the function itself is misconfigured (said in the log)."""
    if not isinstance(event, dict):
        return {"statusCode": 400, "headers": {"content-type": "text/plain"}, "body": "not a function URL request"}
    deps = get_dependencies()
    deps.repository.begin_invocation()
    try:
        secrets = (signing_secret(deps.settings), bot_token(deps.settings))
    except SlackConfigurationError as exc:
        logger.error("the interactive function is not configured", problem=str(exc))
        return {"statusCode": 500, "headers": {"content-type": "text/plain"}, "body": "emr-triage is misconfigured"}
    members = usergroup_members(deps.notifier)
    inline = deps.settings.slack_lazy == "inline"
    return respond(event, context, deps, secrets, slack_state(), members, inline)
