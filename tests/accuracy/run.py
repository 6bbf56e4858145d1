"""`make accuracy`: how often the verdict is what a senior engineer names, on every labelled set we have.

Sets (see tests/corpus/README.md for how the corpus was collected and labelled):

- ``fixtures``: the catalogue's own fixtures (tests/fixtures/logs), written with the rules;
- ``tuned-public``: the first public excerpts (tests/fixtures/realworld, heldout), tuned on long ago;
- ``excerpts-dev`` / ``excerpts-test``: public excerpts found without the catalogue's words;
- ``wholelogs-dev`` / ``wholelogs-test``: whole log files real jobs committed to public repositories;
- ``spark-runs-dev`` / ``spark-runs-test``: whole logs of real Spark 3.5 runs, broken on purpose or healthy.

The ``-test`` halves were split off at random once and are never tuned on: their figures are the honest
estimate. Every case is diagnosed exactly as ``emr-triage analyze`` does
(:func:`emr_triage.local.inputs.analyse_inputs`), with the run's outcome unknown (``analyze``'s default)
and, separately, with the outcome the case's source states (``--outcome failed`` for a run the thread
says failed).

For each set: the share named right, failures named, healthy logs called failures; for the dev, test and
Spark-run groups: recall and precision per category, the confusion matrix, and a calibration table
(verdicts grouped by confidence, with the share right in each group).

    python tests/accuracy/run.py                 # every table
    python tests/accuracy/run.py --misses        # also list the development sets' misses
    python tests/accuracy/run.py --save v.json   # every verdict, to compare with --compare v.json later
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "tests" / "corpus"
HEALTHY = "no_failure"
GROUPS = {
    "dev": ("excerpts-dev", "wholelogs-dev"),
    "test": ("excerpts-test", "wholelogs-test"),
    "spark-runs": ("spark-runs-dev", "spark-runs-test"),
}
CONFIDENCE_BINS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01))


@dataclass
class Case:
    id: str
    set: str
    files: list[Path]
    expected: str
    accepted: frozenset[str]
    outcome: str = "unknown"  # failed | succeeded | unknown: what the source says of the run
    why: str = ""


@dataclass
class Verdict:
    category: str
    rule_id: str | None
    confidence: float
    summary: str


@dataclass
class Scored:
    case: Case
    verdict: Verdict

    @property
    def right(self) -> bool:
        return self.verdict.category in self.case.accepted

    @property
    def healthy(self) -> bool:
        return self.case.expected == HEALTHY


@dataclass
class Table:
    scored: list[Scored] = field(default_factory=list)

    def add(self, item: Scored) -> None:
        self.scored.append(item)


def _corpus_cases(manifest: Path, kind: str) -> list[Case]:
    entries = yaml.safe_load(manifest.read_text("utf-8")) or []
    cases = []
    for entry in entries:
        files = entry.get("files") or [entry["file"]]
        expected = entry["expected"]
        split = entry.get("split") if entry.get("split") in ("dev", "test") else "unsplit"
        cases.append(
            Case(
                id=entry["id"],
                set=f"{kind}-{split}",
                files=[manifest.parent / f for f in files],
                expected=expected,
                accepted=frozenset([expected, *(entry.get("also_accepted") or [])]),
                outcome=entry.get("outcome") or "unknown",
                why=entry.get("why", ""),
            )
        )
    return cases


def load_cases() -> list[Case]:
    """Every labelled case, in a stable order."""
    cases: list[Case] = []
    logs = FIXTURES / "logs"
    for path in sorted(p for p in logs.rglob("*.log*") if p.suffix in (".log", ".gz")):
        category = path.relative_to(logs).parts[0]
        cases.append(Case(f"fixtures/{path.relative_to(logs)}", "fixtures", [path], category, frozenset([category])))
    for folder, listing in (("realworld", None), ("heldout", "files")):
        sources = yaml.safe_load((FIXTURES / folder / "SOURCES.yaml").read_text("utf-8"))
        sources = sources[listing] if listing else sources
        for name, entry in sorted(sources.items()):
            cases.append(
                Case(
                    f"{folder}/{name}",
                    "tuned-public",
                    [FIXTURES / folder / name],
                    entry["expected"],
                    frozenset([entry["expected"]]),
                )
            )
    for kind, pattern in (("excerpts", "excerpts/*.yaml"), ("wholelogs", "wholelogs/*.yaml")):
        for manifest in sorted(CORPUS.glob(pattern)):
            cases.extend(_corpus_cases(manifest, kind))
    runs = CORPUS / "spark_runs" / "manifest.yaml"
    if runs.exists():
        cases.extend(_corpus_cases(runs, "spark-runs"))
    return cases


def diagnose_case(case: Case, catalogue: Any, outcome: str) -> Verdict:
    """The verdict ``emr-triage analyze --outcome OUTCOME FILE...`` gives."""
    try:
        from emr_triage.local.inputs import analyse_inputs, local_inputs
    except ImportError:  # the release before issue 13 (PYTHONPATH=<its checkout>/layers/common): the baseline
        return _diagnose_with_release_0(case, catalogue)
    inputs = [item for path in case.files for item in local_inputs(str(path))]
    _, diagnosis, _ = analyse_inputs(inputs, catalogue, outcome=outcome)  # type: ignore[arg-type]
    return Verdict(diagnosis.category, diagnosis.rule_id, diagnosis.confidence, diagnosis.summary[:160])


def _diagnose_with_release_0(case: Case, catalogue: Any) -> Verdict:
    """What the first release's ``analyze`` gave (it had no outcome): measured once, as the "before"."""
    from emr_triage.analysis.classify import build_report, diagnose  # type: ignore[import-not-found]

    from emr_triage.analysis.engine import analyse_stream
    from emr_triage.cli import _local_inputs  # type: ignore[attr-defined]

    results = []
    for path in case.files:
        for item in _local_inputs(str(path)):
            results.append(
                analyse_stream(item.opener(), catalogue=catalogue, source=item.source, source_weight=item.weight)
            )
    report = build_report(results)
    diagnosis = diagnose(report.findings, catalogue, report.reads, report.exit_codes)
    return Verdict(diagnosis.category, diagnosis.rule_id, diagnosis.confidence, diagnosis.summary[:160])


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "0/0"


