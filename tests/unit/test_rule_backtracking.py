"""User rules cannot hang the analysis (issue 14, class 8): a pattern that can backtrack super-linearly in
Python's ``re`` is refused when its rules file is loaded, with one line naming the rule and the part; every
pattern of the shipped catalogue is still accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.patterns import backtracking_risk
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
