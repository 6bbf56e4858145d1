"""The functions' own log lines (CloudWatch) are redacted like every other output."""

from __future__ import annotations

import io
import json
import logging

from emr_triage.observability import logger


def test_a_secret_in_a_log_message_a_field_or_a_traceback_is_redacted() -> None:
    # Given the functions' logger writing to a buffer with its own formatter
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    standard = logging.getLogger(logger.name)
    standard.addHandler(handler)
    try:
        # When a message, a field and an exception carry secrets
        try:
            raise ValueError("connect failed password=hunter2planted")
        except ValueError:
            logger.exception("failed for AKIAQ7PLANTEDLOGLINE", problem="token=xoxb-1-2-plantedlogtoken")
    finally:
        standard.removeHandler(handler)
    line = buffer.getvalue()
    # Then the line is still JSON with the message, and no secret is in it
    record = json.loads(line.splitlines()[-1])
    assert record["message"].startswith("failed for ")
    for secret in ("hunter2planted", "AKIAQ7PLANTEDLOGLINE", "plantedlogtoken"):
        assert secret not in line
