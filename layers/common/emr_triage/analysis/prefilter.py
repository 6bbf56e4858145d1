"""The prefilter: the literals the scanner looks for in every block, and which rules and extractors each
one sends a line to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from emr_triage.analysis.scan import LiteralScanner, make_scanner

if TYPE_CHECKING:
    from emr_triage.analysis.catalogue import Rule

# What only an interactive session's log says, where a statement can fail and later ones succeed:
# spark-shell and the pyspark shell, the Thrift server, Livy, Zeppelin, Jupyter.
SESSION_MARKERS = (
    "Spark context available as",
    "Spark session available as",
    "Type in expressions to have them evaluated",
    "scala> ",
    "HiveThriftServer2",
    "SparkExecuteStatementOperation",
    "LivyServer",
    "InteractiveSession",
    "RemoteInterpreterServer",
    "NotebookApp",
    "IPKernelApp",
)
# What the analyser reads from lines besides rule matches, and the literals every such line contains.
EXTRACTOR_HINTS: dict[str, tuple[str, ...]] = {
    # YARN application ids: "Submitted application application_..." (spark-submit, step stderr) ...
    "application_id": ("submitted application", "application report for", "application id"),
    # Exit codes and signals: "exit code 137", "exitCode: -104", "Exit status: -100", "RECEIVED SIGNAL TERM"
    "exit_code": ("exit code", "exitcode", "exit status", "exited with status", "received signal"),
    # Sections of `yarn logs` output: "Container: container_... on host" then "LogType:stderr"
    "section": ("container: container_", "logtype:"),
    # Interactive sessions (see SESSION_MARKERS)
    "session": tuple(marker.lower() for marker in SESSION_MARKERS),
}


_MAX_ROUTES = 4096


@dataclass(frozen=True)
class Prefilter:
    """The literals the scanner looks for, and who asked for each.

    Every line a rule can match contains one of the rule's hints (see :attr:`Rule.hints`), so only lines
    with a hit are decoded and tried, and only against the rules (and extractors) whose hints hit there.
    A hint that contains a shorter hint adds nothing (the shorter one fires whenever it would), so it is
    dropped and its owners move to the shorter one.
    """

    hints: tuple[str, ...]
    rules: tuple[tuple[Rule, ...], ...]  # per hint, the rules that may match a line with it
    extractors: tuple[frozenset[str], ...]  # per hint, the extractors (EXTRACTOR_HINTS keys) to run

    @classmethod
    def build(cls, rules: tuple[Rule, ...], extractor_hints: dict[str, tuple[str, ...]] | None = None) -> Prefilter:
        owners: dict[str, tuple[set[str], set[str]]] = {}
        for rule in rules:
            for hint in rule.hints or ():
                owners.setdefault(hint, (set(), set()))[0].add(rule.id)
        for extractor, hints in (EXTRACTOR_HINTS if extractor_hints is None else extractor_hints).items():
            for hint in hints:
                owners.setdefault(hint.lower(), (set(), set()))[1].add(extractor)
        # A rule's own `scan_for` literals are common on purpose-limited lines ("exception:"): a longer
        # hint that contains one keeps its own place, so its rules are not tried on every such line.
        exclusive = {h.lower() for rule in rules for h in rule.scan_for}
        minimal: list[str] = []
        for hint in sorted(owners, key=lambda h: (len(h), h)):
            if not any(shorter in hint for shorter in minimal if shorter not in exclusive):
                minimal.append(hint)
        rule_sets: list[tuple[Rule, ...]] = []
        extractor_sets: list[frozenset[str]] = []
        for literal in minimal:
            rule_ids: set[str] = set()
            extractors: set[str] = set()
            for hint, (hint_rules, hint_extractors) in owners.items():
                if hint == literal or (literal in hint and literal not in exclusive):
                    rule_ids |= hint_rules
                    extractors |= hint_extractors
            # Keep the catalogue's order: it is the order rules are tried in.
            rule_sets.append(tuple(rule for rule in rules if rule.id in rule_ids))
            extractor_sets.append(frozenset(extractors))
        return cls(hints=tuple(minimal), rules=tuple(rule_sets), extractors=tuple(extractor_sets))

    def route(self, indexes: Iterable[int]) -> tuple[tuple[Rule, ...], frozenset[str]]:
        """Where a line on which these hints hit goes: the rules to try, in the order they are tried
        (fallbacks last, the others by rank, then id), and the extractors to run.

        A log's candidate lines hit a few combinations of hints over and over: each is worked out once.
        """
        key = frozenset(indexes)
        found = self._routes.get(key)
        if found is not None:
            return found
        rules: dict[str, Rule] = {}
        extractors: set[str] = set()
        for index in sorted(key):
            for rule in self.rules[index]:
                rules.setdefault(rule.id, rule)
            extractors |= self.extractors[index]
        order = sorted(rules.values(), key=lambda rule: (rule.fallback, rule.rank, rule.id))
        found = (tuple(order), frozenset(extractors))
        if len(self._routes) < _MAX_ROUTES:  # a bound for a log whose lines hit hints in every combination
            self._routes[key] = found
        return found

    @cached_property
    def _routes(self) -> dict[frozenset[int], tuple[tuple[Rule, ...], frozenset[str]]]:
        return {}

    def hit(self, lowered: str) -> bool:
        """Whether lowercased text contains any hint."""
        return any(hint in lowered for hint in self.hints)

    def scanner(self, backend: str | None = None) -> LiteralScanner:
        """A scanner for these hints (compiled once per catalogue and backend)."""
        key = backend or ""
        cached = self._scanners.get(key)
        if cached is None:
            cached = self._scanners[key] = make_scanner(self.hints, backend)
        return cached

    @cached_property
    def _scanners(self) -> dict[str, LiteralScanner]:
        return {}
