"""Deliver messages through a Slack incoming webhook: the lesser mode, for teams without a Slack app.

An incoming webhook posts to the one channel it was created for and answers ``ok`` or an error word in
plain text; it cannot update a message, reply in a thread or upload a file. Its URL is a credential (it
grants posting), so it comes from a secret and never appears in an exception message or a log line:
messages say "the Slack incoming webhook", and slack-sdk's own logging (which prints the URL when it
retries) is silenced for this client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from emr_triage.alerts.message import SlackMessage
from emr_triage.analysis.redact import redact
from emr_triage.aws.secrets import read_secret, secret_value
from emr_triage.exceptions import DeliveryError, SlackConfigurationError
from emr_triage.models.incident import WEBHOOK_CHANNEL, SlackRef

if TYPE_CHECKING:
    from datetime import datetime

    from slack_sdk.webhook import WebhookClient, WebhookResponse

MAX_RETRIES = 2
WEBHOOK_PREFIXES = ("https://hooks.slack.com/", "https://hooks.slack-gov.com/")
_URL_KEYS = ("webhook_url", "url")
_HOOK = "the Slack incoming webhook"
_NEW_HOOK = "create a new incoming webhook in the Slack app and store its URL in the secret"

# Slack's documented webhook errors that need a person, with what that person should do.
_CONFIGURATION_FIXES = {
    "invalid_token": f"the webhook's token is no longer valid (the webhook was regenerated, or its app removed): "
    f"{_NEW_HOOK}",
    "no_service": f"the webhook was removed or disabled: {_NEW_HOOK}",
    "no_service_id": "the webhook URL is incomplete: store the whole URL Slack shows "
    "(https://hooks.slack.com/services/T.../B.../...) in the secret",
    "no_team": "the webhook URL names no Slack workspace: store the whole URL Slack shows "
    "(https://hooks.slack.com/services/T.../B.../...) in the secret",
    "team_disabled": "the Slack workspace is disabled: ask its admin to restore it, or use a webhook of an "
    "active workspace",
    "channel_not_found": f"the webhook's channel was deleted: {_NEW_HOOK} (for an existing channel)",
    "channel_is_archived": "the webhook's channel is archived: unarchive it, or create a new incoming webhook "
    "for another channel and store its URL in the secret",
    "action_prohibited": "a Slack admin restricted posting in the webhook's channel: ask them to allow the app, "
    "or create a new incoming webhook for another channel and store its URL in the secret",
    "posting_to_general_channel_denied": "only admins may post in the webhook's channel: create a new incoming "
    "webhook for another channel and store its URL in the secret, or ask an admin to allow posting",
    "user_not_found": f"the webhook posts to a user who no longer exists: {_NEW_HOOK} (for a channel)",
}
# Errors that mean Slack could not take the message we built: a bug on our side, not a setting.
_PAYLOAD_ERRORS = frozenset(
    {"invalid_payload", "too_many_attachments", "no_text", "invalid_blocks", "invalid_blocks_format"}
)
_ERROR_WORD = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _quiet_logger() -> logging.Logger:
    """A logger that emits nothing: WebhookClient logs its URL when it retries (at INFO, whatever its
    level) and some errors' text at ERROR. Built outside the logging registry, so no handler, parent or
    Powertools' copy_config_to_registered_loggers can turn it back on."""
    quiet = logging.Logger("emr_triage.slack.webhook.slack_sdk", level=logging.CRITICAL + 1)
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def _scrub(text: str, url: str) -> str:
    """``text`` without the webhook URL, its path or its secret (the last path segment)."""
    parts = urlsplit(url)
    secret = parts.path.rstrip("/").rsplit("/", 1)[-1]
    for needle in (url, parts.netloc + parts.path, parts.path, secret):
        if len(needle) > 1:
            text = text.replace(needle, "[REDACTED]")
    return redact(text)


