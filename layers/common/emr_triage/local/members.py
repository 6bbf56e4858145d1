"""Member accounts in a scenario: a second account on the embedded AWS (moto keeps each account's
resources apart, and credentials from STS AssumeRole act in the role's account), its log bucket and logs,
and the central stack's parameters that name it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# The member stack's external id in every scenario (the central stack's MemberExternalId parameter).
LOCAL_EXTERNAL_ID = "emr-triage-local-external-id"
MEMBER_ROLE_NAME = "emr-triage-member-read"


class MemberSpec(BaseModel):
    """A member account: its id, the name the routing file gives it, and its clusters' log location (the
    same prefix as the central stack's log_uri). Its log files are under ``accounts/<id>/logs/``."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^\d{12}$")]
    name: str
    log_uri: str


def create_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create a bucket in ``region`` (us-east-1 takes no location constraint, every other region needs one)."""
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def member_session(account: str, region: str) -> Any:
    """A boto3 session acting in ``account`` on moto: the member role assumed, as the functions do."""
    import boto3

    from emr_triage.aws.member_access import assumed_session

    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE_NAME}",
        RoleSessionName="emr-triage-scenario",
        ExternalId=LOCAL_EXTERNAL_ID,
    )["Credentials"]
    return assumed_session(credentials, region)


def seed_member_logs(
    members: list[MemberSpec], folder: Path, region: str, landing: set[tuple[str, str]]
) -> dict[tuple[str, str], Path]:
    """Each member's log bucket, created in its account, with its log files (those that land with their
    S3 event held back: returned, (bucket, key) → file)."""
    from emr_triage.logs.locations import normalise_log_uri, parse_s3_uri

    held_back: dict[tuple[str, str], Path] = {}
    for member in members:
        bucket, prefix = parse_s3_uri(normalise_log_uri(member.log_uri))
        s3 = member_session(member.id, region).client("s3")
        create_bucket(s3, bucket, region)
        logs = folder / "accounts" / member.id / "logs"
        for path in sorted(p for p in logs.rglob("*") if p.is_file()) if logs.is_dir() else []:
            key = (
                prefix.rstrip("/") + "/" + path.relative_to(logs).as_posix()
                if prefix
                else path.relative_to(logs).as_posix()
            )
            if (bucket, key) in landing:
                held_back[(bucket, key)] = path
                continue
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return held_back


def member_parameters(members: list[MemberSpec]) -> dict[str, str]:
    """The central stack's parameters for these member accounts (none: this account only)."""
    from emr_triage.logs.locations import parse_s3_uri

    if not members:
        return {}
    return {
        "MemberAccounts": ",".join(m.id for m in members),
        "MemberExternalId": LOCAL_EXTERNAL_ID,
        "MemberRoleName": MEMBER_ROLE_NAME,
        "MemberLogBuckets": ",".join(sorted({parse_s3_uri(m.log_uri)[0] for m in members})),
        "MemberAccountNames": ",".join(f"{m.id}={m.name}" for m in members),
    }
