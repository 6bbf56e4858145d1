"""User rules cannot hang the analysis (issue 14, class 8): a pattern that can backtrack super-linearly in
Python's ``re`` is refused when its rules file is loaded, with one line naming the rule and the part; every
pattern of the shipped catalogue is still accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.patterns import unbounded_wildcard
from emr_triage.analysis.redos import backtracking_risk, rescan_risk
from emr_triage.exceptions import CatalogueError

RULES = Path(__file__).resolve().parents[2] / "layers/common/emr_triage/analysis/rules"

# (pattern, an attack string on which Python's re takes super-linear time, the part the reason names)
EVIL = [
    (r"AcmeFail (a+)+$", "AcmeFail " + "a" * 40 + "!", "a+"),
    (r"AcmeFail (a|aa)+$", "AcmeFail " + "a" * 40 + "!", "inside the repeat"),
    (r"AcmeFail (\w+\s?)*$", "AcmeFail " + "a" * 40 + "!", r"\w+"),
    (r"AcmeFail (.*a){12}", "AcmeFail " + "a" * 40, ".*"),
    (r"AcmeFail ^(\d+)*x", "AcmeFail " + "1" * 40, r"\d+"),
    (r"AcmeFail (x+x+)+y", "AcmeFail " + "x" * 40, "x+"),
    (r"AcmeFail \s*\s*\s*$", "AcmeFail " + " " * 5000 + "x", r"\s*"),
    (r"AcmeFail .*.*=x", "AcmeFail " + "=" * 5000, ".*"),
    (r"AcmeFail \w+\d+x", "AcmeFail " + "1" * 5000, r"\w+"),
    (r"AcmeFail (?:\s|.)*x", "AcmeFail " + " " * 40, r"\s|."),
    (r"AcmeFail (?:[a-z]{0,200}\.?){0,200}!", "AcmeFail " + "a" * 5000, "{0,200}"),
    (r"AcmeFail (['\"])\w+\1", "AcmeFail '" + "a" * 40, r"\1"),
    (r"AcmeFail (?:(?:ab)*(?:ab)*)x", "AcmeFail " + "ab" * 2000, "(?:ab)*"),
    # OWASP's "ReDoS" page: its e-mail validator (an optional separator does not delimit the iterations)
    (
        r"AcmeFail ^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}"
        r"(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
        "AcmeFail " + "a" * 40 + "!",
        "[a-zA-Z0-9]+",
    ),
    (r"AcmeFail ^(([a-z])+.)+[A-Z]([a-z])+$", "AcmeFail " + "a" * 40, "([a-z])+"),
    (r"AcmeFail (a|a?)+$", "AcmeFail " + "a" * 40 + "!", "a|a?"),
    (r"AcmeFail (\d+|\d+\.)+x", "AcmeFail " + "1" * 40, r"\d+"),
]


def rules_file(folder: Path, pattern: str) -> Path:
    path = folder / "evil.yaml"
    rule = {
        "id": "evil_rule",
        "category": "acme",
        "rank": 5,
        "severity": "high",
        "retryable": False,
        "title": "ACME failed",
        "patterns": [pattern],
        "explanation": "ACME failed.",
        "remediation": "Call ACME.",
    }
    path.write_text(yaml.safe_dump({"version": 1, "rules": [rule]}))
    return path


@pytest.mark.parametrize(("pattern", "attack", "part"), EVIL, ids=[p for p, _, _ in EVIL])
def test_a_user_pattern_that_backtracks_super_linearly_is_refused_at_load_naming_rule_and_part(
    tmp_path: Path, pattern: str, attack: str, part: str
) -> None:
    # Given a user rules file whose only rule has a pattern that is slow on the attack string
    path = rules_file(tmp_path, pattern)
    # When the catalogue is loaded with it
    with pytest.raises(CatalogueError) as refused:
        load_catalogue([path])
    # Then it is refused in one line naming the file, the rule and the offending part
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "evil_rule" in message, message
    assert part in message and ("exponential" in message or "polynomial" in message), message


def _shipped_patterns() -> list[tuple[str, str, bool]]:
    found = []
    for path in sorted(RULES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text("utf-8"))
        for entry in [*(document.get("rules") or []), *(document.get("benign") or [])]:
            for field in ("patterns", "not_patterns", "symptom_when", "frames"):
                for pattern in entry.get(field) or []:
                    found.append((f"{path.name}:{entry['id']}:{field}", pattern, entry.get("ignore_case", True)))
    return found


SHIPPED = _shipped_patterns()


def test_every_pattern_of_the_shipped_catalogue_is_accepted() -> None:
    # Given every pattern of every shipped rules file (rules and benign lines, every field)
    assert len(SHIPPED) > 300
    # When each is checked / Then none is refused
    refused = [(where, p, why) for where, p, case in SHIPPED if (why := backtracking_risk(p, case))]
    assert refused == []
    # And the shipped catalogue loads unchanged
    assert load_catalogue().rules


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:[\w$]+\.)+\w+Exception",
        r"(?:\d{1,3}\.){3}\d{1,3}",
        r"(?:foo|bar)+baz",
        r"\s+\S+:",
        r"HDFS_DELEGATION_TOKEN\b(?:(?!HDFS_DELEGATION_TOKEN\b).)*(?:expired)",
        r"Exit code: \d+$",
        r"key=[^,]*,value",
        r"\w+\d+",
    ],
)
def test_ordinary_shapes_are_accepted(pattern: str) -> None:
    # Given a pattern whose repeats are delimited, bounded or at the end / Then it is not refused
    assert backtracking_risk(pattern) is None


# (pattern, a line on which searching for it in Python's re takes quadratic time, the repeat named)
RESCANNING = [
    (r"AcmeFail|\w+x", "a" * 5000, r"\w+"),
    (r"\S+Exception", "a" * 5000 + " Exception", r"\S+"),
    (r"[A-Z]\w+Exception", "A" * 5000 + " Exception", r"\w+"),
    (r"AcmeFail|(?:[\w$]+\.)+\w+Exception", "a" * 5000, r"(?:[\w\$]+\.)+"),
    (r"AcmeFail|\s+\S+:", " " * 5000, r"\s+"),
    (r"AcmeFail|X(?:(?!Y).)*y", "X" * 5000, "…"),
    (r"AcmeFail|^\S+a\S+b", "a" * 5000, r"\S+"),
    (r"AcmeFail|[^\"]+?\b", " " * 5000, '[^"]+?'),
]


@pytest.mark.parametrize(("pattern", "attack", "part"), RESCANNING, ids=[p for p, _, _ in RESCANNING])
def test_a_user_pattern_that_rescans_a_long_run_from_every_position_is_refused_at_load(
    tmp_path: Path, pattern: str, attack: str, part: str
) -> None:
    # Given a user rule whose search rescans a run of characters from each position where it may begin
    import re
    import time

    started = time.perf_counter()
    re.search(pattern, attack)
    assert time.perf_counter() - started > 0.002  # the attack is real: 5,000 characters take this long
    path = rules_file(tmp_path, pattern)
    # When the catalogue is loaded with it / Then it is refused in one line naming the repeat and the fix
    with pytest.raises(CatalogueError) as refused:
        load_catalogue([path])
    message = str(refused.value)
    assert "\n" not in message and "evil_rule" in message and "quadratic" in message, message
    assert part in message and "right before it" in message, message


@pytest.mark.parametrize(
    "pattern",
    [
        r"Caused by: \S+Exception",
        r"\b[A-Z]\w+Exception",
        r'Exception in thread "[^"]+" \w+Error',
        r"AcmeFail exited with\s+exitCode: -?\d+",
        r"Container \[pid=\d+,\s*containerID=\S+\] is running",
        r"Lost connection to worker (?:actor )?\S+ Exiting",
        r"HDFS_DELEGATION_TOKEN\b(?:(?!HDFS_DELEGATION_TOKEN\b).)*expired",
        r"^\S+ AcmeFail",
        r"AcmeFail: \w+",
        r"AcmeFail \w{1,100}x",
    ],
)
def test_delimited_bounded_anchored_or_final_repeats_are_accepted(pattern: str) -> None:
    # Given a repeat that can begin only once per run (after a character it cannot match, \b, ^), is
    # bounded, or ends the pattern / Then searching for it is linear and it is not refused
    assert rescan_risk(pattern) is None and backtracking_risk(pattern) is None


def test_every_pattern_of_the_shipped_catalogue_passes_the_rescan_check() -> None:
    refused = [(where, p, why) for where, p, case in SHIPPED if (why := rescan_risk(p, case))]
    assert refused == []


def _generated_patterns(count: int, seed: int) -> list[str]:
    """Small random patterns over the atoms and repeats that decide these checks."""
    import random

    chooser = random.Random(seed)
    atoms = [".", "[^,]", ",", "a", "b", " ", "x", r"\w", r"\s", r"\S", r"\d", '[^"]', '"', "[a-z]", r"\b", "^"]
    repeats = ["", "", "+", "*", "?", "{1,3}", "+?"]

    def one(depth: int) -> str:
        out = []
        for _ in range(chooser.randint(1, 4)):
            if depth < 2 and chooser.random() < 0.2:
                inner = one(depth + 1)
                if chooser.random() < 0.3:
                    inner += "|" + one(depth + 1)
                atom = f"(?:{inner})"
            else:
                atom = chooser.choice(atoms)
            out.append(atom + ("" if atom in (r"\b", "^") else chooser.choice(repeats)))
        return "".join(out)

    return [one(0) for _ in range(count)]


def test_generated_patterns_the_checks_accept_search_long_runs_in_linear_time() -> None:
    # Given random patterns that pass every check, and lines that pump each kind of character they use
    import re
    import time

    accepted = []
    for pattern in _generated_patterns(600, seed=14):
        try:
            compiled = re.compile(pattern)
        except re.error:
            continue
        if not (backtracking_risk(pattern) or unbounded_wildcard(pattern) or rescan_risk(pattern)):
            accepted.append(compiled)
    assert len(accepted) > 200  # the checks leave most ordinary shapes alone
    seeds = [",", ",a", ".", "a", "b", " ", "x", "1", '"', "ab", "a ", "a1", '"a', " a", "a b", "ax"]

    def seconds(compiled: re.Pattern[str], line: str) -> float:
        started = time.perf_counter()
        compiled.search(line)
        return time.perf_counter() - started

    # When each is searched in lines of 1,000 and 4,000 such characters
    slow = []
    for compiled in accepted:
        for seed in seeds:
            for tail in ("", "!"):
                short, long = (seed * (n // len(seed)) + tail for n in (1000, 4000))
                # Then 4x the text takes about 4x the time, never the 16x of a quadratic search (the best of
                # three tries: a busy machine slows one now and then, a quadratic search every time)
                if all(
                    min(seconds(compiled, long) for _ in range(3)) > max(0.004, 9 * seconds(compiled, short))
                    for _ in range(2)
                ):
                    slow.append((compiled.pattern, seed, tail))
    assert slow == []
