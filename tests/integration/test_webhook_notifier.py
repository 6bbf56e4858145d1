"""The incoming-webhook notifier against the fake Slack over HTTP (the real slack-sdk WebhookClient), and
the webhook URL read from Secrets Manager (moto)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from tests.fakes.slack_api import FakeSlack, Fault

from emr_triage.alerts.message import SlackMessage
from emr_triage.exceptions import DeliveryError, SlackConfigurationError
from emr_triage.slack.webhook import WebhookNotifier, parse_webhook_secret, webhook_url_from_secret

REGION = "us-east-1"
MESSAGE = SlackMessage(
    text="EMR step failed: nightly-etl",
    blocks=[
        {"type": "header", "text": {"type": "plain_text", "text": "EMR step failed: nightly-etl"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Diagnosis:* container killed by YARN"}},
    ],
)
HOOK = "https://hooks.slack.com/services/T0EMRTRIAG/B000000001/abcdefghijklmnopqrstuvwx"


def _notifier(url: str, timeout: int = 10) -> WebhookNotifier:
    return WebhookNotifier(lambda: url, timeout=timeout)


def _refused_url() -> str:
    """A webhook-shaped URL on a local port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T0EMRTRIAG/B000000009/s3cr3tw3bh00ks3cr3t"


def _assert_url_absent(url: str, exc: BaseException, *texts: str) -> None:
    secret = url.rsplit("/", 1)[-1]
    for text in (str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__), *texts):
        assert url not in text
        assert secret not in text


# -- delivery -----------------------------------------------------------------------------------------


def test_a_message_is_posted_with_its_text_and_blocks_and_no_unfurling(slack: FakeSlack) -> None:
    # Given a notifier on the workspace's incoming webhook
    notifier = _notifier(slack.webhook_url)
    # When a message is sent
    notifier.send(MESSAGE)
    # Then Slack received it once, text and blocks, with link and media previews off
    assert slack.webhook_posts == [
        {"text": MESSAGE.text, "blocks": MESSAGE.blocks, "unfurl_links": False, "unfurl_media": False}
    ]
    assert len(slack.webhook_calls()) == 1
    assert [m.text for m in slack.root_messages()] == [MESSAGE.text]


def test_rate_limited_post_is_retried_after_retry_after(slack: FakeSlack) -> None:
    # Given the webhook answers 429 with Retry-After once
    slack.fail_next("webhook", Fault(status=429, text="rate_limited", headers={"Retry-After": "1"}))
    # When a message is sent
    _notifier(slack.webhook_url).send(MESSAGE)
    # Then it was retried and posted once
    assert len(slack.webhook_calls()) == 2
    assert len(slack.webhook_posts) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_retried(slack: FakeSlack, status: int) -> None:
    # Given the webhook fails once with a 5xx
    slack.fail_next("webhook", Fault(status=status))
    # When a message is sent
    _notifier(slack.webhook_url).send(MESSAGE)
    # Then it was retried and posted once
    assert len(slack.webhook_calls()) == 2
    assert len(slack.webhook_posts) == 1


def test_a_persistent_server_error_is_a_delivery_error_after_two_retries(slack: FakeSlack) -> None:
    # Given the webhook answers 500 to every attempt
    slack.fail_next("webhook", *[Fault(status=500, text="internal_error")] * 3)
    # When a message is sent
    with pytest.raises(DeliveryError, match="HTTP 500 after 2 retries") as caught:
        _notifier(slack.webhook_url).send(MESSAGE)
    # Then it was tried three times and nothing was posted
    assert len(slack.webhook_calls()) == 3
    assert slack.webhook_posts == []
    _assert_url_absent(slack.webhook_url, caught.value)


def test_persistent_rate_limiting_is_a_delivery_error(slack: FakeSlack) -> None:
    # Given the webhook stays rate limited
    slack.fail_next("webhook", *[Fault(status=429, headers={"Retry-After": "0"})] * 3)
    # When a message is sent, then the failure is transient (the event is retried)
    with pytest.raises(DeliveryError, match="rate limited"):
        _notifier(slack.webhook_url).send(MESSAGE)
    assert len(slack.webhook_calls()) == 3


