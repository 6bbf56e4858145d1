"""Where EMR writes logs in S3, and what an object key says about the log in it."""

from __future__ import annotations

import pytest

from emr_triage.logs.locations import (
    LogObject,
    identify_log_object,
    normalise_log_uri,
    parse_s3_uri,
    serverless_driver_log,
    step_log_prefix,
)

BUCKET = "acme-emr-logs"
CLUSTER = "j-3ANP7YJ2WQ0LC"
STEP = "s-3H8ZKQW0EXAMP"
APP = "application_1763604005123_0042"


# ---------------------------------------------------------------------------------------------------
# Identifying log objects from their keys
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("elasticmapreduce/", f"elasticmapreduce/{CLUSTER}/steps/{STEP}/stderr.gz"),
        ("", f"{CLUSTER}/steps/{STEP}/stderr.gz"),
        ("", f"elasticmapreduce/{CLUSTER}/steps/{STEP}/stderr.gz"),
    ],
    ids=["under-prefix", "no-prefix-at-root", "no-prefix-nested"],
)
def test_step_log_key_is_identified(prefix: str, key: str) -> None:
    # Given a step's stderr key
    # When it is identified
    obj = identify_log_object(BUCKET, key, prefix)
    # Then it is a step log of that cluster and step
    assert obj == LogObject(bucket=BUCKET, key=key, kind="step", cluster_id=CLUSTER, step_id=STEP, file="stderr.gz")
    assert obj.uri == f"s3://{BUCKET}/{key}"


@pytest.mark.parametrize(
    ("file", "weight"),
    [("stderr.gz", 3), ("controller.gz", 2), ("syslog.gz", 2), ("stdout.gz", 2)],
)
def test_step_log_weight_favours_stderr(file: str, weight: int) -> None:
    # Given a step's log files
    obj = identify_log_object(BUCKET, f"logs/{CLUSTER}/steps/{STEP}/{file}", "logs/")
    # Then stderr (spark-submit and the client-mode driver) counts most
    assert obj is not None
    assert obj.file == file
    assert obj.weight == weight


@pytest.mark.parametrize(
    ("container", "number", "is_am"),
    [
        ("container_1763604005123_0042_01_000001", 1, True),
        ("container_e03_1763604005123_0042_01_000001", 1, True),
        ("container_1763604005123_0042_02_000001", 1, True),  # second attempt's AM
        ("container_1763604005123_0042_01_000002", 2, False),
        ("container_e127_1763604005123_0042_01_000017", 17, False),
    ],
)
@pytest.mark.parametrize("prefix", ["elasticmapreduce/", ""])
def test_container_log_key_is_identified(prefix: str, container: str, number: int, is_am: bool) -> None:
    # Given a YARN container's stderr key, with or without an epoch, under or without a prefix
    key = f"{prefix}{CLUSTER}/containers/{APP}/{container}/stderr.gz"
    # When it is identified
    obj = identify_log_object(BUCKET, key, prefix)
    # Then it is that application's container, and ..._000001 is the ApplicationMaster (the driver in cluster mode)
    assert obj == LogObject(
        bucket=BUCKET,
        key=key,
        kind="container",
        cluster_id=CLUSTER,
        file="stderr.gz",
        application_id=APP,
        container_id=container,
        container_number=number,
    )
    assert obj.is_application_master is is_am
    assert obj.weight == (3 if is_am else 1)


@pytest.mark.parametrize(
    "key",
    [
        # Outside the configured prefix
        f"other-prefix/{CLUSTER}/steps/{STEP}/stderr.gz",
        f"{CLUSTER}/steps/{STEP}/stderr.gz",
        # Node and daemon logs
        f"elasticmapreduce/{CLUSTER}/node/i-0123456789abcdef0/daemons/hadoop-yarn/yarn-yarn-nodemanager-ip.log.gz",
        f"elasticmapreduce/{CLUSTER}/node/i-0123456789abcdef0/applications/hadoop-yarn/{APP}/"
        "container_1763604005123_0042_01_000001/stderr.gz",
        f"elasticmapreduce/{CLUSTER}/node/i-0123456789abcdef0/bootstrap-actions/1/stderr.gz",
        # Folders and other shapes
        f"elasticmapreduce/{CLUSTER}/steps/{STEP}/",
        f"elasticmapreduce/{CLUSTER}/containers/{APP}/container_1763604005123_0042_01_000001/",
        f"elasticmapreduce/{CLUSTER}/steps/{STEP}/nested/stderr.gz",
        f"elasticmapreduce/{CLUSTER}/containers/{APP}/stderr.gz",
        f"elasticmapreduce/{CLUSTER}/containers/{APP}/not_a_container/stderr.gz",
        "elasticmapreduce/j-lowercase/steps/s-ABC/stderr.gz",
        "elasticmapreduce/",
        "",
    ],
)
def test_other_keys_are_not_ours(key: str) -> None:
    # Given a key that is not a step or container log under the prefix
    # Then it is not identified
    assert identify_log_object(BUCKET, key, "elasticmapreduce/") is None