def summary_line(name: str, scored: list[Scored]) -> str:
    failures = [s for s in scored if not s.healthy]
    healthy = [s for s in scored if s.healthy]
    right = sum(s.right for s in scored)
    named = sum(s.right for s in failures)
    false_alarms = sum(s.verdict.category != HEALTHY for s in healthy)
    return (
        f"  {name:<17} right {_pct(right, len(scored)):<16} failures named {_pct(named, len(failures)):<16} "
        f"healthy called failures {false_alarms} of {len(healthy)}"
    )


def category_table(scored: list[Scored]) -> list[str]:
    """Recall and precision per category (a verdict in a case's accepted set counts as right)."""
    expected = Counter(s.case.expected for s in scored)
    recalled = Counter(s.case.expected for s in scored if s.right)
    given = Counter(s.verdict.category for s in scored)
    precise = Counter(s.verdict.category for s in scored if s.right)
    lines = [f"    {'category':<26} {'cases':>5} {'recall':>8} {'verdicts':>8} {'precision':>9}"]
    for category in sorted(set(expected) | set(given)):
        recall = f"{recalled[category] / expected[category]:.0%}" if expected[category] else "-"
        precision = f"{precise[category] / given[category]:.0%}" if given[category] else "-"
        lines.append(f"    {category:<26} {expected[category]:>5} {recall:>8} {given[category]:>8} {precision:>9}")
    return lines


def confusion(scored: list[Scored]) -> list[str]:
    """Expected category (rows) against verdict (columns), wrong verdicts only: the mistakes and their kind."""
    pairs = Counter((s.case.expected, s.verdict.category) for s in scored if not s.right)
    if not pairs:
        return ["    (no wrong verdicts)"]
    lines = [f"    {'expected':<26} -> {'verdict':<26} count"]
    for (want, got), count in sorted(pairs.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"    {want:<26} -> {got:<26} {count:>5}")
    return lines


