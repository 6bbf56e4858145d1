"""How fast the interactive function answers a button press, against Slack's 3 seconds: a warm function
on the embedded stack (moto, the console notifier), the acknowledgement measured apart from the work that
runs after it (bolt's lazy listener: here kept, then run in-process and timed on its own).

    python tests/bench/interactions.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "events" / "scenarios" / "acknowledge-mute-then-unmute"
PRESSES = 20


def bench_interactions(presses: int = PRESSES) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from emr_triage import runtime
    from emr_triage.local.interactions import LOCAL_SIGNING_SECRET, aimed, request_event
    from emr_triage.local.items import collect_items
    from emr_triage.local.replay import LocalContext, LocalStack, environment

    items = collect_items([FOLDER])
    acks: list[float] = []
    works: list[float] = []
    with redirect_stdout(StringIO()), LocalStack(ROOT, scenario=items[0].scenario, folder=FOLDER) as stack:
        for item in items[:2]:  # the failure and its log: one alert, diagnosed
            stack.replay(item)
        spec = next(s for s in stack.specs if s.logical_id == "SlackInteractionsFunction")
        incident = stack.incident("j-1ORDERSETL020.s-2LOADORDERS00")
        assert incident is not None and incident.slack is not None
        saved = json.loads((FOLDER / "03-acknowledge.json").read_text())
        context = LocalContext(spec.logical_id, spec.memory_mb, spec.timeout_seconds, stack.region, stack.account)
        # As deployed (the lazy work is an invocation of its own), with that invocation kept, not sent.
        with environment({**spec.environment, **stack.extra_environment, "SLACK_LAZY": "lambda"}):
            runtime.reset_settings()
            handler = stack.handler(spec)
            kept: list[dict[str, Any]] = []

            class Keep:
                """A Lambda client that keeps the lazy invocation instead of sending it."""

                def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:  # noqa: N803
                    kept.append(json.loads(Payload))
                    return {"StatusCode": 202}

            from slack_bolt.adapter.aws_lambda import lazy_listener_runner

            client = lazy_listener_runner.boto3.client
            lazy_listener_runner.boto3.client = lambda *a, **k: Keep()
            for n in range(presses + 1):
                action = "acknowledge" if n % 2 == 0 else "reopen"  # alternate: each press changes something
                payload = aimed(saved, incident.slack.channel, incident.slack.ts)
                payload["actions"][0]["action_id"] = "resolve" if action == "reopen" and n % 4 == 1 else action
                start = time.perf_counter()
                answer = handler(request_event(payload, LOCAL_SIGNING_SECRET), context)
                ack = time.perf_counter() - start
                assert answer["statusCode"] == 200, answer
                start = time.perf_counter()
                while kept:
                    handler(kept.pop(0), context)
                work = time.perf_counter() - start
                if n:  # the first is the function's first request (its clients built)
                    acks.append(ack * 1000)
                    works.append(work * 1000)
            lazy_listener_runner.boto3.client = client
    print(f"interaction_ack_ms_p50: {statistics.median(acks):.0f} (warm, {presses} presses; Slack waits 3,000)")
    print(f"interaction_ack_ms_max: {max(acks):.0f}")
    print(f"interaction_work_after_ack_ms_p50: {statistics.median(works):.0f} (the change, the edit: lazy)")
    print(f"interaction_ack_vs_slack_limit_ratio: {max(acks) / 3000:.3f}")


if __name__ == "__main__":
    bench_interactions()
