"""Configuration is one validated model; errors name the environment variables."""

from __future__ import annotations

import pytest

from emr_triage.exceptions import SettingsError
from emr_triage.settings import get_settings, load_settings

LAMBDA = {
    "INCIDENTS_TABLE": "emr-triage-incidents",
    "LOG_BUCKET": "acme-emr-logs",
    "LOG_PREFIX": "elasticmapreduce",
    "SLACK_CHANNEL": "#alerts",
    "SLACK_DELIVERY": "secret",
    "SLACK_TOKEN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def test_lambda_environment_is_valid_and_normalised() -> None:
    settings = load_settings(LAMBDA)
    assert settings.log_prefix == "elasticmapreduce/"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.region == "eu-west-1"
    assert settings.incident_ttl_days == 90


def test_missing_variables_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"SLACK_DELIVERY": "console"})
    message = str(caught.value)
    for name in ("INCIDENTS_TABLE", "LOG_BUCKET", "SLACK_CHANNEL"):
        assert name in message


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"SLACK_TOKEN_SECRET_ID": ""}, "SLACK_DELIVERY=secret needs SLACK_TOKEN_SECRET_ID"),
        ({"SLACK_DELIVERY": "env"}, "SLACK_DELIVERY=env needs SLACK_BOT_TOKEN"),
        ({"SLACK_DELIVERY": "carrier-pigeon"}, "SLACK_DELIVERY"),
        ({"INCIDENT_TTL_DAYS": "0"}, "INCIDENT_TTL_DAYS"),
    ],
)
def test_invalid_combinations_say_what_to_set(changes: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings({**LAMBDA, **changes})


def test_the_bot_token_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({**LAMBDA, "SLACK_DELIVERY": "env", "SLACK_BOT_TOKEN": "xoxb-very-secret"})
    assert "xoxb-very-secret" not in repr(settings) and "xoxb-very-secret" not in str(settings.model_dump())


def test_get_settings_is_validated_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in LAMBDA.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    first = get_settings()
    monkeypatch.setenv("INCIDENTS_TABLE", "changed")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().incidents_table == "changed"
    get_settings.cache_clear()
