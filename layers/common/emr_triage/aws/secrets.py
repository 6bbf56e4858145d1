"""The Slack credential (a bot token, or an incoming webhook URL) from Secrets Manager."""

from __future__ import annotations

import json

from emr_triage.aws import clients
from emr_triage.exceptions import SlackConfigurationError, TransientError

SECRET_MAX_AGE_SECONDS = 300


def read_secret(secret_id: str, what: str) -> str:
    """The secret string, through Powertools parameters (cached 5 minutes, so a rotated secret is picked
    up without a cold start).

    Parameters
    ----------
    secret_id:
        The secret's name or ARN.
    what:
        What the secret holds, for the error message ("the Slack token").

    Raises
    ------
    TransientError
        Secrets Manager did not answer (throttled, 5xx, unreachable) after botocore's retries: the event
        is retried.
    SlackConfigurationError
        The secret cannot be read (missing, access denied); the message names it and what to check.
    """
    from aws_lambda_powertools.utilities import parameters

    try:
        secret = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools wraps every failure in GetParameterError, raised while handling botocore's: an outage
        # is not a configuration problem (and must not send the operator looking for a missing secret).
        cause = exc.__cause__ or exc.__context__
        if cause is not None and clients.is_transient(cause):
            raise TransientError(
                f"could not read {what} from Secrets Manager secret {secret_id}: Secrets Manager did not answer "
                f"({type(cause).__name__}: {cause}); the event will be retried"
            ) from exc
        raise SlackConfigurationError(
            f"could not read {what} from Secrets Manager secret {secret_id}: {str(exc).rstrip('.')}. "
            "Check that the secret exists in this region and that SlackTokenSecretArn in template.yaml names it"
        ) from exc
    return str(secret)


def secret_value(secret: str, keys: tuple[str, ...]) -> str:
    """The credential in a secret string: the string itself, or, when it is a JSON object, the first of
    ``keys`` that holds a non-empty string ("" when none does, for the caller to reject)."""
    value = secret.strip()
    if not value.startswith("{"):
        return value
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    return next((data[key] for key in keys if isinstance(data.get(key), str) and data[key]), "")
