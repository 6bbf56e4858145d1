"""Redaction: credentials never leave the function, and ordinary log text survives untouched."""

from __future__ import annotations

import pytest

from emr_triage.analysis.redact import redact, redact_lines

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (log text, the secret that must disappear, what the redacted text must read)
REDACTED = [
    pytest.param(
        "23/05/04 10:00:00 INFO S3: using credentials AKIAIOSFODNN7EXAMPLE for s3://acme-data",
        "AKIAIOSFODNN7EXAMPLE",
        "23/05/04 10:00:00 INFO S3: using credentials [REDACTED AWS KEY ID] for s3://acme-data",
        id="long-term-access-key-id",
    ),
    pytest.param(
        "aws_access_key_id=ASIAY34FZKBOKMUTVV7A",
        "ASIAY34FZKBOKMUTVV7A",
        "aws_access_key_id=[REDACTED AWS KEY ID]",
        id="temporary-access-key-id",
    ),
    pytest.param(
        f"spark-submit --deploy-mode cluster --conf spark.hadoop.fs.s3a.secret.key={SECRET_KEY} "
        "--conf spark.executor.memory=4g s3://acme-jobs/etl.py",
        SECRET_KEY,
        "spark-submit --deploy-mode cluster --conf spark.hadoop.fs.s3a.secret.key=[REDACTED] "
        "--conf spark.executor.memory=4g s3://acme-jobs/etl.py",
        id="spark-conf-secret-key",
    ),
    pytest.param(
        f"aws_secret_access_key = {SECRET_KEY}",
        SECRET_KEY,
        "aws_secret_access_key = [REDACTED]",
        id="credentials-file-secret",
    ),
    pytest.param(
        f"--conf spark.hadoop.fs.s3a.session.token={SESSION_TOKEN}",
        SESSION_TOKEN,
        "--conf spark.hadoop.fs.s3a.session.token=[REDACTED]",
        id="s3a-session-token",
    ),
    pytest.param(
        "javax.jdo.option.ConnectionPassword=MetastoreP4ss",
        "MetastoreP4ss",
        "javax.jdo.option.ConnectionPassword=[REDACTED]",
        id="hive-metastore-password",
    ),
    pytest.param(
        "Connecting to jdbc:postgresql://etl_user:S3cr3tPw!@db.example.com:5432/warehouse",
        "S3cr3tPw!",
        "Connecting to jdbc:postgresql://etl_user:[REDACTED]@db.example.com:5432/warehouse",
        id="jdbc-url-userinfo",
    ),
    pytest.param(
        "jdbc:sqlserver://db.example.com:1433;databaseName=sales;user=etl;password=Hunter2Pass;encrypt=true",
        "Hunter2Pass",
        "jdbc:sqlserver://db.example.com:1433;databaseName=sales;user=etl;password=[REDACTED];encrypt=true",
        id="jdbc-url-password-property",
    ),
    pytest.param(
        "posting with xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
        "AbCdEfGhIjKlMnOpQrStUvWx",
        "posting with [REDACTED SLACK TOKEN]",
        id="slack-bot-token",
    ),
    pytest.param(
        "webhook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX failed",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
        "webhook https://hooks.slack.com/services/[REDACTED] failed",
        id="slack-webhook-url",
    ),
    pytest.param(
        "DEBUG wire: >> Authorization: Bearer abcdef0123456789ABCDEF.xyz",
        "abcdef0123456789ABCDEF",
        "DEBUG wire: >> Authorization: Bearer [REDACTED]",
        id="bearer-token",
    ),
    pytest.param(
        f"token payload {JWT} rejected",
        JWT,
        "token payload [REDACTED JWT] rejected",
        id="jwt",
    ),
    pytest.param(
        "GET https://acme.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250101T000000Z"
        "&X-Amz-Signature=9f1e2d3c4b5a69788796a5b4c3d2e1f0&X-Amz-SignedHeaders=host",
        "9f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "GET https://acme.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250101T000000Z"
        "&X-Amz-Signature=[REDACTED]&X-Amz-SignedHeaders=host",
        id="presigned-signature",
    ),
    pytest.param(
        "GET https://acme.s3.amazonaws.com/k?X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2FABC&X-Amz-Expires=3600",
        "IQoJb3JpZ2luX2VjEJr",
        "GET https://acme.s3.amazonaws.com/k?X-Amz-Security-Token=[REDACTED]&X-Amz-Expires=3600",
        id="presigned-security-token",
    ),
    pytest.param(
        '{"user": "etl", "password": "hunter2!", "host": "db.internal"}',
        "hunter2!",
        '{"user": "etl", "password": [REDACTED], "host": "db.internal"}',
        id="json-password",
    ),
    pytest.param(
        "PASSWORD = 'hunter2'",
        "hunter2",
        "PASSWORD = [REDACTED]",
        id="quoted-password-any-case",
    ),
]


