"""Deliver messages: to Slack through slack-sdk's WebClient, or to the console (local replay).

A root post is never sent twice blindly. ``chat.postMessage`` has no idempotency key, so a post whose
answer is lost after the request went out (a read timeout, a connection dropped) may be in the channel:
slack-sdk does not re-send it (root posts have their own client, whose connection retries cover only
errors raised before the request was sent), ``post`` raises :class:`SlackPostUnansweredError`, and
``find_root`` looks for it in the channel's history by the message metadata naming the incident
(``conversations.history`` with ``include_all_metadata``; bot scopes ``channels:history`` and
``groups:history``, read from the ``x-oauth-scopes`` header of Slack's answers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from emr_triage.alerts.message import SlackMessage
from emr_triage.alerts.metadata import metadata_incident
from emr_triage.exceptions import (
    DeliveryError,
    SlackConfigurationError,
    SlackMessageGoneError,
    SlackPostUnansweredError,
)
from emr_triage.models.incident import SlackRef
from emr_triage.observability import logger

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

# The scopes conversations.history needs: public channels, private channels.
HISTORY_SCOPES = frozenset({"channels:history", "groups:history"})
# The history read for an unanswered post: from this long before the post (clock skew between Lambda and
# Slack), the newest messages, at most this many (one page; the post is among the newest).
HISTORY_LOOKBACK = timedelta(minutes=3)
HISTORY_LIMIT = 50
# conversations.history takes a channel id, not a name (routing.py accepts the same shapes).
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,20}")


# Slack error codes that need a person, with what that person should do.
_CONFIGURATION_FIXES = {
    "channel_not_found": "check SlackChannel (a channel ID like C0123ABCD, or its exact name) and invite the bot "
    "to it (/invite @your-bot); private channels need the invitation",
    "not_in_channel": "invite the bot to the channel (/invite @your-bot), or add the chat:write.public scope",
    "is_archived": "the channel is archived: choose another SlackChannel",
    "invalid_auth": "the bot token is not valid: store the app's Bot User OAuth Token (xoxb-...) in the secret",
    "not_authed": "no bot token was sent: store the app's Bot User OAuth Token (xoxb-...) in the secret",
    "token_revoked": "the bot token was revoked: reinstall the Slack app and store its new token in the secret",
    "token_expired": "the bot token expired: store a fresh token in the secret (or disable token rotation)",
    "account_inactive": "the bot's account is inactive: reinstall the Slack app and store its new token",
    "missing_scope": "add the missing bot scope to the Slack app (chat:write to post, files:write to upload) "
    "and reinstall it",
}


def _translate(exc: SlackApiError, action: str, channel: str) -> Exception:
    error = str(exc.response.get("error", "unknown_error"))
    if error in ("message_not_found", "cant_update_message"):
        return SlackMessageGoneError(f"Slack {action} in {channel}: {error}: the alert's message is gone")
    fix = _CONFIGURATION_FIXES.get(error)
    if error == "missing_scope":
        needed = exc.response.get("needed")
        if needed:
            fix = f"add the {needed} bot scope to the Slack app and reinstall it"
    if fix:
        return SlackConfigurationError(f"Slack {action} to {channel} failed with {error}: {fix}")
    return DeliveryError(f"Slack {action} to {channel} failed with {error} (HTTP {exc.response.status_code})")


class SlackWebNotifier:
    """Posts and updates through slack-sdk, retrying 429 (Retry-After), 5xx and connection errors (root
    posts: only connection errors raised before the request was sent; see the module's docstring).

    The token comes from ``token_provider`` on each call (Powertools caches the secret for 5 minutes),
    so a rotated token is picked up without a cold start; the WebClients are rebuilt when it changes.
    """

    threads = True

    def __init__(self, token_provider: Callable[[], str], base_url: str, timeout: int = 10) -> None:
        self._token_provider = token_provider
        self._base_url = base_url
        self._timeout = timeout
        self._token: str | None = None
        self._clients: dict[bool, WebClient] = {}  # by whether it may re-send a request already sent
        self._scopes: frozenset[str] | None = None  # the token's (x-oauth-scopes); None: not seen yet
        self._scopes_warned = False
        self._channel_ids: dict[str, str] = {}  # channel names posted to -> the id Slack answered with
        self._names_warned: set[str] = set()

    @property
    def client(self) -> WebClient:
        return self._client_for(resend=True)

    def _client_for(self, *, resend: bool) -> WebClient:
        token = self._token_provider()
        if token != self._token:
            self._clients, self._token, self._scopes = {}, token, None
        if resend not in self._clients:
            self._clients[resend] = self._build_client(token, resend_after_sent=resend)
        return self._clients[resend]

    def _build_client(self, token: str, *, resend_after_sent: bool = True) -> WebClient:
        """A WebClient with slack-sdk's retry handlers. ``resend_after_sent=False`` (root posts): its
        connection retries cover URLError only, which urllib raises while connecting and sending; the
        errors raised while waiting for the answer (ConnectionResetError, RemoteDisconnected), which the
        default handler also retries, come after Slack may have posted the message."""
        from urllib.error import URLError

        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )

        connection = (
            ConnectionErrorRetryHandler(max_retry_count=2)
            if resend_after_sent
            else ConnectionErrorRetryHandler(max_retry_count=2, error_types=[URLError])
        )
        return WebClient(
            token=token,
            base_url=self._base_url,
            timeout=self._timeout,
            retry_handlers=[
                connection,
                RateLimitErrorRetryHandler(max_retry_count=2),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def _call(self, action: str, target: str, *, root: bool = False, **kwargs: Any) -> dict[str, Any]:
        from http.client import HTTPException
        from urllib.error import URLError

        from slack_sdk.errors import SlackApiError, SlackClientError

        client = self._client_for(resend=not root)
        try:
            response = _send(client, action, kwargs)
        except SlackApiError as exc:
            self._note_scopes(exc.response.headers)
            raise _translate(exc, action, target) from exc
        except (SlackClientError, OSError, HTTPException) as exc:
            # Connection errors and timeouts that outlasted the retry handlers. URLError: raised before
            # the request was sent; anything else was raised waiting for the answer.
            problem = f"{type(exc).__name__}: {exc}"
            if root and not isinstance(exc, (URLError, SlackClientError)):
                raise SlackPostUnansweredError(
                    f"Slack did not answer the root post to {target} ({problem}): it may have been posted"
                ) from exc
            raise DeliveryError(f"Slack {action} to {target} failed: {problem}") from exc
        self._note_scopes(response.headers)
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _note_scopes(self, headers: Mapping[str, Any] | None) -> None:
        """Keep the token's scopes from the first answer that names them (Slack's ``x-oauth-scopes``
        header), and warn once per container when neither history scope is there."""
        if self._scopes is not None or not headers:
            return
        value = next((v for k, v in headers.items() if str(k).lower() == "x-oauth-scopes"), None)
        if value is None:
            return
        text = ",".join(value) if isinstance(value, list) else str(value)
        self._scopes = frozenset(scope.strip() for scope in text.split(",") if scope.strip())
        if not self._scopes & HISTORY_SCOPES and not self._scopes_warned:
            self._scopes_warned = True
            logger.warning(
                "the Slack bot token has neither channels:history nor groups:history: a root post Slack makes "
                "but does not answer in time cannot be found, so the retry may post a second root message. "
                "Add channels:history (public channels) and groups:history (private channels) under OAuth & "
                "Permissions, Bot Token Scopes, and reinstall the app",
                scopes=sorted(self._scopes),
            )

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        """The root message, with the metadata naming its incident.

        Raises
        ------
        SlackPostUnansweredError
            The request was sent and not answered: it may have been posted (see :meth:`find_root`).
        DeliveryError, SlackConfigurationError
            Slack refused it or could not be reached (not posted).
        """
        data = self._call(
            "chat.postMessage",
            channel,
            root=True,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            metadata=message.metadata,
            unfurl_links=False,
        )
        channel_id = str(data.get("channel", channel))
        if channel_id != channel:
            self._channel_ids[channel] = channel_id
        return SlackRef(channel=channel_id, ts=str(data["ts"]), digest=message.digest())

    def find_root(self, channel: str, incident_id: str, since: datetime) -> SlackRef | None:
        """The root message whose metadata names the incident, among the channel's newest messages since
        a few minutes before ``since``; None when it is not there or cannot be looked for (no history
        scope, a channel routed by a name no answer has resolved yet, the lookup failing), each logged."""
        if self._scopes is not None and not self._scopes & HISTORY_SCOPES:
            return None  # warned at the first answer
        channel_id = channel if _CHANNEL_ID.fullmatch(channel) else self._channel_ids.get(channel)
        if channel_id is None:
            if channel not in self._names_warned:
                self._names_warned.add(channel)
                logger.warning(
                    "cannot look for an unanswered Slack post: its channel is routed by name and Slack's history "
                    "takes the channel id; route alerts to the id (C..., in the channel's details) instead",
                    channel=channel,
                    incident_id=incident_id,
                )
            return None
        try:
            data = self._call(
                "conversations.history",
                channel_id,
                channel=channel_id,
                oldest=f"{(since - HISTORY_LOOKBACK).timestamp():.6f}",
                limit=HISTORY_LIMIT,
                include_all_metadata=True,
            )
        except (DeliveryError, SlackConfigurationError, SlackMessageGoneError) as exc:
            logger.warning(
                "could not look for an unanswered Slack post in the channel's history",
                channel=channel_id,
                incident_id=incident_id,
                problem=str(exc),
            )
            return None
        messages = data.get("messages")
        for found in messages if isinstance(messages, list) else []:
            if isinstance(found, dict) and found.get("ts") and metadata_incident(found.get("metadata")) == incident_id:
                return SlackRef(channel=channel_id, ts=str(found["ts"]))
        if data.get("has_more"):
            logger.warning(
                f"an unanswered Slack post was not among the channel's {HISTORY_LIMIT} newest messages since it",
                channel=channel_id,
                incident_id=incident_id,
            )
        return None

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        self._call(
            "chat.update",
            ref.channel,
            channel=ref.channel,
            ts=ref.ts,
            text=message.text,
            blocks=message.blocks,
            metadata=message.metadata,
        )
        return SlackRef(channel=ref.channel, ts=ref.ts, digest=message.digest())

    def reply(self, ref: SlackRef, message: SlackMessage) -> str:
        """A reply in the root message's thread; returns its ts."""
        data = self._call(
            "chat.postMessage",
            ref.channel,
            channel=ref.channel,
            thread_ts=ref.ts,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
        )
        return str(data["ts"])

    def upload(self, ref: SlackRef, filename: str, content: str | bytes, title: str) -> str:
        """A file in the root message's thread: text (an extract) or bytes (a chart image), through
        files.getUploadURLExternal, the upload, then files.completeUploadExternal (slack-sdk's
        files_upload_v2); returns the file id."""
        body: dict[str, Any] = {"file": content} if isinstance(content, bytes) else {"content": content}
        data = self._call(
            "files.upload", ref.channel, channel=ref.channel, thread_ts=ref.ts, filename=filename, title=title, **body
        )
        files = data.get("files")
        first = files[0] if isinstance(files, list) and files else {}
        return str(first.get("id", "")) if isinstance(first, dict) else ""

    def usergroup_members(self, usergroup: str) -> frozenset[str]:
        """The user ids of a user group (usergroups.users.list; the usergroups:read scope)."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self.client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            raise _translate(exc, "usergroups.users.list", usergroup) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack usergroups.users.list of {usergroup} failed: {exc}") from exc
        users = response.get("users")
        return frozenset(str(u) for u in users) if isinstance(users, list) else frozenset()

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """chat.postEphemeral: a message only ``user`` sees (the answer to a button they pressed)."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            raise _translate(exc, "chat.postEphemeral", channel) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack chat.postEphemeral to {channel} failed: {type(exc).__name__}: {exc}") from exc


