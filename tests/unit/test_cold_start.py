"""What a function's cold start imports: not the libraries it only needs on rare paths (YAML for a routing
file, difflib for a redaction that changed the number of lines), nor the ones it never calls that a
library would import for it (Powertools' models of every event source, the X-Ray SDK's patches); and
what the tracer patches inside Lambda: the AWS calls (botocore), nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_AT_COLD_START = (
    "yaml",
    "difflib",
    "requests",
    "sqlite3",
    "aws_lambda_powertools.utilities.parser.models.s3",
    "aws_lambda_powertools.utilities.parser.models.apigw",
)


@pytest.mark.parametrize("function", ["emr_events", "log_arrivals", "slack_interactions", "follow_ups"])
def test_a_cold_start_imports_nothing_it_does_not_need(function: str) -> None:
    # Given a fresh interpreter with Lambda's runtime variables, in the function's folder
    folder = ROOT / "functions" / function
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(folder),
        "AWS_LAMBDA_FUNCTION_NAME": f"emr-triage-{function}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    names = list(NOT_AT_COLD_START)
    code = (
        "import json, sys; import handler; from aws_xray_sdk.core import patcher; "
        f"print(json.dumps([[m for m in {names!r} if m in sys.modules], sorted(patcher._PATCHED_MODULES)]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    # When its handler is imported, then none of those modules is, and botocore alone is patched (every AWS
    # call is a subsegment)
    assert json.loads(result.stdout.splitlines()[-1]) == [[], ["botocore"]]
