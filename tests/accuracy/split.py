"""Split the corpus once, at random, into a development half and a test half (tests/corpus/README.md).

A case's half is drawn from a hash of a fixed seed and its id, so it never changes, and a case added later
gets its own draw without moving any other case. Only cases without a ``split`` are assigned; nothing that
has one is ever moved. Run it after adding cases, before running the classifier on them.

    python tests/accuracy/split.py [MANIFEST...]     # default: every manifest of the corpus
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "corpus"
SEED = "emr-triage corpus split, 2026-12-06"
TEST_SHARE = 0.5


def draw(case_id: str) -> str:
    """``test`` for about TEST_SHARE of ids, ``dev`` for the rest: fixed by the seed and the id alone."""
    digest = hashlib.sha256(f"{SEED}|{case_id}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < TEST_SHARE else "dev"


def manifests() -> list[Path]:
    found = sorted(CORPUS.glob("excerpts/*.yaml")) + sorted(CORPUS.glob("wholelogs/*.yaml"))
    runs = CORPUS / "spark_runs" / "manifest.yaml"
    return [*found, runs] if runs.exists() else found


def main(argv: list[str] | None = None) -> int:
    given = [Path(p).resolve() for p in (sys.argv[1:] if argv is None else argv)]
    for manifest in given or manifests():
        entries = yaml.safe_load(manifest.read_text("utf-8")) or []
        added = 0
        for entry in entries:
            if entry.get("split") not in ("dev", "test"):
                entry["split"] = draw(entry["id"])
                added += 1
        if added:
            manifest.write_text(
                yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8"
            )
        halves = {half: sum(e["split"] == half for e in entries) for half in ("dev", "test")}
        print(f"{manifest.relative_to(CORPUS)}: {len(entries)} cases, {added} newly split; {halves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