def calibration(scored: list[Scored]) -> list[str]:
    lines = [f"    {'confidence':<12} {'verdicts':>8} {'right':>7} {'mean conf.':>10}"]
    for low, high in CONFIDENCE_BINS:
        group = [s for s in scored if low <= s.verdict.confidence < high]
        if not group:
            continue
        right = sum(s.right for s in group) / len(group)
        mean = sum(s.verdict.confidence for s in group) / len(group)
        label = f"{low:.1f}-{min(high, 1.0):.1f}"
        lines.append(f"    {label:<12} {len(group):>8} {right:>7.0%} {mean:>10.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list the misses of the development sets")
    parser.add_argument("--reveal-test", action="store_true", help="also list the test sets' misses (not for tuning)")
    parser.add_argument("--save", metavar="FILE", help="write every verdict to FILE (JSON)")
    parser.add_argument("--compare", metavar="FILE", help="list development cases whose verdict changed since FILE")
    parser.add_argument("--set", action="append", help="only these sets (repeatable)")
    args = parser.parse_args(argv)

    from emr_triage.analysis.catalogue import load_catalogue

    catalogue = load_catalogue()
    cases = [c for c in load_cases() if not args.set or c.set in args.set]
    unsplit = [c for c in cases if c.set.endswith("-unsplit")]
    if unsplit:
        print(f"note: {len(unsplit)} corpus cases have no split yet and are left out (run tests/accuracy/split.py)\n")
        cases = [c for c in cases if c not in unsplit]
    results: dict[str, dict[str, Scored]] = {"unknown": {}, "known": {}}
    for case in cases:
        for mode in results:
            outcome = "unknown" if mode == "unknown" else case.outcome
            if mode == "known" and outcome == "unknown":
                results[mode][case.id] = results["unknown"][case.id]
                continue
            results[mode][case.id] = Scored(case, diagnose_case(case, catalogue, outcome))

    by_set: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        by_set[case.set].append(case.id)
    order = ["fixtures", "tuned-public", *[s for group in GROUPS.values() for s in group]]
    for mode, title in (
        ("unknown", "outcome unknown (emr-triage analyze's default)"),
        ("known", "outcome as the source states it"),
    ):
        print(f"Accuracy, {title}")
        for name in order:
            if by_set.get(name):
                print(summary_line(name, [results[mode][i] for i in by_set[name]]))
        print()
    for group, sets in GROUPS.items():
        scored = [results["unknown"][i] for name in sets for i in by_set.get(name, [])]
        if not scored:
            continue
        print(f"== {group} ({' + '.join(sets)}), outcome unknown: {_pct(sum(s.right for s in scored), len(scored))}")
        print("  per category:")
        print("\n".join(category_table(scored)))
        print("  confusion (wrong verdicts):")
        print("\n".join(confusion(scored)))
        print("  calibration:")
        print("\n".join(calibration(scored)))
        print()

    if args.misses or args.reveal_test:
        shown = {"dev"} | ({"test"} if args.reveal_test else set())
        for mode in results:
            print(f"Misses, outcome {mode}:")
            for scored in results[mode].values():
                if scored.right or (scored.case.set.endswith("-test") and "test" not in shown):
                    continue
                v = scored.verdict
                print(
                    f"  {scored.case.set:<16} {scored.case.id:<55} want {scored.case.expected:<24} "
                    f"got {v.category} ({v.rule_id}, {v.confidence}) {v.summary[:90]!r}"
                )
            print()
    if args.save:
        document = {
            mode: {i: {"category": s.verdict.category, "rule_id": s.verdict.rule_id} for i, s in scored_by.items()}
            for mode, scored_by in results.items()
        }
        Path(args.save).write_text(json.dumps(document, indent=1, sort_keys=True), "utf-8")
    if args.compare:
        before = json.loads(Path(args.compare).read_text("utf-8"))
        for mode in results:
            changed = [
                (i, before[mode][i]["category"], s)
                for i, s in results[mode].items()
                if i in before.get(mode, {}) and before[mode][i]["category"] != s.verdict.category
            ]
            hidden = sum(1 for _, _, s in changed if s.case.set.endswith("-test") and not args.reveal_test)
            print(f"Changed since {args.compare}, outcome {mode}: {len(changed)} ({hidden} in test sets, not listed)")
            for case_id, old, s in changed:
                if s.case.set.endswith("-test") and not args.reveal_test:
                    continue
                mark = "+" if s.right else "-"
                print(f"  {mark} {case_id:<60} {old} -> {s.verdict.category} (want {s.case.expected})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
