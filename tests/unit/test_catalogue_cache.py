"""The catalogue and its compiled scanner kept between processes: a cache hit is the same catalogue as a
fresh load, and anything wrong with the cache only costs the time of a fresh load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emr_triage.analysis import catalogue_cache
from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.engine import analyse_stream
from emr_triage.analysis.scan import HyperscanScanner, PythonScanner
from emr_triage.cache import default_cache_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
USER_RULES = """\
version: 7
rules:
  - id: acme_quota
    category: acme_quota
    rank: 500
    severity: high
    retryable: false
    title: The ACME quota ran out
    patterns: ['AcmeQuotaExceeded: \\S+']
    explanation: The job used up its ACME quota.
    remediation: Ask for more ACME quota.
"""


def _same(cached: Catalogue, fresh: Catalogue) -> None:
    assert cached.version == fresh.version
    assert [r.model_dump() for r in cached.rules] == [r.model_dump() for r in fresh.rules]
    assert cached.emr_reasons == fresh.emr_reasons
    assert cached.prefilter.hints == fresh.prefilter.hints
    assert [[r.id for r in rules] for rules in cached.prefilter.rules] == [
        [r.id for r in rules] for rules in fresh.prefilter.rules
    ]
    assert cached.prefilter.extractors == fresh.prefilter.extractors


def _findings(catalogue: Catalogue) -> list[tuple[str, int, int, list[str]]]:
    found = []
    for path in sorted(FIXTURES.rglob("*.log"))[:60]:
        analysis, _ = analyse_stream([path.read_bytes()], catalogue=catalogue, source=path.name)
        found += [(f.rule_id, f.line_no, f.count, f.evidence) for f in analysis.findings]
    return found


def test_a_catalogue_read_back_from_the_cache_is_the_one_loaded_fresh(tmp_path: Path) -> None:
    # Given a catalogue loaded with a cache folder (a miss: it is checked, then kept)
    user = tmp_path / "acme.yaml"
    user.write_text(USER_RULES)
    first = load_catalogue([user], cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "catalogue.json").is_file() and (tmp_path / "cache" / "hyperscan.db").is_file()
    # When another process loads it (a hit)
    second = load_catalogue([user], cache_dir=tmp_path / "cache")
    # Then it is the same catalogue as one loaded without any cache, and it finds the same things
    fresh = load_catalogue([user])
    _same(first, fresh)
    _same(second, fresh)
    assert second.get("acme_quota") is not None
    assert _findings(second) == _findings(fresh)


def test_the_cached_scanner_reports_what_the_compiled_one_reports(tmp_path: Path) -> None:
    literals = [b"outofmemoryerror", b"killed by yarn", b"exit code", b"a.b(c)*"]
    block = b"java.lang.OutOfMemoryError x\nContainer KILLED BY YARN; exit code 137\na.b(c)* A.B(C)*\n"
    compiled = HyperscanScanner(literals, cache_dir=tmp_path)
    read_back = HyperscanScanner(literals, cache_dir=tmp_path)
    assert compiled.scan(block) == read_back.scan(block) == PythonScanner(literals).scan(block)
    # Another literal set is another database, not the one kept
    other = HyperscanScanner([b"exit code"], cache_dir=tmp_path)
    assert other.scan(block) == PythonScanner([b"exit code"]).scan(block)


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "other key", "bad rule", "missing rule id"],
)
def test_a_damaged_or_stale_cache_is_a_miss_and_is_replaced(tmp_path: Path, damage: str) -> None:
    # Given a cache whose catalogue file was damaged (or written by another version), and a damaged database
    cache = tmp_path / "cache"
    fresh = load_catalogue(cache_dir=cache)
    kept_file = cache / "catalogue.json"
    kept = json.loads(kept_file.read_text())
    key = kept["key"]
    if damage == "garbage":
        kept_file.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        kept_file.write_text(kept_file.read_text()[:1000])
    elif damage == "other key":
        kept["key"] = "0" * 64
        kept_file.write_text(json.dumps(kept))
    elif damage == "bad rule":
        kept["rules"][0]["severity"] = "apocalyptic"
        kept_file.write_text(json.dumps(kept))
    else:
        kept["prefilter"]["rules"][0].append("no_such_rule")
        kept_file.write_text(json.dumps(kept))
    database = cache / "hyperscan.db"
    database.write_bytes(database.read_bytes()[:-100])
    # When the catalogue is loaded again
    again = load_catalogue(cache_dir=cache)
    # Then it is the fresh catalogue, and the cache holds a good copy again
    _same(again, fresh)
    assert _findings(again) == _findings(fresh)
    assert json.loads(kept_file.read_text())["key"] == key
    assert catalogue_cache.load(cache, key) is not None


def test_a_change_to_a_rules_file_is_a_miss(tmp_path: Path) -> None:
    user = tmp_path / "acme.yaml"
    user.write_text(USER_RULES)
    load_catalogue([user], cache_dir=tmp_path / "cache")
    user.write_text(USER_RULES.replace("AcmeQuotaExceeded", "AcmeQuotaGone"))
    changed = load_catalogue([user], cache_dir=tmp_path / "cache")
    rule = changed.get("acme_quota")
    assert rule is not None and rule.patterns == ["AcmeQuotaGone: \\S+"]


def test_a_cache_folder_that_cannot_be_written_is_no_cache(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    _same(load_catalogue(cache_dir=blocked), load_catalogue())


def test_the_default_cache_folder() -> None:
    assert default_cache_dir({"EMR_TRIAGE_CACHE_DIR": "/x/y", "HOME": "/h"}) == Path("/x/y")
    assert default_cache_dir({"EMR_TRIAGE_CACHE_DIR": " ", "HOME": "/h"}) is None
    assert default_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/emr-triage")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/emr-triage")
    assert default_cache_dir({}) is None