@pytest.mark.parametrize(("text", "secret", "expected"), REDACTED)
def test_secrets_are_redacted(text: str, secret: str, expected: str) -> None:
    # Given a log line carrying a credential
    # When it is redacted
    result = redact(text)
    # Then the credential is gone and the rest of the line reads as before
    assert secret not in result
    assert result == expected


@pytest.mark.parametrize(("text", "secret", "expected"), REDACTED)
def test_redacting_twice_changes_nothing(text: str, secret: str, expected: str) -> None:
    # Given text that was already redacted
    once = redact(text)
    # When it is redacted again (findings are redacted, then stored, then rendered)
    twice = redact(once)
    # Then it is unchanged
    assert twice == once == expected


def test_several_secrets_on_one_spark_submit_line_are_all_redacted() -> None:
    # Given a spark-submit command with an access key id and its secret
    line = (
        "Launching: spark-submit --conf spark.hadoop.fs.s3a.access.key=AKIAIOSFODNN7EXAMPLE "
        f"--conf spark.hadoop.fs.s3a.secret.key={SECRET_KEY} --conf spark.yarn.maxAppAttempts=1 job.py"
    )
    # When it is redacted
    result = redact(line)
    # Then neither survives, and the other options do
    assert result == (
        "Launching: spark-submit --conf spark.hadoop.fs.s3a.access.key=[REDACTED AWS KEY ID] "
        "--conf spark.hadoop.fs.s3a.secret.key=[REDACTED] --conf spark.yarn.maxAppAttempts=1 job.py"
    )


def test_presigned_url_keeps_no_signing_material() -> None:
    # Given a full presigned URL as an HTTP client logs it
    url = (
        "https://acme.s3.amazonaws.com/out/part-0000.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2FABC"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=9f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabb"
    )
    # When it is redacted
    result = redact(url)
    # Then the key id, the session token and the signature are gone
    for secret in ("AKIAIOSFODNN7EXAMPLE", "IQoJb3JpZ2luX2VjEJr", "9f1e2d3c4b5a6978"):
        assert secret not in result
    assert "X-Amz-Signature=[REDACTED]" in result
    assert "X-Amz-Security-Token=[REDACTED]&" in result
    # And the parts that help debugging remain
    assert result.startswith("https://acme.s3.amazonaws.com/out/part-0000.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Date=20250101T000000Z" in result


def test_presigned_credential_gives_a_well_formed_marker() -> None:
    # Given a presigned URL's credential parameter
    text = "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=1"
    # When it is redacted
    result = redact(text)
    # Then the marker is whole
    assert "] AWS KEY ID]" not in result
    assert result.count("[") == result.count("]") == 1


def test_s3a_url_with_key_and_secret_loses_the_secret() -> None:
    # Given an s3a URL with credentials in it (the form the module's own comment promises to cover)
    text = "Reading s3a://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG@acme-data/raw/ failed"
    # When it is redacted
    result = redact(text)
    # Then neither the key id nor the secret remains
    assert "AKIAIOSFODNN7EXAMPLE" not in result
    assert "wJalrXUtnFEMI" not in result


def test_password_given_as_a_command_line_option_is_redacted() -> None:
    # Given a sqoop step's command line as EMR logs it in the controller file
    text = "sqoop import --connect jdbc:mysql://db.internal/sales --username etl --password Hunter2Pass"
    # When it is redacted
    # Then the password is gone
    assert "Hunter2Pass" not in redact(text)


# ---------------------------------------------------------------------------------------------------
# Private keys span lines
# ---------------------------------------------------------------------------------------------------
def test_private_key_block_spanning_lines_is_removed_whole() -> None:
    # Given log lines with a PEM private key between ordinary lines
    lines = [
        "23/05/04 10:00:00 INFO Bootstrap: writing key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx4UbaDzY3VuZ2V0aGlzaXNub3RhcmVhbGtleWF0YWxs",
        "aGVsbG93b3JsZGhlbGxvd29ybGRoZWxsb3dvcmxkaGVsbG93b3JsZA==",
        "-----END RSA PRIVATE KEY-----",
        "23/05/04 10:00:01 INFO Bootstrap: done",
    ]
    # When they are redacted as a block
    result = redact_lines(lines)
    # Then the key is one marker line, and the lines around it are untouched
    assert result == [
        "23/05/04 10:00:00 INFO Bootstrap: writing key",
        "[REDACTED PRIVATE KEY]",
        "23/05/04 10:00:01 INFO Bootstrap: done",
    ]


def test_private_key_cut_off_before_its_end_line_is_still_removed() -> None:
    # Given evidence that was capped in the middle of a key (no END line)
    lines = ["ERROR bad key", "-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU="]
    # When it is redacted
    result = redact_lines(lines)
    # Then nothing of the key body remains
    assert result == ["ERROR bad key", "[REDACTED PRIVATE KEY]"]


def test_redact_lines_of_nothing_is_nothing() -> None:
    assert redact_lines([]) == []
    assert redact("") == ""


# ---------------------------------------------------------------------------------------------------
# What must survive
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "\tat com.acme.TokenService.get(TokenService.java:42)",
        "\tat com.acme.secrets.SecretLoader.load(SecretLoader.scala:17)",
        "\tat org.apache.hadoop.security.token.Token.decodeIdentifier(Token.java:123)",
        "com.amazonaws.services.securitytoken.model.InvalidTokenException: The security token included in the "
        "request is invalid. (Service: AWSSecurityTokenService; Status Code: 403; Error Code: InvalidClientTokenId)",
        "Caused by: InvalidTokenException: The security token included in the request is invalid",
        "java.lang.IllegalStateException: password must not be empty",
        "Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: The AWS Access Key Id you provided does not "
        "exist in our records. (Service: Amazon S3; Status Code: 403; Error Code: InvalidAccessKeyId; "
        "Request ID: 7TQW3Y2KB8AH; Proxy: null)",
        "23/05/04 10:00:00 INFO SparkContext: Running Spark version 3.3.1-amzn-0",
        "23/05/04 10:00:01 INFO Client: Submitted application application_1683190000000_0007",
        "23/05/04 10:05:00 WARN YarnAllocator: Container killed by YARN for exceeding physical memory limits. "
        "5.5 GB of 5.5 GB physical memory used. Consider boosting spark.executor.memoryOverhead.",
        "py4j.protocol.Py4JJavaError: An error occurred while calling o93.count.",
        "INFO BlockManager: token_count=5 secret_size=12",
        "Path does not exist: s3://acme-data/raw/2023-05-04",
    ],
)
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    # Given a stack frame, an exception headline or an ordinary log line mentioning tokens or secrets
    # When it is redacted
    # Then it is unchanged
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "23/05/04 10:00:01 INFO HadoopDelegationTokenManager: Scheduling renewal in 18.0 h.",
        "23/05/04 10:00:01 INFO DefaultAWSCredentialsProviderChain: Loading credentials from "
        "WebIdentityTokenCredentialsProvider",
        "ExpiredToken: The security token included in the request is expired",
    ],
    ids=["spark-token-manager", "aws-sdk-credentials-chain", "expired-token-error-code"],
)
def test_log_lines_whose_logger_name_mentions_tokens_are_left_alone(text: str) -> None:
    # Given an ordinary Spark/AWS SDK log line whose logger or error code contains "Token"/"Credentials"
    # When it is redacted
    # Then it is unchanged
    assert redact(text) == text


