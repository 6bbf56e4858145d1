"""A bad custom rules file in the functions costs its own rules, never the alerts (runtime._catalogue)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from emr_triage import runtime
from emr_triage.analysis.catalogue import get_catalogue

EVIL_RULE = (
    "version: 1\n"
    "rules:\n"
    "  - id: evil_rule\n"
    "    category: other\n"
    "    rank: 50\n"
    "    severity: low\n"
    "    retryable: false\n"
    "    title: Hangs the analysis\n"
    "    patterns: ['Acme failure (\\w+\\s?)*$']\n"
    "    explanation: none\n"
    "    remediation: none\n"
)


@pytest.mark.parametrize(
    "content",
    [EVIL_RULE.encode(), b"version: 1\nrules: [\xff\xfe]\n", b"version: 1\nrules:\n" + b"[" * 5000 + b"]" * 5000],
    ids=["backtracking-pattern", "not-utf-8", "nested-too-deep"],
)
def test_a_refused_rules_file_falls_back_to_the_built_in_catalogue_and_says_why(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the functions' rules file (EMR_TRIAGE_RULES_FILE) holds what the loader refuses
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(content)
    # When the functions load their catalogue
    with caplog.at_level(logging.ERROR):
        catalogue = runtime._catalogue(str(rules))
    # Then they run on the built-in catalogue, and the refusal is logged in one line naming the file
    assert catalogue is get_catalogue(None)
    problems = [r.getMessage() + str(getattr(r, "problem", "")) for r in caplog.records]
    assert any("custom rules rejected" in p and str(rules) in p for p in problems), problems
