"""The concrete adapters a handler uses by default, built lazily once per process.

Handlers call :func:`get_dependencies`; tests and the replay command call :func:`reset` after changing
the environment (moto must be active before any client exists).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from emr_triage.analysis.catalogue import Catalogue, get_catalogue
from emr_triage.aws.clients import reset_clients
from emr_triage.aws.dead_letter import SqsDeadLetterSink
from emr_triage.aws.emr import BotoEmrGateway
from emr_triage.aws.follow_ups import SqsFollowUpQueue
from emr_triage.aws.incident_store import DynamoIncidentRepository
from emr_triage.aws.member_access import AssumedRoleAccess
from emr_triage.aws.pacing import DynamoPostPacer
from emr_triage.aws.run_store import DynamoRunStore
from emr_triage.aws.s3 import S3LogStore
from emr_triage.aws.secrets import read_secret, secret_value
from emr_triage.aws.slack_state import DynamoSlackState
from emr_triage.exceptions import CatalogueError, SlackConfigurationError
from emr_triage.observability import count, logger
from emr_triage.ports import (
    Dependencies,
    MemberAccounts,
    Notifier,
    PostPacer,
)
from emr_triage.settings import Settings, get_settings
from emr_triage.slack.notifier import ConsoleNotifier, SlackWebNotifier

_TOKEN_KEYS = ("bot_token", "SLACK_BOT_TOKEN", "slack_bot_token", "token")


def parse_slack_secret(secret: str, secret_id: str) -> str:
    """The bot token inside a secret: the plain token, or JSON with a ``bot_token`` key.

    Raises
    ------
    SlackConfigurationError
        The secret holds no ``xox…`` token (the message never contains the secret's value).
    """
    value = secret_value(secret, _TOKEN_KEYS)
    if not value.startswith("xox"):
        raise SlackConfigurationError(
            f"secret {secret_id} does not hold a Slack bot token: store the Bot User OAuth Token (xoxb-...) "
            'as the secret string, or as JSON {"bot_token": "xoxb-..."}'
        )
    return value


def slack_token_from_secret(secret_id: str) -> str:
    """Read the bot token from Secrets Manager through Powertools parameters (cached 5 minutes)."""
    return parse_slack_secret(read_secret(secret_id, "the Slack token"), secret_id)


@lru_cache(maxsize=1)
def console_notifier() -> ConsoleNotifier:
    """The process-wide console notifier (the replay command reads what it kept)."""
    return ConsoleNotifier()


def build_notifier(settings: Settings) -> Notifier:
    if settings.slack_delivery == "console":
        return console_notifier()
    if settings.slack_delivery == "webhook":
        from emr_triage.slack.webhook import WebhookNotifier, webhook_url_from_secret

        if settings.slack_webhook_url is not None:
            url = settings.slack_webhook_url.get_secret_value()
            return WebhookNotifier(lambda: url)
        webhook_secret = settings.slack_token_secret_id or ""
        return WebhookNotifier(lambda: webhook_url_from_secret(webhook_secret))
    if settings.slack_delivery == "env":
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        return SlackWebNotifier(lambda: token, settings.slack_api_url)
    secret_id = settings.slack_token_secret_id or ""
    return SlackWebNotifier(lambda: slack_token_from_secret(secret_id), settings.slack_api_url)


def signing_secret(settings: Settings) -> str:
    """The Slack app's signing secret: SLACK_SIGNING_SECRET locally, else its Secrets Manager secret
    (the plain secret, or JSON with a ``signing_secret`` key; cached 5 minutes by Powertools).

    Raises
    ------
    SlackConfigurationError
        Neither is configured, or the secret holds nothing usable.
    """
    if settings.slack_signing_secret is not None:
        return settings.slack_signing_secret.get_secret_value()
    if not settings.slack_signing_secret_id:
        raise SlackConfigurationError(
            "the interactive function needs the Slack app's signing secret: set SlackSigningSecretArn (a "
            "Secrets Manager secret holding it) or, locally, SLACK_SIGNING_SECRET"
        )
    secret = secret_value(
        read_secret(settings.slack_signing_secret_id, "the Slack signing secret"), ("signing_secret",)
    )
    if len(secret) < 16:
        raise SlackConfigurationError(
            f"secret {settings.slack_signing_secret_id} does not hold a Slack signing secret: store the app's "
            'Signing Secret (Basic Information) as the secret string, or as JSON {"signing_secret": "..."}'
        )
    return secret


def bot_token(settings: Settings) -> str:
    """The bot token slack-bolt is built with (our listeners call Slack through the notifier)."""
    if settings.slack_delivery == "env" and settings.slack_bot_token is not None:
        return settings.slack_bot_token.get_secret_value()
    if settings.slack_delivery == "secret" and settings.slack_token_secret_id:
        return slack_token_from_secret(settings.slack_token_secret_id)
    return "xoxb-not-used"  # console delivery: nothing is sent to Slack


@lru_cache(maxsize=1)
def slack_state() -> DynamoSlackState:
    """Mutes and the interaction ledger, in the incidents table."""
    return DynamoSlackState(get_settings().incidents_table)


def usergroup_members(notifier: Notifier) -> Callable[[str], frozenset[str]]:
    """Who is in a user group, asked of Slack (kept 5 minutes per group); nobody without a bot token."""
    asked: dict[str, tuple[float, frozenset[str]]] = {}

    def members(group: str) -> frozenset[str]:
        if not isinstance(notifier, SlackWebNotifier):
            return frozenset()
        now = time.monotonic()
        if group not in asked or now - asked[group][0] > 300:
            asked[group] = (now, notifier.usergroup_members(group))
        return asked[group][1]

    return members


def _catalogue(rules_file: str | None) -> Catalogue:
    """Ours plus the user's rules; if the user's file is bad, ours alone, loudly: a typo in a rules file
    must not stop every alert (`make test` and `emr-triage analyze --rules` reject it before deploy)."""
    try:
        return get_catalogue(rules_file)
    except CatalogueError as exc:
        logger.error("custom rules rejected; using the built-in catalogue", extra={"problem": str(exc)})
        count("CustomRulesRejected")
        return get_catalogue(None)


@lru_cache(maxsize=1)
def get_dependencies() -> Dependencies:
    """The production wiring: DynamoDB, EMR, S3, Slack, SQS, as the settings say."""
    settings = get_settings()
    return Dependencies(
        settings=settings,
        repository=DynamoIncidentRepository(settings.incidents_table),
        emr=BotoEmrGateway(),
        logs=S3LogStore(),
        notifier=build_notifier(settings),
        catalogue=_catalogue(settings.rules_file),
        dead_letters=SqsDeadLetterSink(settings.dead_letter_queue_url) if settings.dead_letter_queue_url else None,
        follow_ups=SqsFollowUpQueue(settings.follow_up_queue_url) if settings.follow_up_queue_url else None,
        pacer=_pacer(settings),
        mutes=DynamoSlackState(settings.incidents_table) if settings.slack_interactive else None,
        runs=DynamoRunStore(settings.incidents_table),
        members=_members(settings),
    )


def _members(settings: Settings) -> MemberAccounts | None:
    """Member accounts' EMR and S3 through their read-only role, when the stack has member accounts."""
    if not settings.member_role_name:
        return None
    external_id = settings.member_external_id.get_secret_value() if settings.member_external_id else None
    partition = "aws-cn" if settings.region.startswith("cn-") else "aws-us-gov" if "-gov-" in settings.region else "aws"
    return AssumedRoleAccess(settings.member_role_name, external_id, settings.region, partition)


def _pacer(settings: Settings) -> PostPacer | None:
    """Pace posts to a real Slack (not the console), unless the interval is 0."""
    if settings.slack_delivery == "console" or settings.slack_post_interval_seconds <= 0:
        return None
    return DynamoPostPacer(settings.incidents_table, settings.slack_post_interval_seconds)


def reset_settings() -> None:
    """Re-read settings (and what is built from them) on the next call: a new function environment."""
    get_settings.cache_clear()
    get_dependencies.cache_clear()
    get_catalogue.cache_clear()


def reset() -> None:
    """Forget every cached setting, client, catalogue, message and secret (tests; replay between runs)."""
    from aws_lambda_powertools.utilities import parameters

    from emr_triage.observability import metrics

    reset_settings()
    console_notifier.cache_clear()
    slack_state.cache_clear()
    # With metrics disabled, Powertools neither prints nor clears them: drop what accumulated.
    metrics.clear_metrics()
    reset_clients()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
