"""Lazy, cached boto3 clients. Nothing is created at import time (moto must start first; cold start
pays for every client), and every client shares one retry policy."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from emr_triage.exceptions import TransientError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_emr_serverless import EMRServerlessClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# Error codes that mean "try again later" across the services we call.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionConflictException",
    }
)


def client_config() -> Any:
    """Retries, timeouts and user agent of every client (member accounts' too)."""
    from botocore.config import Config

    # total_max_attempts counts the first attempt; botocore's max_attempts would add one more (6 in all).
    return Config(
        retries={"mode": "standard", "total_max_attempts": 5},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="emr-triage",
    )


@cache
def _client(service: str, region: str | None) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name=region, config=client_config())  # type: ignore[call-overload]


def sts(region: str | None = None) -> Any:
    """STS (AssumeRole into a member account's read-only role)."""
    return _client("sts", region)


def reset_clients() -> None:
    """Forget cached clients (tests, and the replay command between embedded and real AWS)."""
    _client.cache_clear()


def ec2(region: str | None = None) -> Any:
    """EC2 (only DescribeInstances: which EMR cluster a Spot instance belongs to)."""
    return _client("ec2", region)


def emr(region: str | None = None) -> EMRClient:
    client: EMRClient = _client("emr", region)
    return client


def emr_containers(region: str | None = None) -> Any:
    """EMR on EKS (DescribeJobRun, DescribeVirtualCluster)."""
    return _client("emr-containers", region)


def emr_serverless(region: str | None = None) -> EMRServerlessClient:
    client: EMRServerlessClient = _client("emr-serverless", region)
    return client


def s3(region: str | None = None) -> S3Client:
    client: S3Client = _client("s3", region)
    return client


def dynamodb(region: str | None = None) -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", region)
    return client


def sqs(region: str | None = None) -> SQSClient:
    client: SQSClient = _client("sqs", region)
    return client


def cloudformation(region: str | None = None) -> CloudFormationClient:
    client: CloudFormationClient = _client("cloudformation", region)
    return client


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ('' if absent)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx and connection/timeouts: worth retrying the whole event."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in TRANSIENT_ERROR_CODES or status >= 500
    return False


def lookup_problem(exc: Exception, action: str, what: str) -> str:
    """Turn a non-transient AWS error into a sentence naming the fix; re-raise transient ones."""
    from botocore.exceptions import ClientError

    if is_transient(exc):
        raise TransientError(f"{action} for {what} failed transiently ({exc}); the event will be retried") from exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            return f"not allowed to call {action} for {what}: grant it to the function's role (template.yaml does)"
        if code in ("InvalidRequestException", "ResourceNotFoundException", "ValidationException"):
            message = exc.response["Error"].get("Message", code)
            return f"{action}: {what} was not found in this account and region ({message})"
        return f"{action} for {what} failed: {code}: {exc.response['Error'].get('Message', '')}"
    raise exc
