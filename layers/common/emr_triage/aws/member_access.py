"""A member account's EMR and S3, through the read-only role its member stack created
(``emr_triage/deploy/member-template.yaml``): assumed with the external id, credentials kept per account
until shortly before they expire, one gateway and log store per account per warm function."""

from __future__ import annotations

import time
from typing import Any

from emr_triage.aws.emr import BotoEmrGateway
from emr_triage.aws.s3 import S3LogStore
from emr_triage.observability import logger

_SESSION_SECONDS = 3600
_RENEW_BEFORE_SECONDS = 300


def assumed_session(credentials: Any, region: str) -> Any:
    """A boto3 session acting with the ``Credentials`` STS AssumeRole returned."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


class AssumedRoleAccess:
    """:class:`emr_triage.ports.MemberAccounts` over STS AssumeRole."""

    def __init__(self, role_name: str, external_id: str | None, region: str, partition: str = "aws") -> None:
        self._role_name = role_name
        self._external_id = external_id
        self._region = region
        self._partition = partition
        self._accounts: dict[str, tuple[float, BotoEmrGateway, S3LogStore]] = {}

    def role_arn(self, account: str) -> str:
        return f"arn:{self._partition}:iam::{account}:role/{self._role_name}"

    def emr(self, account: str) -> BotoEmrGateway:
        return self._access(account)[1]

    def logs(self, account: str) -> S3LogStore:
        return self._access(account)[2]

    def _access(self, account: str) -> tuple[float, BotoEmrGateway, S3LogStore]:
        kept = self._accounts.get(account)
        if kept is not None and time.time() < kept[0]:
            return kept
        expires, client = self._session(account)
        access = (
            expires,
            BotoEmrGateway(
                emr=client("emr"),
                emr_serverless=client("emr-serverless"),
                emr_containers=client("emr-containers"),
                ec2=client("ec2"),
            ),
            S3LogStore(client("s3")),
        )
        self._accounts[account] = access
        return access

    def _session(self, account: str) -> tuple[float, Any]:
        """Credentials for the account's role: (renew-by time, a client factory). A role that cannot be
        assumed raises: the event is retried, then dead-lettered with the reason (a missing member stack or
        a wrong external id is fixed there, and the event replayed)."""
        from emr_triage.aws import clients

        request: dict[str, Any] = {
            "RoleArn": self.role_arn(account),
            "RoleSessionName": "emr-triage",
            "DurationSeconds": _SESSION_SECONDS,
        }
        if self._external_id:
            request["ExternalId"] = self._external_id
        credentials = clients.sts(self._region).assume_role(**request)["Credentials"]
        logger.info("member account role assumed", account=account, role=self._role_name)
        session = assumed_session(credentials, self._region)

        def client(service: str) -> Any:
            return session.client(service, config=clients.client_config())

        return time.time() + _SESSION_SECONDS - _RENEW_BEFORE_SECONDS, client