# ---------------------------------------------------------------------------------------------------
# S3 URIs
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://acme-emr-logs/elasticmapreduce/", ("acme-emr-logs", "elasticmapreduce/")),
        ("s3n://acme-emr-logs/elasticmapreduce", ("acme-emr-logs", "elasticmapreduce")),
        ("s3a://acme-emr-logs/a/b/c.gz", ("acme-emr-logs", "a/b/c.gz")),
        ("s3://acme-emr-logs", ("acme-emr-logs", "")),
        ("s3://acme-emr-logs/", ("acme-emr-logs", "")),
        ("  s3://acme-emr-logs/x/  ", ("acme-emr-logs", "x/")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "https://acme-emr-logs.s3.amazonaws.com/x/",
        "acme-emr-logs/x/",
        "s3:///x/",
        "s3://",
        "hdfs:///logs/",
        "",
        "gs://b/x",
    ],
)
def test_parse_s3_uri_rejects_non_s3_uris(uri: str) -> None:
    # Given something that is not an S3 URI
    # Then the error says what was expected
    with pytest.raises(ValueError, match=r"not an S3 URI: .* \(expected s3://bucket/prefix/\)"):
        parse_s3_uri(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3n://acme-emr-logs/elasticmapreduce", "s3://acme-emr-logs/elasticmapreduce/"),
        ("s3a://acme-emr-logs/elasticmapreduce/", "s3://acme-emr-logs/elasticmapreduce/"),
        ("s3://acme-emr-logs/elasticmapreduce///", "s3://acme-emr-logs/elasticmapreduce/"),
        ("s3://acme-emr-logs/a/b", "s3://acme-emr-logs/a/b/"),
        ("s3://acme-emr-logs", "s3://acme-emr-logs/"),
        ("s3n://acme-emr-logs/", "s3://acme-emr-logs/"),
    ],
)
def test_normalise_log_uri(uri: str, expected: str) -> None:
    # Given a LogUri as EMR reports it (often s3n://, with or without a slash)
    # Then it is stored in one form
    assert normalise_log_uri(uri) == expected
    assert normalise_log_uri(expected) == expected


@pytest.mark.parametrize(
    ("log_uri", "expected"),
    [
        ("s3n://acme-emr-logs/elasticmapreduce", (BUCKET, f"elasticmapreduce/{CLUSTER}/steps/{STEP}/")),
        ("s3://acme-emr-logs/elasticmapreduce//", (BUCKET, f"elasticmapreduce/{CLUSTER}/steps/{STEP}/")),
        ("s3://acme-emr-logs", (BUCKET, f"{CLUSTER}/steps/{STEP}/")),
    ],
)
def test_step_log_prefix(log_uri: str, expected: tuple[str, str]) -> None:
    # Given a cluster's LogUri
    # Then the step's logs are under <LogUri>/<cluster>/steps/<step>/
    assert step_log_prefix(log_uri, CLUSTER, STEP) == expected


def test_step_log_prefix_keys_are_identified_back() -> None:
    # Given the prefix computed for a step
    bucket, prefix = step_log_prefix("s3n://acme-emr-logs/elasticmapreduce/", CLUSTER, STEP)
    # Then a file under it is identified as that step's log
    obj = identify_log_object(bucket, prefix + "controller.gz", "elasticmapreduce/")
    assert obj is not None
    assert (obj.cluster_id, obj.step_id, obj.file) == (CLUSTER, STEP, "controller.gz")


@pytest.mark.parametrize(
    ("log_uri", "expected_key"),
    [
        ("s3://acme-emr-logs/serverless", "serverless/applications/00fabc123/jobs/00fdef456/SPARK_DRIVER/stderr.gz"),
        ("s3a://acme-emr-logs/serverless/", "serverless/applications/00fabc123/jobs/00fdef456/SPARK_DRIVER/stderr.gz"),
        ("s3://acme-emr-logs/", "applications/00fabc123/jobs/00fdef456/SPARK_DRIVER/stderr.gz"),
    ],
)
def test_serverless_driver_log(log_uri: str, expected_key: str) -> None:
    # Given an EMR Serverless job run's log URI
    # Then the driver's stderr is at <logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/stderr.gz
    assert serverless_driver_log(log_uri, "00fabc123", "00fdef456") == (BUCKET, expected_key)


def test_path_helpers_reject_non_s3_uris() -> None:
    with pytest.raises(ValueError, match="not an S3 URI"):
        step_log_prefix("hdfs:///var/log/emr", CLUSTER, STEP)
    with pytest.raises(ValueError, match="not an S3 URI"):
        serverless_driver_log("/tmp/logs", "00fabc123", "00fdef456")