def test_a_timeout_is_a_delivery_error(slack: FakeSlack) -> None:
    # Given a webhook slower than the client's timeout
    slack.fail_next("webhook", *[Fault(delay=2.0)] * 3)
    # When a message is sent with a one-second timeout
    with pytest.raises(DeliveryError, match="could not deliver to the Slack incoming webhook") as caught:
        _notifier(slack.webhook_url, timeout=1).send(MESSAGE)
    # Then the error names the webhook, never its URL
    _assert_url_absent(slack.webhook_url, caught.value)


@pytest.mark.parametrize(
    ("fault", "error", "fix"),
    [
        (Fault(status=403, text="invalid_token"), "invalid_token", "create a new incoming webhook"),
        (Fault(status=410, text="channel_is_archived"), "channel_is_archived", "unarchive it"),
        (Fault(status=403, text="action_prohibited"), "action_prohibited", "ask them to allow the app"),
        (Fault(status=404, text="no_team"), "no_team", "store the whole URL"),
    ],
)
def test_webhook_configuration_errors_name_the_fix(slack: FakeSlack, fault: Fault, error: str, fix: str) -> None:
    # Given the webhook refuses for a reason that needs a person
    slack.fail_next("webhook", fault)
    # When a message is sent
    with pytest.raises(SlackConfigurationError) as caught:
        _notifier(slack.webhook_url).send(MESSAGE)
    # Then the error names Slack's code and what to do, not the URL, and it was not retried
    assert error in str(caught.value) and fix in str(caught.value)
    assert "the Slack incoming webhook" in str(caught.value)
    _assert_url_absent(slack.webhook_url, caught.value)
    assert len(slack.webhook_calls()) == 1


def test_a_removed_webhook_is_a_configuration_error(slack: FakeSlack) -> None:
    # Given the webhook was removed in Slack (its URL now answers 404 no_service)
    slack.remove_webhook(slack.webhook_url)
    # When a message is sent
    with pytest.raises(SlackConfigurationError, match="no_service") as caught:
        _notifier(slack.webhook_url).send(MESSAGE)
    # Then the error says to create a new webhook and store its URL
    assert "create a new incoming webhook in the Slack app and store its URL in the secret" in str(caught.value)


@pytest.mark.parametrize("error", ["invalid_payload", "too_many_attachments"])
def test_a_payload_slack_rejects_is_a_delivery_error_naming_our_bug(slack: FakeSlack, error: str) -> None:
    # Given the webhook rejects our payload
    slack.fail_next("webhook", Fault(status=400, text=error))
    # When a message is sent
    with pytest.raises(DeliveryError) as caught:
        _notifier(slack.webhook_url).send(MESSAGE)
    # Then the error names Slack's code as a bug in our payload, and it was not retried
    assert error in str(caught.value) and "a bug in the payload" in str(caught.value)
    assert len(slack.webhook_calls()) == 1


def test_an_empty_message_is_refused_by_the_fake_as_by_slack(slack: FakeSlack) -> None:
    # Given a message with neither text nor blocks
    # When it is sent, then Slack's no_text is reported as our bug
    with pytest.raises(DeliveryError, match="no_text"):
        _notifier(slack.webhook_url).send(SlackMessage(text=""))
    assert slack.webhook_posts == []


