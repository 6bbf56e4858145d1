"""Deliver messages: to Slack through slack-sdk's WebClient, or to the console (local replay)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emr_triage.alerts.message import SlackMessage
from emr_triage.exceptions import DeliveryError, SlackConfigurationError, SlackMessageGoneError
from emr_triage.models.incident import SlackRef

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError


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
    """Posts and updates through slack-sdk, retrying 429 (Retry-After), 5xx and connection errors.

    The token comes from ``token_provider`` on each call (Powertools caches the secret for 5 minutes),
    so a rotated token is picked up without a cold start; the WebClient is rebuilt when it changes.
    """

    threads = True

    def __init__(self, token_provider: Callable[[], str], base_url: str, timeout: int = 10) -> None:
        self._token_provider = token_provider
        self._base_url = base_url
        self._timeout = timeout
        self._token: str | None = None
        self._client: WebClient | None = None

    @property
    def client(self) -> WebClient:
        token = self._token_provider()
        if self._client is None or token != self._token:
            self._client = self._build_client(token)
            self._token = token
        return self._client

    def _build_client(self, token: str) -> WebClient:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )

        return WebClient(
            token=token,
            base_url=self._base_url,
            timeout=self._timeout,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=2),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def _call(self, action: str, target: str, **kwargs: object) -> dict[str, object]:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            if action == "chat.postMessage":
                response = self.client.chat_postMessage(**kwargs)  # type: ignore[arg-type]
            elif action == "files.upload":
                response = self.client.files_upload_v2(**kwargs)  # type: ignore[arg-type]
            else:
                response = self.client.chat_update(**kwargs)  # type: ignore[arg-type]
        except SlackApiError as exc:
            raise _translate(exc, action, target) from exc
        except (SlackClientError, OSError) as exc:
            # Connection errors and timeouts that outlasted the retry handlers.
            raise DeliveryError(f"Slack {action} to {target} failed: {type(exc).__name__}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        data = self._call(
            "chat.postMessage",
            channel,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
        )
        return SlackRef(channel=str(data.get("channel", channel)), ts=str(data["ts"]), digest=message.digest())

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        self._call(
            "chat.update",
            ref.channel,
            channel=ref.channel,
            ts=ref.ts,
            text=message.text,
            blocks=message.blocks,
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

    def upload(self, ref: SlackRef, filename: str, content: str, title: str) -> str:
        """A text file in the root message's thread (files.getUploadURLExternal, the upload, then
        files.completeUploadExternal: slack-sdk's files_upload_v2); returns the file id."""
        data = self._call(
            "files.upload",
            ref.channel,
            channel=ref.channel,
            thread_ts=ref.ts,
            content=content,
            filename=filename,
            title=title,
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
    _counter: int = 0
    threads: bool = True

    def post(self, channel: str, message: SlackMessage) -> SlackRef:
        self._counter += 1
        ts = f"1700000000.{self._counter:06d}"
        self.sent.append(SentMessage("post", channel, ts, message))
        return SlackRef(channel=channel, ts=ts, digest=message.digest())

    def update(self, ref: SlackRef, message: SlackMessage) -> SlackRef:
        self.sent.append(SentMessage("update", ref.channel, ref.ts, message))
        return SlackRef(channel=ref.channel, ts=ref.ts, digest=message.digest())

    def reply(self, ref: SlackRef, message: SlackMessage) -> str:
        self._counter += 1
        self.sent.append(SentMessage("reply", ref.channel, ref.ts, message))
        return f"1700000000.{self._counter:06d}"

    def upload(self, ref: SlackRef, filename: str, content: str, title: str) -> str:
        self._counter += 1
        self.uploads.append((ref.ts, filename, title, content))
        lines = content.count("\n")
        self.sent.append(
            SentMessage("upload", ref.channel, ref.ts, SlackMessage(text=f"{filename} ({lines} lines): {title}"))
        )
        return f"F{self._counter:08d}"

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self._counter += 1
        self.sent.append(SentMessage("ephemeral", channel, user, SlackMessage(text=text)))