def _send(client: WebClient, action: str, kwargs: dict[str, Any]) -> SlackResponse:
    if action == "chat.postMessage":
        return client.chat_postMessage(**kwargs)
    if action == "files.upload":
        return client.files_upload_v2(**kwargs)
    if action == "conversations.history":
        return client.conversations_history(**kwargs)
    return client.chat_update(**kwargs)


@dataclass
class SentMessage:
    action: str
    channel: str
    ts: str
    message: SlackMessage


@dataclass
class ConsoleNotifier:
    """Keeps messages instead of sending them; the replay command prints them."""

    sent: list[SentMessage] = field(default_factory=list)
    uploads: list[tuple[str, str, str, str]] = field(default_factory=list)  # (thread ts, filename, title, text)
    images: list[tuple[str, str, bytes]] = field(default_factory=list)  # (thread ts, filename, PNG bytes)
    _counter: int = 0
    threads: bool = True

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        self._counter += 1
        ts = f"1700000000.{self._counter:06d}"
        self.sent.append(SentMessage("post", channel, ts, message))
        return SlackRef(channel=channel, ts=ts, digest=message.digest())

    def find_root(self, channel: str, incident_id: str, since: datetime) -> SlackRef | None:
        for sent in self.sent:
            if sent.action == "post" and metadata_incident(sent.message.metadata) == incident_id:
                return SlackRef(channel=sent.channel, ts=sent.ts)
        return None

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        self.sent.append(SentMessage("update", ref.channel, ref.ts, message))
        return SlackRef(channel=ref.channel, ts=ref.ts, digest=message.digest())

    def reply(self, ref: SlackRef, message: SlackMessage) -> str:
        self._counter += 1
        self.sent.append(SentMessage("reply", ref.channel, ref.ts, message))
        return f"1700000000.{self._counter:06d}"

    def upload(self, ref: SlackRef, filename: str, content: str | bytes, title: str) -> str:
        self._counter += 1
        if isinstance(content, bytes):
            self.uploads.append((ref.ts, filename, title, f"<{len(content):,} bytes>"))
            self.images.append((ref.ts, filename, content))
            shown = f"{filename} (image, {len(content):,} bytes): {title}"
        else:
            self.uploads.append((ref.ts, filename, title, content))
            shown = f"{filename} ({content.count(chr(10))} lines): {title}"
        self.sent.append(SentMessage("upload", ref.channel, ref.ts, SlackMessage(text=shown)))
        return f"F{self._counter:08d}"

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self._counter += 1
        self.sent.append(SentMessage("ephemeral", channel, user, SlackMessage(text=text)))
