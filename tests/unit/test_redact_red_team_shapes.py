"""The secret shapes the red team's review (issue 14, classes 1-4 and 6) named, and the three leak classes left
after it (a password in prose, a private key whose BEGIN line is out of view, a value on the line after its
key), one example each, in a PySpark step's stderr: every one is redacted, and the line's diagnosis around it
stays readable."""

from __future__ import annotations

import time

import pytest

from emr_triage.analysis.redact import redact, redact_lines

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The last lines of an RSA key's body (PEM wraps at 64), and an OpenSSH key's line (it wraps at 70)
KEY_LINES = [
    "dR1ZG+U3qp0KpdyzsSFVwcE57KYuzvCGOu+68BcmNz+xzmdFlJkxvAWBekFGBoBK",
    "j1Dru/yblxIyLpCo/UIic7KekE3KTHR3+OYpr9xCcd9iZ4xlD7XQZL9TC8f3MK/o",
    "B7q0oZ0vKoT/+FImzJo6KUkjJI0=",
]
OPENSSH_LINE = "acFZqpfX+6kUB3xGeAw6Kl0HtwIKs9WmpWDnEZynfh+SakaY6fhJVoEUHQewHk0VJXIoRg"

# (class, shape, stderr line, the secret)
SHAPES = [
    # 1. secrets with '/'
    ("1", "s3a-key-secret-with-slash", f"Reading s3a://AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}@acme-data/raw", AWS_SECRET),
    ("1", "url-password-with-slash", "https://etl:pa/ss/w0rd@nexus.internal/repo", "ss/w0rd"),
    # 2. families
    ("2", "azure-storage-key", f"fs.azure.account.key.acme.blob.core.windows.net {AZURE_KEY}", AZURE_KEY[:40]),
    (
        "2",
        "azure-connection-string",
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
        AZURE_KEY[:40],
    ),
    (
        "2",
        "azure-shared-access-signature",
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020-08-04&sig=AbCd%2Bef%3D",
        "AbCd%2Bef",
    ),
    (
        "2",
        "sas-sig-in-url",
        "GET https://a.blob.core.windows.net/c/f?sv=2021-06-08&sr=b&sig=Zx9%2FyW8vU7tS6%3D&se=2026",
        "Zx9%2FyW8vU7tS6",
    ),
    ("2", "oracle-jdbc", "jdbc:oracle:thin:scott/T1ger/Pass@db.example.com:1521/ORCL", "T1ger/Pass"),
    (
        "2",
        "hive-xml-property",
        "<property><name>javax.jdo.option.ConnectionPassword</name><value>HiveMeta99</value></property>",
        "HiveMeta99",
    ),
    ("2", "hive-set-key-value", "set javax.jdo.option.ConnectionPassword HiveSet99", "HiveSet99"),
    (
        "2",
        "github-fine-grained",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
        "abcdefghijklmnopqrstuvwxyz",
    ),
    (
        "2",
        "slack-app-token",
        "xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
    ),
    (
        "2",
        "slack-workflow-webhook",
        "https://hooks.slack.com/workflows/T0123ABCD/A0123ABCD/456789012345678901/AbCdEfGhIjKlMnOp",
        "AbCdEfGhIjKlMnOp",
    ),
    (
        "2",
        "slack-trigger-webhook",
        "https://hooks.slack.com/triggers/T0123ABCD/4567890123/0123456789abcdef0123",
        "0123456789abcdef0123",
    ),
    (
        "2",
        "databricks-token",
        "DATABRICKS_TOKEN=dapi0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
    ),
    ("2", "authorization-token", "Authorization: token 0123456789abcdef0123456789abcdef", "0123456789abcdef"),
    ("2", "stripe", "stripe.error.AuthenticationError: sk_live_51HxYzAbCdEfGhIjKlMnOpQr", "51HxYzAbCdEfGhIjKlMnOpQr"),
    (
        "2",
        "sendgrid",
        "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012",
        "wXyZ0123456789aBcDeFgH",
    ),
    ("2", "twilio", "twilio: SK0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    ("2", "google-api-key", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "SyA1234567890abcdefghij"),
    (
        "2",
        "openai",
        "openai.AuthenticationError: sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "AbCdEfGhIjKlMnOpQrStUvWxYz",
    ),
    ("2", "npm", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    (
        "2",
        "pypi",
        "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0LXV2d3h5ejAxMjM0NQ",
        "CJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0",
    ),
    ("2", "gitlab", "glpat-xYz0123456789AbCdEfGh", "xYz0123456789AbCdEfGh"),
    ("2", "datadog", "DD_API_KEY=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    (
        "2",
        "pgp-private-key",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGRkZXNwYXJrX3Rlc3Rfa2V5\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBGRkZXNwYXJrX3Rlc3Rfa2V5",
    ),
    ("2", "passphrase", "gpg --batch --passphrase=Gpg-Pass-123 -d key.asc", "Gpg-Pass-123"),
    # 3. Spark's and PySpark's forms
    (
        "3",
        "traceback-source-line",
        '  File "/mnt/tmp/etl.py", line 12, in <module>\n    .option("password", "hunter2xyz") \\',
        "hunter2xyz",
    ),
    ("3", "scala-arrow", 'Map("user" -> "etl", "password" -> "Sc4la-Pw")', "Sc4la-Pw"),
    (
        "3",
        "getconf-getall-tuple",
        f"[('spark.hadoop.fs.s3a.secret.key', '{AWS_SECRET}'), ('spark.app.name', 'etl')]",
        AWS_SECRET,
    ),
    ("3", "environment-dump", f"AWS_SECRET_ACCESS_KEY   {AWS_SECRET}", AWS_SECRET),
    ("3", "export", f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
    ("3", "option-value", "--db-password Hunter2Pass --verbose", "Hunter2Pass"),
    # 4. partial leaks
    ("4", "tail-after-semicolon", "password=s3cr;etTail user=etl", "etTail"),
    ("4", "tail-after-comma", "password=s3cr,etTail user=etl", "etTail"),
    ("4", "tail-after-ampersand", "?password=s3cr&etTail&user=etl", "etTail"),
    ("4", "tail-after-paren", "password=s3cr)etTail user=etl", "etTail"),
    ("4", "tail-after-brace", "password=s3cr}etTail user=etl", "etTail"),
    ("4", "escaped-quote", 'password="a\\"b;cTail" user=etl', "b;cTail"),
    ("4", "url-encoded-pair", "user%3Detl%26password%3DsecretValue%26db%3Dsales", "secretValue"),
    ("4", "url-encoded-slash-in-key", "aws_secret_access_key=wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCY", "K7MDENG"),
    ("4", "key-id-glued-to-underscore", "creds_AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("4", "key-id-glued-to-non-ascii", "cléAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    # prose: a password in a sentence, no key syntax
    ("prose", "password-was", "Login failed for user 'etl': password was Hunter2!xyz", "Hunter2!xyz"),
    ("prose", "password-is", "java.sql.SQLException: the password is s3cr3tP@ss", "s3cr3tP@ss"),
    ("prose", "using-password", "Access denied for user 'etl' using password: Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("prose", "pwd-blank", "retrying with pwd Xy9!kk2 in free text", "Xy9!kk2"),
    # (a letter whose lowercase is longer, İ, makes the reader search the text itself, case-insensitively)
    ("prose", "after-a-dotted-capital-i", "İzmir loader: password was Hunter2!xyz", "Hunter2!xyz"),
    ("prose", "secret-key-is", f"the secret key is {AWS_SECRET} (from ~/.aws)", AWS_SECRET),
    ("prose", "passphrase-quoted", "gpg: passphrase was 'correct horse battery' for key 0x1F", "correct horse battery"),
    # long-key: a key's body whose BEGIN line is out of the record's view
    ("long-key", "pem-body-line", KEY_LINES[0], KEY_LINES[0]),
    ("long-key", "body-tail-and-end", "\n".join([*KEY_LINES, "-----END RSA PRIVATE KEY-----"]), KEY_LINES[2]),
    ("long-key", "openssh-body-line", OPENSSH_LINE, OPENSSH_LINE),
    # next-line: a key ending its line, the value on the next line (before the error text)
    (
        "next-line",
        "conf-secret-key",
        f"spark-submit --conf spark.hadoop.fs.s3a.secret.key=\n{AWS_SECRET} java.nio.file.AccessDeniedException",
        AWS_SECRET,
    ),
    ("next-line", "password-colon", "Connecting with password:\nHunter2Next refused (28P01)", "Hunter2Next"),
    ("next-line", "pretty-json", '{"user": "etl", "password":\n    "Pretty-Pw-9"}', "Pretty-Pw-9"),
]
# Classes whose secret only the block shows: a key body's last line says nothing alone, nor a value whose key
# is on the line before.
NEEDS_THE_BLOCK = ("long-key-body-tail-and-end", "next-line")


@pytest.mark.parametrize(
    ("klass", "name", "text", "secret"), [pytest.param(k, n, t, s, id=f"{k}-{n}") for k, n, t, s in SHAPES]
)
def test_every_red_team_shape_is_redacted(klass: str, name: str, text: str, secret: str) -> None:
    # Given a PySpark step's stderr with the shape between ordinary lines
    stderr = ["26/11/20 02:00:01 ERROR Executor: Exception in task 0.0", *text.split("\n"), "\tat py4j.Gateway.invoke"]
    # When it is redacted as a block and line by line
    block = "\n".join(redact_lines(stderr))
    lines = "\n".join(redact(line) for line in stderr)
    # Then the secret is gone from both (a block spanning lines only from the block: its body lines alone
    # say nothing of a key), and the ordinary lines remain
    assert secret not in block
    assert secret not in lines or text.startswith("-----BEGIN") or f"{klass}-{name}".startswith(NEEDS_THE_BLOCK)
    assert block.startswith("26/11/20 02:00:01 ERROR Executor: Exception in task 0.0")
    assert block.endswith("\tat py4j.Gateway.invoke")


def test_mysql_arguments_of_a_megabyte_redact_in_well_under_a_second() -> None:
    # Given 1 MiB of step arguments repeating the program name (the old rule rescanned from each: 11 minutes)
    text = "mysql " * 174_763
    # When they are redacted
    start = time.perf_counter()
    redact(text + "-pHunter2")
    # Then it takes about as long as any text of that size
    assert time.perf_counter() - start < 5


def test_the_shapes_cover_every_class_the_review_named() -> None:
    assert {klass for klass, *_ in SHAPES} == {"1", "2", "3", "4", "prose", "long-key", "next-line"}
    assert len(SHAPES) == 55


# What the three later classes must not take: the diagnosis that names a password, a key or a setting.
KEPT = [
    ("prose", 'FATAL:  password authentication failed for user "etl"'),
    ("prose", "java.sql.SQLException: Access denied for user 'etl'@'10.0.0.7' (using password: YES)"),
    ("prose", "java.sql.SQLException: Access denied for user 'etl'@'10.0.0.7' (using password: NO)"),
    ("prose", "ERROR Client: the password is incorrect or has expired"),
    ("prose", "WARN Hive: password was rotated; the secret is stored in Secrets Manager"),
    ("prose", "IllegalArgumentException: password of 8 characters or more is required"),
    ("prose", "ResourceNotFoundException: the secret is arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbC"),
    ("prose", "spark.ssl.keyStorePassword"),
    ("prose", "sshd: PasswordAuthentication no"),
    ("prose", "sqoop import --password-file /user/etl/.password --username etl"),
    ("long-key", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("long-key", "26/11/20 02:00:01 INFO Executor: Finished task 0.0 in stage 1.0 (TID 1). 2004 bytes result sent"),
    ("long-key", "\tat org.apache.spark.sql.execution.datasources.FileFormatWriter$.write(FileFormatWriter.scala:261)"),
    ("next-line", "password=\n26/11/20 02:00:01 INFO Client: connecting to db.internal:5432"),
    ("next-line", "ERROR Job: missing password:\njava.lang.IllegalStateException: no password given"),
    ("next-line", "db:\n  password:\n    username: etl"),
]


@pytest.mark.parametrize(("klass", "text"), [pytest.param(k, t, id=f"{k}-{i}") for i, (k, t) in enumerate(KEPT)])
def test_what_names_a_secret_without_holding_one_reads_as_before(klass: str, text: str) -> None:
    # Given a log text that names a password, a key or a setting without holding one
    # When it is redacted as a block
    # Then it reads as before
    assert redact_lines(text.split("\n")) == text.split("\n")
