"""Exit codes and signals in words, from the table in ``rules/exit_codes.yaml``."""

from __future__ import annotations

import re
import signal
from functools import lru_cache
from importlib import resources

# "exit code 137", "exitCode: -104", "Exit status: -100", "exited with status 1", "Exit code is 143",
# "Exit code from container container_... is : 137", "Step failed with exitCode 1".
# The blanks are matched possessively: "exit code" then a long run of blanks and no number must fail in
# linear time, not try every way of splitting the run between the optional parts (quadratic).
EXIT_CODE = re.compile(
    r"(?i)\bexit(?:ed with)?[ _]?(?:code|status)"
    r"(?:\s++from\s++container\s++\S+)?(?:\s++is)?\s*+(?:[:=]\s*+)?\[?(?P<code>-?\d{1,3})(?!\d|\.\d)"
)
SIGNAL = re.compile(r"\bRECEIVED SIGNAL (?:SIG)?(?P<name>[A-Z]{2,6})\b")


@lru_cache(maxsize=1)
def _table() -> tuple[dict[int, str], dict[str, str]]:
    import yaml  # here: most logs have no exit code, and the command line's start-up is measured

    text = resources.files("emr_triage.analysis").joinpath("rules", "exit_codes.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    codes = {int(code): str(meaning) for code, meaning in data["codes"].items()}
    signals = {str(name): str(meaning) for name, meaning in data["signals"].items()}
    return codes, signals


def describe_exit_code(code: int) -> str:
    """What an exit code means (YARN container status, Spark executor/AM code, or 128 + a signal)."""
    codes, _ = _table()
    if code in codes:
        return codes[code]
    if 128 < code < 128 + 65:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"killed by {name}"
    return "an exit code with no standard meaning; see the process's own output"


def describe_signal(name: str) -> str:
    """What receiving a signal (``TERM``, ``KILL`` ...) means for a Spark process."""
    _, signals = _table()
    return signals.get(name.upper(), f"SIG{name.upper()}")
