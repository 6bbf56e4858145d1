"""Fan-in: an application's container logs landing together (tests/bench/fanin.py, at a small scale).

Each log event runs LogArrivalFunction's handler in its own thread against the embedded stack. Logs that
change nothing the incident shows are not merged into the incident item (which every concurrent
invocation would otherwise rewrite, conflicting with the others) but kept as items of their own, and the
next log check merges them. Before that change, 100 logs from 20 threads made 73 failed invocations
(8 version conflicts each) and lost 7 logs.
"""

from __future__ import annotations

from tests.bench.fanin import run_fanin


def test_logs_landing_together_are_each_analysed_once_and_no_invocation_fails() -> None:
    # Given one failed step's application with 60 container logs (a third with symptoms of their own)
    # When their events are handled from 12 threads at once, then the incident's log check runs
    figures = run_fanin(logs=60, workers=12)
    # Then every log was analysed exactly once, no invocation failed, and the check merged every log kept
    assert figures["fanin_logs_analysed_once"] == "60 of 60", figures
    assert figures["fanin_failed_invocations"] == "0", figures
    assert figures["fanin_kept_logs_not_merged_after_the_checks"].startswith("0 "), figures
    assert int(figures["fanin_logs_kept_for_the_check"].split()[0]) > 0, figures
    # And the verdict is the executors' cause, not the driver's "application failed"
    assert figures["fanin_verdict"].startswith("oom_heap"), figures
