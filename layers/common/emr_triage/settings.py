"""Each function's configuration: one pydantic model read from the environment through a cached getter.

The environment variables are set by template.yaml (Globals and each function) in Lambda, and by the
replay command locally, which resolves the same template. Nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from emr_triage.exceptions import SettingsError
from emr_triage.models.validation import describe_validation_error

SlackDelivery = Literal["secret", "env", "console", "webhook"]


# ASCII classes, as in the template's AllowedPattern (Java's \w is ASCII): pydantic's Rust regex engine
# compiles a Unicode \w under a bounded repeat into a large automaton (70 ms of every cold start for this one).
_NAME_CHARS = "[A-Za-z0-9_ .@/+-]"
_ACCOUNT_NAMES = rf"^(?:\d{{12}}={_NAME_CHARS}{{1,64}})?(?:,\d{{12}}={_NAME_CHARS}{{1,64}})*$"


class Settings(BaseModel):
    """Validated runtime configuration.

    ``slack_delivery`` chooses where Slack messages go: ``secret`` (Lambda: the bot token comes from
    Secrets Manager), ``env`` (local: ``SLACK_BOT_TOKEN``), ``console`` (local: rendered, not sent),
    ``webhook`` (an incoming webhook: its URL from the ``SLACK_TOKEN_SECRET_ID`` secret in Lambda, or
    ``SLACK_WEBHOOK_URL`` locally; one message per incident, no thread).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    incidents_table: str = Field(validation_alias="INCIDENTS_TABLE", min_length=3)
    log_bucket: str = Field(validation_alias="LOG_BUCKET", min_length=3)
    log_prefix: str = Field("", validation_alias="LOG_PREFIX")
    slack_channel: str = Field(validation_alias="SLACK_CHANNEL", min_length=1)
    slack_delivery: SlackDelivery = Field("secret", validation_alias="SLACK_DELIVERY")
    slack_token_secret_id: str | None = Field(None, validation_alias="SLACK_TOKEN_SECRET_ID")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_webhook_url: SecretStr | None = Field(None, validation_alias="SLACK_WEBHOOK_URL")
    # At most one Slack post (root message or thread reply) per channel per interval, across all
    # invocations (0: no pacing, as under the replay command). A new alert whose channel is backed up by
    # more than SLACK_STORM_AFTER_SECONDS is folded into the channel's latest alert instead of queueing.
    slack_post_interval_seconds: float = Field(1.2, ge=0, le=60, validation_alias="SLACK_POST_INTERVAL_SECONDS")
    slack_storm_after_seconds: float = Field(10.0, ge=0, le=600, validation_alias="SLACK_STORM_AFTER_SECONDS")
    # The interactive function (buttons on the alert, /emr-triage) is deployed: alerts carry buttons and
    # mutes are honoured. Its signing secret (Secrets Manager, or SLACK_SIGNING_SECRET locally), the
    # workspace and app its requests must come from (unset: not checked), and who may mute, unmute,
    # resolve and reopen: Slack user ids and user-group ids (S…), comma-separated (empty: anyone who can
    # see the alert's channel).
    slack_interactive: bool = Field(False, validation_alias="SLACK_INTERACTIVE")
    slack_signing_secret_id: str | None = Field(None, validation_alias="SLACK_SIGNING_SECRET_ID")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_team_id: str | None = Field(None, validation_alias="SLACK_TEAM_ID", pattern=r"^(?:T[A-Z0-9]{2,20})?$")
    slack_app_id: str | None = Field(None, validation_alias="SLACK_APP_ID", pattern=r"^(?:A[A-Z0-9]{2,20})?$")
    slack_deciders: str = Field("", validation_alias="SLACK_DECIDERS", pattern=r"^[A-Z0-9, ]*$")
    # How bolt runs a button's work after its acknowledgement: "lambda", the function invoking itself
    # asynchronously (deployed); "inline", in-process after the response (the replay command, tests).
    slack_lazy: Literal["lambda", "inline"] = Field("lambda", validation_alias="SLACK_LAZY")
    follow_up_queue_url: str | None = Field(None, validation_alias="FOLLOW_UP_QUEUE_URL")
    # How long after a failure its logs may still arrive, and how often they are looked for meanwhile.
    # (An interval of 0, used by the replay command, means one check, at once: "after the deadline".)
    logs_deadline_minutes: int = Field(15, ge=1, le=1440, validation_alias="LOGS_DEADLINE_MINUTES")
    follow_up_interval_seconds: int = Field(300, ge=0, le=900, validation_alias="FOLLOW_UP_INTERVAL_SECONDS")
    dead_letter_queue_url: str | None = Field(None, validation_alias="DEAD_LETTER_QUEUE_URL")
    # Read the driver (ApplicationMaster) log of YARN applications no step incident claims, and open an
    # incident when it shows the application failed: notebooks, orchestrators' spark-submit, long-running
    # clusters. Off: only steps, clusters and EMR Serverless job runs alert.
    detect_applications_outside_steps: bool = Field(True, validation_alias="DETECT_APPLICATIONS_OUTSIDE_STEPS")
    environment: str = Field("dev", validation_alias="ENVIRONMENT")
    incident_ttl_days: int = Field(90, ge=1, le=3650, validation_alias="INCIDENT_TTL_DAYS")
    log_read_max_bytes: int = Field(1 << 30, ge=1024, validation_alias="LOG_READ_MAX_BYTES")
    log_max_line_bytes: int = Field(1 << 20, ge=4096, le=64 << 20, validation_alias="LOG_MAX_LINE_BYTES")
    # The time budget of log reading in one invocation: it stops this many seconds before the Lambda
    # timeout (time to store the incident and post to Slack, with retries), and after at most
    # LOG_READ_MAX_SECONDS (unset: no limit of its own). A log cut short is flagged partial.
    log_read_reserve_seconds: float = Field(30.0, ge=5, le=600, validation_alias="LOG_READ_RESERVE_SECONDS")
    log_read_max_seconds: float | None = Field(None, gt=0, le=900, validation_alias="LOG_READ_MAX_SECONDS")
    rules_file: str | None = Field(None, validation_alias="EMR_TRIAGE_RULES_FILE")
    routing_file: str | None = Field(None, validation_alias="EMR_TRIAGE_ROUTING_FILE")
    region: str = Field("us-east-1", validation_alias="AWS_REGION")
    # Many accounts, one deployment: the stack's own account, and the read-only role every member account
    # has (its name and the external id the role's trust policy asks for). Unset: this account only.
    home_account: str | None = Field(None, validation_alias="HOME_ACCOUNT", pattern=r"^(?:\d{12})?$")
    member_role_name: str | None = Field(
        None, validation_alias="MEMBER_ROLE_NAME", pattern=r"^[A-Za-z0-9_+=,.@-]{0,64}$"
    )
    member_external_id: SecretStr | None = Field(None, validation_alias="MEMBER_EXTERNAL_ID")
    # "210987654321=prod-data,444455556666=ml-dev": the names member accounts' alerts show.
    member_account_names_text: str = Field(
        "",
        validation_alias="MEMBER_ACCOUNT_NAMES",
        pattern=_ACCOUNT_NAMES,
    )
    # Set by the replay command: queue handlers also return their outcomes, for it to print.
    replay: bool = Field(False, validation_alias="EMR_TRIAGE_REPLAY")

    @property
    def member_account_names(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.member_account_names_text.split(",") if item)
        return {account: name.strip() for account, name in pairs}

    @field_validator("log_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _slack_credentials_present(self) -> Settings:
        if self.slack_delivery == "secret" and not self.slack_token_secret_id:
            raise ValueError("SLACK_DELIVERY=secret needs SLACK_TOKEN_SECRET_ID (the Secrets Manager secret)")
        if self.slack_delivery == "env" and self.slack_bot_token is None:
            raise ValueError("SLACK_DELIVERY=env needs SLACK_BOT_TOKEN")
        if self.slack_delivery == "webhook" and not (self.slack_token_secret_id or self.slack_webhook_url):
            raise ValueError(
                "SLACK_DELIVERY=webhook needs SLACK_TOKEN_SECRET_ID (the secret holding the webhook URL) "
                "or, locally, SLACK_WEBHOOK_URL"
            )
        return self

    @property
    def deciders(self) -> frozenset[str]:
        """The user and user-group ids of SLACK_DECIDERS (empty: anyone in the alert's channel)."""
        return frozenset(part.strip() for part in self.slack_deciders.split(",") if part.strip())

    @property
    def follow_up_checks(self) -> int:
        """How many times an incident's logs are looked for after its failure (the last at the deadline)."""
        if self.follow_up_interval_seconds == 0:
            return 1
        return max(1, -(-self.logs_deadline_minutes * 60 // self.follow_up_interval_seconds))


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate settings from an environment mapping.

    Parameters
    ----------
    environ:
        Usually ``os.environ``. ``AWS_DEFAULT_REGION`` is used when ``AWS_REGION`` is unset.

    Returns
    -------
    Settings

    Raises
    ------
    SettingsError
        Naming every missing or invalid variable.
    """
    values = dict(environ)
    if "AWS_REGION" not in values and "AWS_DEFAULT_REGION" in values:
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"]
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(
            "invalid function configuration (environment variables set by template.yaml): "
            + describe_validation_error(exc, root="settings")
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, validated once and cached (``get_settings.cache_clear()`` in tests)."""
    return load_settings(os.environ)