def test_the_url_never_appears_when_the_connection_is_refused(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a webhook URL where nothing listens, and every logger recording
    url = _refused_url()
    caplog.set_level(logging.DEBUG)
    # When a message is sent (and the connection errors outlast the retries)
    with pytest.raises(DeliveryError, match="could not deliver to the Slack incoming webhook") as caught:
        _notifier(url).send(MESSAGE)
    # Then the error says why without the URL, in its text, its cause and its context, and no log has it
    assert "Connection refused" in str(caught.value) or "ConnectionRefusedError" in str(caught.value)
    assert caught.value.__cause__ is None
    captured = capsys.readouterr()
    _assert_url_absent(url, caught.value, caplog.text, captured.out, captured.err)


def test_the_url_never_appears_when_the_webhook_is_gone(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a webhook URL the workspace does not know (404 no_service), and every logger recording
    url = slack.webhook_url
    slack.remove_webhook(url)
    caplog.set_level(logging.DEBUG)
    # When a message is sent
    with pytest.raises(SlackConfigurationError) as caught:
        _notifier(url).send(MESSAGE)
    # Then neither the error, its cause nor any log line holds the URL
    captured = capsys.readouterr()
    _assert_url_absent(url, caught.value, caplog.text, captured.out, captured.err)


def test_a_malformed_url_is_a_delivery_error_that_does_not_quote_it() -> None:
    # Given a provider returning something that is not an http(s) URL (urllib and slack-sdk quote it)
    url = "hooks.slack.com/services/T0EMRTRIAG/B000000001/n0ts0s3cr3tatall"
    # When a message is sent, then the error does not repeat it
    with pytest.raises(DeliveryError) as caught:
        _notifier(url).send(MESSAGE)
    _assert_url_absent(url, caught.value)


def test_a_rotated_url_is_used_without_a_new_notifier(slack: FakeSlack) -> None:
    # Given a notifier whose URL provider (the cached secret) returns the first webhook
    current = [slack.webhook_url]
    notifier = WebhookNotifier(lambda: current[0])
    notifier.send(MESSAGE)
    # When the secret is rotated to a new webhook and the old one removed
    current[0] = slack.add_webhook()
    slack.remove_webhook(slack.webhook_url)
    notifier.send(MESSAGE)
    # Then the second message went to the new webhook
    first, second = slack.webhook_calls()
    assert first.path != second.path
    assert current[0].endswith(second.path)
    assert len(slack.webhook_posts) == 2


# -- the secret ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        HOOK,
        f"  {HOOK}\n",
        json.dumps({"webhook_url": HOOK}),
        json.dumps({"url": HOOK}),
    ],
)
def test_the_secret_holds_the_url_plain_or_as_json(secret: str) -> None:
    assert parse_webhook_secret(secret, "emr-triage/webhook") == HOOK


def test_a_slack_gov_webhook_is_accepted() -> None:
    gov = "https://hooks.slack-gov.com/services/T0/B0/abcdefghijklmnopqrstuvwx"
    assert parse_webhook_secret(gov, "emr-triage/webhook") == gov


@pytest.mark.parametrize(
    "secret",
    [
        "xoxb-1111-2222-s3cr3tb0tt0k3n",
        "http://hooks.slack.com/services/T0/B0/s3cr3tplainhttp",
        "https://hooks.slack.com.attacker.example/services/T0/B0/s3cr3tlookalike",
        "https://example.com/services/T0/B0/s3cr3tothersite",
        "https://hooks.slack.com/",
        "https://hooks.slack.com/services/T0/B0/s3cr3t with space",
        json.dumps({"token": "https://hooks.slack.com/services/T0/B0/s3cr3twrongkey"}),
        json.dumps({"webhook_url": 42}),
        '{"webhook_url": "https://hooks.slack.com/services/T0/B0/s3cr3tbrokenjson"',
        "",
    ],
)
def test_anything_else_is_refused_without_echoing_the_value(secret: str) -> None:
    # Given a secret that holds no webhook URL
    # When it is parsed
    with pytest.raises(SlackConfigurationError) as caught:
        parse_webhook_secret(secret, "emr-triage/webhook")
    # Then the error names the secret and the expected form, never the value
    message = str(caught.value)
    assert "emr-triage/webhook" in message and '{"webhook_url": ' in message
    assert "s3cr3t" not in message and "xoxb-1111" not in message


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.mark.usefixtures("aws")
def test_the_url_is_read_from_secrets_manager() -> None:
    # Given a secret holding the webhook URL as JSON
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="emr-triage/webhook", SecretString=json.dumps({"webhook_url": HOOK})
    )["ARN"]
    # When the URL is read, then it is the one stored
    assert webhook_url_from_secret(arn) == HOOK


@pytest.mark.usefixtures("aws")
def test_a_missing_secret_is_a_configuration_error_naming_it() -> None:
    # Given no such secret
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-AbCdEf"
    # When the URL is read, then the error names the secret and what to check
    with pytest.raises(SlackConfigurationError, match="nope-AbCdEf") as caught:
        webhook_url_from_secret(arn)
    assert "exists in this region" in str(caught.value)


@pytest.mark.usefixtures("aws")
def test_a_secret_without_a_webhook_url_is_a_configuration_error_that_hides_it() -> None:
    # Given a secret holding a bot token instead of a webhook URL
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="emr-triage/webhook", SecretString="xoxb-1111-2222-s3cr3tb0tt0k3n"
    )
    # When the URL is read, then the error says what to store, not what is there
    with pytest.raises(SlackConfigurationError, match="does not hold a Slack incoming webhook URL") as caught:
        webhook_url_from_secret("emr-triage/webhook")
    assert "s3cr3t" not in str(caught.value)
