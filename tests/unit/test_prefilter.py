"""The literal prefilter only ever skips lines no rule can match."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.test_catalogue import EXAMPLES

from emr_triage.analysis import prefilter as prefilter_module
from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.findings import BLOCK_LINES, analyse_lines
from emr_triage.analysis.patterns import required_literals
from emr_triage.exceptions import CatalogueError

NOISE = [f"26/11/20 02:00:{i % 60:02d} INFO Executor: Running task {i}.0 in stage 3.0 (TID {i})" for i in range(6000)]


CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


RECORD_FOR = {"unknown_exception": ["26/11/20 02:15:00 ERROR Main: the job failed"]}
FRAME_FOR = {
    "hive_session_metastore_frames": [
        "\tat org.apache.hadoop.hive.metastore.HiveMetaStoreClient.open(HiveMetaStoreClient.java:478)"
    ],
}


@pytest.mark.parametrize(
    ("rule_id", "line"),
    [(rule_id, line) for rule_id, lines in EXAMPLES.items() for line in lines],
    ids=[f"{rule_id}-{n}" for rule_id, lines in EXAMPLES.items() for n in range(len(lines))],
)
def test_every_example_line_passes_the_prefilter_and_is_found_inside_a_long_log(
    catalogue: Catalogue, rule_id: str, line: str
) -> None:
    # Given a line a rule matches, buried in the middle of a batch of noise
    assert catalogue.prefilter.hit(line.lower() + "\n"), "the prefilter would skip a line the rule matches"
    position = BLOCK_LINES + 137
    # (a rule that needs frames in its stack gets a frame its `frames:` names, right below it; one that
    # only counts under some log records gets such a record right above it)
    frames = FRAME_FOR.get(rule_id, [])
    record = RECORD_FOR.get(rule_id, [])
    position += len(record)
    log = [*NOISE[: position - len(record)], *record, line, *frames, *NOISE[position - len(record) :]]
    # When the log is analysed in batches
    findings = analyse_lines(log, catalogue=catalogue, source="test").findings
    # Then the rule's finding is there, on the right line
    found = {f.rule_id: f.line_no for f in findings}
    assert found.get(rule_id) == position + 1


def test_the_noise_alone_is_skipped_without_findings(catalogue: Catalogue) -> None:
    assert not any(catalogue.prefilter.hit(line.lower()) for line in NOISE)
    assert analyse_lines(NOISE, catalogue=catalogue, source="test").findings == []


@pytest.mark.parametrize(
    ("pattern", "required", "absent"),
    [
        (
            r"Container killed by YARN for exceeding (?:physical |virtual )?memory limits",
            "container killed",
            "physical",
        ),
        (r"(?:foo)?barbazqux", "barbazqux", "foo"),
        (r"(?:Alpha|Bravo)Error: \d+", None, "error"),
        (r"\[(?:UNRESOLVED_COLUMN|TABLE_OR_VIEW_NOT_FOUND)[.\]]", "unresolved_column", None),
    ],
)
def test_required_literals_never_include_optional_parts(pattern: str, required: str | None, absent: str | None) -> None:
    literals = [lit.lower() for lit in required_literals(pattern) or []]
    if required:
        assert any(required in lit for lit in literals), literals
    if absent:
        assert all(absent not in lit for lit in literals if lit != "error: "), literals


def test_a_rule_without_a_usable_literal_is_rejected_at_load_naming_it(tmp_path: Path) -> None:
    # Given a user rule whose only pattern has no fixed text of 4+ characters
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - {id: long_number, category: odd, rank: 5, severity: low, retryable: false,"
        " title: A long number, patterns: ['\\b\\d{12,}\\b'], explanation: e e e, remediation: r r r}\n"
    )
    # When it is loaded, Then it is rejected with the rule, the pattern and what to do
    with pytest.raises(CatalogueError, match=r"rule 'long_number': patterns\[1\] .* add a distinctive word"):
        load_catalogue([rules])


def test_each_hint_knows_which_rules_and_extractors_to_run(catalogue: Catalogue) -> None:
    prefilter = catalogue.prefilter
    # Every rule is reachable from at least one hint, and only from hints its own hints contain
    for rule in catalogue.rules:
        owning = [i for i, rules in enumerate(prefilter.rules) if rule in rules]
        assert owning, rule.id
        for index in owning:
            assert any(prefilter.hints[index] in hint for hint in rule.hints or ()), (rule.id, prefilter.hints[index])
    # No hint contains another one (the longer would add nothing), but a rule's own `scan_for` literal
    # ("exception:"), which keeps its place so that other rules are not tried on all its lines
    exclusive = {h for rule in catalogue.rules for h in rule.scan_for}
    for a in prefilter.hints:
        assert not any(b != a and b in a and b not in exclusive for b in prefilter.hints), a
    assert any("exit_code" in extractors for extractors in prefilter.extractors)


def test_a_rules_scan_for_literals_replace_its_patterns_own(tmp_path: Path) -> None:
    # Given a user rule whose pattern's own literal ("error") is on every ERROR line, scanning for
    # "badness:" instead
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - id: acme_badness\n    category: other\n    rank: 50\n    severity: low\n"
        "    retryable: null\n    title: Our badness\n    patterns: ['(?:error|badness): acme']\n"
        "    scan_for: ['badness:']\n    explanation: bad\n    remediation: fix it\n",
        encoding="utf-8",
    )
    extended = load_catalogue([rules])
    # Then only lines with the literal are tried: the rule's match without it is (knowingly) not found
    found = analyse_lines(["ERROR Main: badness: acme", "ERROR Main: error: acme"], catalogue=extended, source="t")
    assert [f.line_no for f in found.findings if f.rule_id == "acme_badness"] == [1]
    # And a literal too short to be worth scanning for is refused
    rules.write_text(rules.read_text("utf-8").replace("scan_for: ['badness:']", "scan_for: ['bad']"), "utf-8")
    with pytest.raises(CatalogueError, match="scan_for"):
        load_catalogue([rules])


@given(picked=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6))
@settings(max_examples=200)
def test_a_line_goes_to_every_rule_and_extractor_its_hints_ask_for_in_the_order_rules_are_tried(
    picked: list[int],
) -> None:
    # Given the hints that hit on one line (any of them, any number of times, in any order)
    prefilter = CATALOGUE.prefilter
    indexes = [i % len(prefilter.hints) for i in picked]
    # When the line is routed (twice: worked out, then remembered)
    first, again = prefilter.route(indexes), prefilter.route(reversed(indexes))
    # Then it goes to each rule of those hints once (fallbacks last, the others by rank, then id), and to
    # each of their extractors
    rules = {rule.id: rule for index in indexes for rule in prefilter.rules[index]}
    by_id = sorted(rules.values(), key=lambda r: r.id)
    expected = (
        tuple(sorted(by_id, key=lambda r: (r.fallback, r.rank))),  # a stable sort keeps the ids' order
        frozenset().union(*(prefilter.extractors[i] for i in indexes)),
    )
    assert first == again == expected


def test_routes_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a prefilter that has remembered as many routes as it keeps
    prefilter = load_catalogue().prefilter
    monkeypatch.setattr(prefilter_module, "_MAX_ROUTES", 3)
    for index in range(3):
        prefilter.route([index])
    # When more combinations come, they are still routed, but not remembered
    rules, extractors = prefilter.route([3, 4])
    assert {r.id for r in rules} == {r.id for r in prefilter.rules[3] + prefilter.rules[4]}
    assert extractors == prefilter.extractors[3] | prefilter.extractors[4]
    assert len(prefilter._routes) == 3