# ---------------------------------------------------------------------------------------------------
# Gaps found by the review
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("{'SecretAccessKey': 'wJalrXUtnFEMI', 'SessionToken': 'FwoGZXIvYXdz'}", "wJalrXUtnFEMI"),
        ("{'SecretAccessKey': 'wJalrXUtnFEMI', 'SessionToken': 'FwoGZXIvYXdz'}", "FwoGZXIvYXdz"),
        ("javax.jdo.option.ConnectionPassword: hunter2", "hunter2"),
        ("ClientSecret: c1ientS3cret", "c1ientS3cret"),
        ("apiKey: sk-live-abc123", "sk-live-abc123"),
        ("mysql -h db.internal -u etl -phunter2 sales", "hunter2"),
        ("sshpass -p s3cr3tpw ssh hadoop@ip-10-0-0-1", "s3cr3tpw"),
        ("jdbc:postgresql://etl:p@ssw0rd@db.internal:5432/sales", "ssw0rd"),
    ],
)
def test_review_gaps_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "23/05/04 10:00:01 INFO HadoopDelegationTokenManager: Scheduling renewal in 18.0 h.",
        "InvalidClientTokenId: The security token included in the request is invalid",
        "mysql client exited with -p flag missing",
    ],
)
def test_logger_names_and_error_codes_still_survive(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    ["A" * 100_000, "a." * 50_000, "token" * 20_000, "x://" * 25_000, ("x-" * 10 + "password ") * 5000],
    ids=["word-run", "dotted", "keyword-run", "scheme-run", "many-pairs"],
)
def test_adversarial_long_input_is_handled(text: str) -> None:
    # Long single tokens once made two patterns backtrack quadratically (every start position retried).
    # The speed is measured in make bench (redact_adversarial_vs_normal_ratio); here: the result is sane.
    result = redact(text)
    assert len(result) <= len(text) + 20 * text.count("password")
