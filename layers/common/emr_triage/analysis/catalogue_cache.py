"""The validated catalogue kept between processes, so that a command's start-up skips re-checking it.

Loading the catalogue parses its YAML, validates every rule, compiles each of its regular expressions to
check it, works out every pattern's literals and the prefilter built from them: most of the command
line's start-up, for text that rarely changes. The result is kept as JSON in a cache folder, under a key
that covers everything it was derived from: each rules file's text and name, the code that checks and
derives (this module's and the catalogue module's source) and the Python and package versions. A hit
rebuilds the rules with pydantic (fast: the slow checks are what the text already passed); anything else
(no file, another key, damage, a model that no longer accepts the data) is a miss, and the catalogue is
loaded the usual way and kept for next time. A folder that cannot be written is no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emr_triage import __version__
from emr_triage.cache import write_atomically

if TYPE_CHECKING:
    from emr_triage.analysis.catalogue import Catalogue

_FORMAT = 1
_FILE = "catalogue.json"


def cache_key(sources: list[tuple[str, str]]) -> str:
    """The key of a catalogue loaded from ``sources`` (each rules file's origin and text, in order)."""
    from emr_triage.analysis import catalogue, patterns, prefilter

    digest = hashlib.sha256(f"{_FORMAT}\0{__version__}\0{sys.version}\0".encode())
    for module in (catalogue.__file__, patterns.__file__, prefilter.__file__, __file__):
        digest.update(Path(module).read_bytes())
    for origin, text in sources:
        digest.update(f"\0{origin}\0{len(text)}\0".encode())
        digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def load(cache_dir: Path, key: str) -> Catalogue | None:
    """The catalogue kept under ``key``, or None."""
    from emr_triage.analysis.catalogue import BenignLine, Catalogue, EmrReason, Rule
    from emr_triage.analysis.prefilter import Prefilter

    try:
        kept = json.loads((cache_dir / _FILE).read_text("utf-8"))
        if kept.get("key") != key:
            return None
        rules = tuple(Rule.model_validate(rule) for rule in kept["rules"])
        by_id = {rule.id: rule for rule in rules}
        prefilter = kept["prefilter"]
        loaded = Catalogue(
            version=kept["version"],
            rules=rules,
            emr_reasons={code: EmrReason.model_validate(reason) for code, reason in kept["emr_reasons"].items()},
            benign=tuple(BenignLine.model_validate(entry) for entry in kept["benign"]),
        )
        built = Prefilter(
            hints=tuple(prefilter["hints"]),
            rules=tuple(tuple(by_id[rule_id] for rule_id in ids) for ids in prefilter["rules"]),
            extractors=tuple(frozenset(names) for names in prefilter["extractors"]),
        )
    except Exception:  # a miss, whatever went wrong: the catalogue is loaded the usual way
        return None
    loaded.__dict__["prefilter"] = built  # what Catalogue.prefilter would have built
    return loaded


def store(cache_dir: Path, key: str, catalogue: Catalogue) -> None:
    """Keep ``catalogue`` under ``key`` (replacing what was kept); silently skipped when it cannot be."""
    prefilter = catalogue.prefilter
    kept: dict[str, Any] = {
        "key": key,
        "version": catalogue.version,
        "rules": [rule.model_dump(mode="json") for rule in catalogue.rules],
        "emr_reasons": {code: reason.model_dump(mode="json") for code, reason in catalogue.emr_reasons.items()},
        "benign": [entry.model_dump(mode="json") for entry in catalogue.benign],
        "prefilter": {
            "hints": list(prefilter.hints),
            "rules": [[rule.id for rule in rules] for rules in prefilter.rules],
            "extractors": [sorted(names) for names in prefilter.extractors],
        },
    }
    with contextlib.suppress(OSError):
        write_atomically(cache_dir / _FILE, json.dumps(kept, ensure_ascii=False).encode("utf-8"))
