"""Run the log analysis engine once over a file and print what it did as JSON (for `make bench`).

Run in a fresh interpreter by tests/bench/run.py so that its peak RSS is the engine's (plus the
interpreter's and the imports', reported separately as the RSS before the analysis). The time
covers the analysis and the diagnosis only, not interpreter start-up, imports or loading the catalogue.

    python tests/bench/engine_driver.py FILE
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    path = Path(sys.argv[1])
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.engine import analyse_stream
    from emr_triage.analysis.verdict import diagnose
    from emr_triage.logs.reader import iter_file_chunks

    catalogue = load_catalogue()
    # A budget larger than any bench file: the whole log must be analysed (the default is 1 GiB).
    budget = 1 << 40
    rss_before = _peak_rss_bytes()
    start = time.perf_counter()
    analysis, read = analyse_stream(iter_file_chunks(path), catalogue=catalogue, source=str(path), max_bytes=budget)
    diagnosis = diagnose(analysis.findings, catalogue, [read])
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "compressed_bytes_read": read.bytes_read,
                # Newer engines count the uncompressed bytes they scanned; older ones do not.
                "uncompressed_bytes_read": getattr(read, "bytes_scanned", None),
                "lines": read.lines,
                "partial": read.partial,
                "notes": read.notes,
                "category": diagnosis.category,
                "rule_id": diagnosis.rule_id,
                "line_no": diagnosis.line_no,
                "location": diagnosis.location,
                "findings": [(f.rule_id, f.line_no, f.count) for f in analysis.findings],
                "peak_rss_bytes": peak,
                "rss_before_analysis_bytes": rss_before,
                "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "scanner": _scanner_name(catalogue),
            }
        )
    )


def _peak_rss_bytes() -> int:
    """This process's peak resident memory.

    Linux's ``getrusage().ru_maxrss`` survives fork and exec: a child of a big parent (the bench runner,
    holding its synthetic logs) starts with the parent's figure. ``VmHWM`` in /proc belongs to this
    process's own address space, so it is used when available.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _scanner_name(catalogue: Any) -> str | None:
    """The literal scanner backend the engine used, if this version of the engine has one."""
    scanner = getattr(getattr(catalogue, "prefilter", None), "scanner", None)
    try:
        return str(scanner().name) if callable(scanner) else None
    except Exception as exc:  # a diagnostic only
        return f"unknown ({type(exc).__name__})"


if __name__ == "__main__":
    main()