def _error_word(body: str) -> str | None:
    """Slack's error word (``no_service``) in a webhook's answer, or None for anything else (HTML)."""
    word = body.strip()
    return word if _ERROR_WORD.fullmatch(word) else None


def _describe(exc: BaseException, url: str) -> str:
    """A connection error in words, without the URL (urllib and slack-sdk may quote it)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        text = f"{type(exc).__name__}: {type(reason).__name__}: {reason}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _scrub(text, url)[:300]


def _translate(response: WebhookResponse) -> Exception | None:
    """Our exception for a webhook's answer (after slack-sdk's retries), or None if it was accepted."""
    status = response.status_code
    word = _error_word(response.body or "")
    if word in _CONFIGURATION_FIXES:
        return SlackConfigurationError(
            f"{_HOOK} rejected the message with {word} (HTTP {status}): {_CONFIGURATION_FIXES[word]}"
        )
    if word in _PAYLOAD_ERRORS:
        return DeliveryError(
            f"{_HOOK} rejected the message with {word} (HTTP {status}): a bug in the payload emr-triage built "
            "(Block Kit or size limits), not a setting; report it with this message"
        )
    if 200 <= status < 300:
        return None
    if status == 429:
        return DeliveryError(
            f"{_HOOK} is rate limited (HTTP 429) after {MAX_RETRIES} retries: Slack allows about one message "
            "a second per webhook; the event will be retried"
        )
    if status >= 500:
        return DeliveryError(
            f"{_HOOK} failed with HTTP {status} after {MAX_RETRIES} retries: Slack is having trouble; the event "
            "will be retried"
        )
    what = word or "an unexpected answer"
    return DeliveryError(f"{_HOOK} rejected the message with {what} (HTTP {status})")


class WebhookNotifier:
    """Posts messages to a Slack incoming webhook through slack-sdk's WebhookClient.

    Retries connection errors, HTTP 429 (after Retry-After) and 5xx, twice each. The URL comes from
    ``url_provider`` on each send (Powertools caches the secret for 5 minutes), so a rotated webhook is
    picked up without a cold start; the client is rebuilt when the URL changes. A read timeout is not
    retried here: Slack may have posted the message already, and the event's own retry decides.

    Parameters
    ----------
    url_provider:
        Returns the webhook URL (a secret: it is never logged nor put in an error).
    timeout:
        Seconds to wait for Slack on each attempt.
    """

    def __init__(self, url_provider: Callable[[], str], timeout: int = 10) -> None:
        self._url_provider = url_provider
        self._timeout = timeout
        self._url: str | None = None
        self._client: WebhookClient | None = None

    def _client_for(self, url: str) -> WebhookClient:
        if self._client is None or url != self._url:
            self._client = self._build_client(url)
            self._url = url
        return self._client

    def _build_client(self, url: str) -> WebhookClient:
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )
        from slack_sdk.http_retry.request import HttpRequest
        from slack_sdk.http_retry.response import HttpResponse
        from slack_sdk.http_retry.state import RetryState
        from slack_sdk.webhook import WebhookClient

        class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
            """slack-sdk's handler retries 500 and 503 only; a webhook's 502 and 504 are as transient."""

            def _can_retry(
                self,
                *,
                state: RetryState,
                request: HttpRequest,
                response: HttpResponse | None = None,
                error: Exception | None = None,
            ) -> bool:
                return response is not None and 500 <= response.status_code < 600

        return WebhookClient(
            url=url,
            timeout=self._timeout,
            logger=_quiet_logger(),
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES),
                RateLimitErrorRetryHandler(max_retry_count=MAX_RETRIES),
                AnyServerErrorRetryHandler(max_retry_count=MAX_RETRIES),
            ],
        )

    def send(self, message: SlackMessage) -> None:
        """Post ``message`` to the webhook's channel.

        Parameters
        ----------
        message:
            The text (notification fallback) and Block Kit blocks to post; links are not unfurled.

        Raises
        ------
        SlackConfigurationError
            Slack refused the webhook for a reason that needs a person (removed webhook, archived channel);
            the message says what to do.
        DeliveryError
            Slack could not be reached, stayed rate limited or failing after the retries, or refused our
            payload. Neither message nor cause contains the webhook URL.
        """
        from http.client import HTTPException

        from slack_sdk.errors import SlackClientError

        url = self._url_provider()
        response: WebhookResponse | None = None
        failure = ""
        try:
            response = self._client_for(url).send(
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackClientError, OSError, HTTPException, ValueError) as exc:
            # Connection errors and timeouts that outlasted the retry handlers. urllib and slack-sdk may
            # quote the URL in their errors, so ours is raised outside this block: no cause, no context.
            failure = _describe(exc, url)
        if response is None:
            raise DeliveryError(f"could not deliver to {_HOOK}: {failure}")
        error = _translate(response)
        if error is not None:
            raise error

    # -- the Notifier interface: one message per incident, nothing after it -------------------------
    threads = False

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        """Send the message; the webhook decides the channel (``channel`` is ignored). The reference is
        a marker: an incoming webhook cannot edit, reply to or thread under what it posted."""
        self.send(message)
        return SlackRef(channel=WEBHOOK_CHANNEL, ts=f"webhook-{message.digest()}", digest=message.digest())

    def find_root(self, channel: str, incident_id: str, since: datetime) -> SlackRef | None:
        """None: an incoming webhook cannot read the channel (a retry after a lost answer posts again)."""
        return None

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        raise DeliveryError(f"{_HOOK} cannot edit a message (the lesser mode: one message per incident)")

    def reply(self, ref: SlackRef, message: SlackMessage) -> str:
        raise DeliveryError(f"{_HOOK} cannot reply in a thread (the lesser mode: one message per incident)")

    def upload(self, ref: SlackRef, filename: str, content: str | bytes, title: str) -> str:
        raise DeliveryError(f"{_HOOK} cannot upload a file (the lesser mode: one message per incident)")

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        raise DeliveryError(f"{_HOOK} cannot answer one person (buttons need the bot token)")


def parse_webhook_secret(secret: str, secret_id: str) -> str:
    """The incoming-webhook URL inside a secret: the plain URL, or JSON with a ``webhook_url`` (or ``url``) key.

    Parameters
    ----------
    secret:
        The secret string as Secrets Manager returns it.
    secret_id:
        The secret's name or ARN, for the error message.

    Returns
    -------
    str
        The webhook URL, ``https://hooks.slack.com/...`` (or ``https://hooks.slack-gov.com/...``).

    Raises
    ------
    SlackConfigurationError
        The secret holds no such URL (the message never contains the secret's value).
    """
    value = secret_value(secret, _URL_KEYS).strip()
    valid = any(value.startswith(prefix) and len(value) > len(prefix) for prefix in WEBHOOK_PREFIXES)
    if not valid or any(c.isspace() or not c.isprintable() for c in value):
        raise SlackConfigurationError(
            f"secret {secret_id} does not hold a Slack incoming webhook URL: store the URL Slack shows for the "
            "webhook (https://hooks.slack.com/services/T.../B.../...) as the secret string, or as JSON "
            '{"webhook_url": "https://hooks.slack.com/services/..."}'
        )
    return value


def webhook_url_from_secret(secret_id: str) -> str:
    """Read the incoming-webhook URL from Secrets Manager through Powertools parameters (cached 5 minutes).

    Parameters
    ----------
    secret_id:
        The secret's name or ARN.

    Returns
    -------
    str
        The webhook URL (see :func:`parse_webhook_secret`).

    Raises
    ------
    TransientError
        Secrets Manager did not answer (throttled, 5xx, unreachable): the event is retried.
    SlackConfigurationError
        The secret cannot be read (missing, access denied) or holds no webhook URL.
    """
    return parse_webhook_secret(read_secret(secret_id, "the Slack incoming webhook URL"), secret_id)
