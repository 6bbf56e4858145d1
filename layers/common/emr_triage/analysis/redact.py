"""Remove secrets from log text before it leaves the function (Slack, DynamoDB, CloudWatch).

Spark launch commands, JDBC URLs and library debug output routinely carry credentials. Every piece of
log or event text we keep goes through :func:`redact` first. Patterns err on the side of removing too much.
"""

from __future__ import annotations

import re

_MARK = "[REDACTED]"

# (pattern, replacement). Order matters: whole private keys first, then whole credentials in URLs and
# presigned-URL parameters (before the key-id rule rewrites their insides), then bare tokens.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S),
        "[REDACTED PRIVATE KEY]",
    ),
    # Presigned URL signatures, credentials and session tokens.
    (re.compile(r"(?i)(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s\"']+"), r"\1" + _MARK),
    # user:password@ in URLs (jdbc:postgresql://user:pw@host, https://user:pw@host, s3a://KEY:SECRET@bucket);
    # up to the last @ before the host, so a password containing '@' goes whole.
    (re.compile(r"(?i)(?<![\w+.-])([a-z][a-z0-9+.-]{0,30}://[^/\s:@]{1,256}:)[^\s/]*@"), r"\1" + _MARK + "@"),
    # Client tools that take the password glued to -p (mysql -pSECRET) or after it (sshpass -p SECRET).
    (re.compile(r"(?i)(\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]*?\s-p)(?=\S)[^\s]+"), r"\1" + _MARK),
    (re.compile(r"(?i)(\bsshpass\s+-p\s*)\S+"), r"\1" + _MARK),
    # Command-line options followed by their value: --password secret (sqoop, beeline, mysql clients).
    (
        re.compile(
            r"(?i)(\s--?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key)\s+)(?!-)\S+"
        ),
        r"\1" + _MARK,
    ),
    # AWS access key ids (long-term AKIA, temporary ASIA, and the other documented prefixes).
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), "[REDACTED AWS KEY ID]"),
    # Slack tokens and webhook URLs.
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{8,}"), "[REDACTED SLACK TOKEN]"),
    (re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"), "https://hooks.slack.com/services/" + _MARK),
    # GitHub and generic bearer tokens, JWTs.
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), "[REDACTED GITHUB TOKEN]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[REDACTED JWT]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}=*"), r"\1 " + _MARK),
)


# key=value / key: value / "key": "value" pairs whose name says secret. Covers JDBC ;password=...,
# --conf spark.hadoop.fs.s3a.secret.key=..., aws_secret_access_key = ..., javax.jdo.option.ConnectionPassword.
# A ':' separator counts only when followed by a space or quote, so stack frames ("TokenService.java:42")
# survive; names ending in Exception/Error are exception headlines, not secrets; and with ':' a CamelCase
# name (HadoopDelegationTokenManager:, ExpiredToken:) is a log4j logger or an error code, not a key.
_KEY_NAME_WORDS = (
    r"password|passwd|pwd|secret|token|api[_.-]?key|access[_.-]?key|credential|private[_.-]?key|session[_.-]?key"
)
_SECRET_WORD = re.compile(rf"(?i)(?:{_KEY_NAME_WORDS})")
# The name starts at a token boundary and is bounded, so the search stays linear on long tokens.
_SECRET_PAIR = re.compile(
    rf"(?i)(?<![\w.-])(?P<name>[\"']?[\w.-]{{0,80}}?(?:{_KEY_NAME_WORDS})[\w.-]{{0,80}}[\"']?)(?P<sep>\s*(?:=|:(?=[\s\"'])|\s=>)\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"'}\])]+)"
)
_NOT_A_SECRET_NAME = re.compile(r"(?i)(?:exception|error|expired|count|size|length|type)[\"']?$")
# AWS error codes that name a credential problem, not a credential (ExpiredToken, InvalidClientTokenId).
_ERROR_CODE_NAME = re.compile(r"^(?:Expired|Invalid|Missing|Bad|Unrecognized)[A-Za-z]*$")


def _only_inside_compound_words(name: str) -> bool:
    """True when every secret word in ``name`` runs on into a capitalised word, possibly after a plural s
    (HadoopDelegationTokenManager, CredentialsProviderChain): a logger or class name. A key ends in one
    (ConnectionPassword, ClientSecret, SecretAccessKey, apiKey)."""
    for match in _SECRET_WORD.finditer(name):
        rest = name[match.end() :]
        rest = rest[1:] if rest[:1] == "s" else rest
        if not rest[:1].isupper():
            return False
    return True


def _redact_pair(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    if _NOT_A_SECRET_NAME.search(name) or value.startswith("[REDACTED"):
        return match.group(0)
    bare = name.strip("\"'")
    quoted = bare != name or value[:1] in "\"'"
    if "=" not in match["sep"] and not quoted and (_ERROR_CODE_NAME.match(bare) or _only_inside_compound_words(bare)):
        # "HadoopDelegationTokenManager: Scheduling renewal", "ExpiredToken: The security token ...": a
        # logger name or an error code before a message, not a key before its value.
        return match.group(0)
    return f"{name}{match['sep']}{_MARK}"


def redact(text: str) -> str:
    """Return ``text`` with credentials replaced by ``[REDACTED …]`` markers.

    Parameters
    ----------
    text:
        Any log or event text.

    Returns
    -------
    str
        The same text with AWS key ids, secrets in key=value pairs, URL passwords, Slack/GitHub/bearer
        tokens, JWTs, presigned-URL signatures and private key blocks removed.
    """
    if not text:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _SECRET_PAIR.sub(_redact_pair, text)


def redact_lines(lines: list[str]) -> list[str]:
    """Redact a block of lines as one text, so a private key spanning lines is removed whole."""
    if not lines:
        return lines
    return redact("\n".join(lines)).split("\n")
