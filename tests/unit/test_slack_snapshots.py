"""Snapshots of the Block Kit payloads, one per failure category: the root message once the logs are
diagnosed, and the evidence reply in its thread. A change in what on-call engineers see shows up here
as a diff to review. After an intended change: ``UPDATE_SNAPSHOTS=1 pytest tests/unit/test_slack_snapshots.py``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emr_triage.alerts.message import build_incident_message, build_thread_reply
from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.verdict import diagnose
from emr_triage.models.incident import Incident

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "logs"
SNAPSHOTS = ROOT / "snapshots" / "slack"
SOURCE = "s3://acme-emr-logs/elasticmapreduce/j-1ABCDEFGHIJK/steps/s-1ABCDEFGHIJK/stderr.gz"
AT = datetime(2026, 11, 20, 2, 13, 46, tzinfo=UTC)
CATEGORIES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def _payloads(category: str) -> dict[str, object]:
    catalogue = load_catalogue()
    fixture = sorted(p for p in (FIXTURES / category).iterdir() if p.is_file())[0]
    data = fixture.read_bytes()
    if fixture.suffix == ".gz":
        import gzip

        data = gzip.decompress(data)
    analysis, read = analyse_stream([data], catalogue=catalogue, source=SOURCE)
    diagnosis = diagnose(analysis.findings, catalogue, [read], analysis.exit_codes)
    incident = Incident(
        incident_id="j-1ABCDEFGHIJK.s-1ABCDEFGHIJK",
        kind="step",
        state="FAILED",
        severity=diagnosis.severity if diagnosis.category != "no_failure" else "high",
        region="us-east-1",
        account="123456789012",
        cluster_id="j-1ABCDEFGHIJK",
        cluster_name="nightly-etl",
        release_label="emr-7.5.0",
        step_id="s-1ABCDEFGHIJK",
        step_name="daily-job",
        action_on_failure="CONTINUE",
        started_at=AT,
        ended_at=AT,
        failed_at=AT,
        log_location=SOURCE.rsplit("/", 1)[0] + "/",
        diagnosis=diagnosis,
        findings=analysis.findings,
        opened_at=AT,
        updated_at=AT,
        expires_at=1_800_000_000,
    )
    root = build_incident_message(incident)
    reply = build_thread_reply(incident)
    return {
        "fixture": fixture.name,
        "root": {"text": root.text, "blocks": root.blocks},
        "thread_reply": {"text": reply.text, "blocks": reply.blocks},
    }


@pytest.mark.parametrize("category", CATEGORIES)
def test_block_kit_payloads_match_their_snapshot(category: str) -> None:
    # Given the first fixture log of a category, diagnosed, as the alert's incident
    payloads = _payloads(category)
    rendered = json.dumps(payloads, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    snapshot = SNAPSHOTS / f"{category}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(rendered, "utf-8")
    # Then the root message and the thread reply are exactly the reviewed ones
    assert snapshot.exists(), f"no snapshot for {category}: run with UPDATE_SNAPSHOTS=1 and review the diff"
    assert rendered == snapshot.read_text("utf-8"), f"{category}: Block Kit changed; review, then UPDATE_SNAPSHOTS=1"


def test_every_category_has_a_snapshot_and_no_snapshot_is_stale() -> None:
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == CATEGORIES
