"""The interactive function: buttons on the alerts and ``/emr-triage``, on slack-bolt's AWS Lambda adapter.

A request from the function URL is first admitted (:mod:`emr_triage.interactive.gate`: size, signature,
age, workspace, app, our actions only, not a replay), then handed to slack-bolt, which verifies the
signature again and calls our listeners. Slack wants an answer within 3 seconds
(https://api.slack.com/interactivity/handling#acknowledgment_response):

- a button press is acknowledged at once (an empty 200); its work, the incident's change, the alert's
  edit and a note for the presser, runs in bolt's *lazy listener*: the same function invoked again,
  asynchronously, by bolt (``lambda:InvokeFunction`` on itself). An invocation that fails there is retried
  by Lambda, then goes to the dead-letter queue (the template's EventInvokeConfig): never lost silently.
- a command's answer is one DynamoDB read, computed and returned in the acknowledgement itself.

Locally (the replay command, tests) ``SLACK_LAZY=inline``: the lazy work runs in-process after the
response is made, through the same path bolt takes in Lambda (the payload it would have invoked with).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from emr_triage.alerts.actions import ACTIONS, BLOCK_PREFIX
from emr_triage.incidents.delivery import deliver_alert
from emr_triage.incidents.interactions import Press, act
from emr_triage.interactive.commands import Asker, answer
from emr_triage.interactive.gate import COMMAND, Refusal, admit
from emr_triage.observability import MetricName, count, logger
from emr_triage.ports import Dependencies, InteractionLedger

# The action ids of the alert's buttons (alerts/actions.py), the only ones the listener takes.
ACTION_IDS = re.compile("^(?:" + "|".join(map(re.escape, ACTIONS)) + ")$")


def press_of(body: dict[str, Any]) -> Press:
    """The press a ``block_actions`` payload describes (already admitted: one of our actions)."""
    action = body["actions"][0]
    incident_id = str(action.get("block_id", "")).removeprefix(BLOCK_PREFIX)
    selected = action.get("selected_option") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    user = body.get("user") or {}
    return Press(
        action=str(action["action_id"]),
        incident_id=incident_id,
        user=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or "") or None,
        channel=str(channel) if channel else None,
        choice=str(selected.get("value")) if action["action_id"] == "mute" and selected else None,
    )


def _acknowledge(ack: Callable[..., Any]) -> None:
    ack()


def _work_after_ack(body: dict[str, Any], deps: Dependencies, members: Callable[[str], frozenset[str]]) -> None:
    """A button's work, after its acknowledgement: change the incident, edit the alert, tell the presser."""
    press = press_of(body)
    try:
        result = act(press, deps, members)
        if result.changed:
            deliver_alert(press.incident_id, deps)
        if result.note and press.channel:
            deps.notifier.ephemeral(press.channel, press.user, result.note)
    except Exception as exc:
        count(MetricName.SLACK_DELIVERY_FAILURES)
        logger.exception("a button press could not be acted on", incident_id=press.incident_id, action=press.action)
        if deps.dead_letters is not None:
            deps.dead_letters.send(body, f"button {press.action} failed: {type(exc).__name__}", "SlackInteractions")
        if press.channel:
            note = f"Sorry, that did not work ({type(exc).__name__}); press the button again."
            try:
                deps.notifier.ephemeral(press.channel, press.user, note)
            except Exception:  # the failure is dead-lettered and logged already
                logger.warning("could not tell the presser either", incident_id=press.incident_id)


def _command(
    ack: Callable[..., Any], body: dict[str, Any], deps: Dependencies, members: Callable[[str], frozenset[str]]
) -> None:
    asker = Asker(user=str(body.get("user_id", "")), channel=str(body.get("channel_id", "")))
    ack(text=answer(str(body.get("text", "")), asker, deps, members), response_type="ephemeral")
    count(MetricName.INTERACTIONS_HANDLED)


def build_app(deps: Dependencies, secret: str, token: str, members: Callable[[str], frozenset[str]]) -> Any:
    """The bolt App with our listeners (process_before_response: on Lambda, nothing runs after return).
    bolt passes a listener its arguments by parameter name: each listener names exactly the ones it needs,
    and ours (the store, the user groups) are bound with ``partial``."""
    from slack_bolt import App
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk import WebClient

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test round trip to Slack on each request (bolt's default
        # single-team authorization makes one on a container's first request).
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    app = App(
        signing_secret=secret,
        authorize=authorize,
        client=WebClient(base_url=deps.settings.slack_api_url),  # the token comes from authorize
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    app.action(ACTION_IDS)(ack=_acknowledge, lazy=[partial(_work_after_ack, deps=deps, members=members)])
    app.command(COMMAND)(partial(_command, deps=deps, members=members))
    return app


class InlineLambda:
    """A Lambda client for bolt's lazy runner that keeps the invocations it is asked for, to run them
    in-process after the response (``SLACK_LAZY=inline``: the replay command and tests)."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.pending.append(json.loads(Payload))
        return {"StatusCode": 202}


def is_lazy_invocation(event: dict[str, Any]) -> bool:
    """bolt's own asynchronous invocation of this function (its lazy runner sets ``method: NONE`` at the
    top of the event, which no function-URL request has: only a caller allowed to invoke the function
    directly can send it)."""
    return event.get("method") == "NONE" and "requestContext" in event


def respond(
    event: dict[str, Any],
    context: Any,
    deps: Dependencies,
    secrets: tuple[str, str],
    ledger: InteractionLedger,
    members: Callable[[str], frozenset[str]],
    inline: bool,
) -> dict[str, Any]:
    """Handle one invocation: a function-URL request, or bolt's lazy self-invocation."""
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler
    from slack_bolt.adapter.aws_lambda.lazy_listener_runner import LambdaLazyListenerRunner

    secret, token = secrets
    handler = SlackRequestHandler(build_app(deps, secret, token, members))
    local = InlineLambda() if inline else None
    if local is not None:
        handler.app.listener_runner.lazy_listener_runner = LambdaLazyListenerRunner(handler.logger, local)
    if is_lazy_invocation(event):
        response: dict[str, Any] = handler.handle(event, context)  # type: ignore[no-untyped-call]
    else:
        verdict = admit(event, secret, deps.settings, ledger)
        if isinstance(verdict, Refusal):
            count(MetricName.INTERACTIONS_REJECTED, reason=verdict.reason)
            logger.warning("request refused", reason=verdict.reason, problem=verdict.message, status=verdict.status)
            return {"statusCode": verdict.status, "headers": {"content-type": "text/plain"}, "body": verdict.message}
        if verdict.repeat:
            logger.info("Slack retried an interaction already acted on; acknowledged again, not acted on")
            return {"statusCode": 200, "headers": {}, "body": ""}
        response = handler.handle(event, context)  # type: ignore[no-untyped-call]
    while local is not None and local.pending:
        handler.handle(local.pending.pop(0), context)  # type: ignore[no-untyped-call]
    return response
