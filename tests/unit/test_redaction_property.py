"""Property: a secret of any family the redaction knows, planted anywhere in a failing log (its start, its
end, across the 500-character cut, in the lines before the error, on the line after its key, on a line of
its stack), survives in no output of the analysis: evidence, extract, the uploaded file, the JSON and the
terminal report."""

from __future__ import annotations

import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emr_triage.analysis.catalogue import load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.verdict import attachment_text, diagnose
from emr_triage.local.output import analysis_json, print_analysis
from emr_triage.models.analysis import AnalysisReport
from emr_triage.terminal import json_text

CATALOGUE = load_catalogue()
ERROR = 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space'
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits


def _value(alphabet: str, size: int) -> st.SearchStrategy[str]:
    # Starts with a mark no other output text has, so that finding its first characters means a leak.
    return st.text(alphabet, min_size=size - 3, max_size=size - 3).map(lambda v: "Q9Z" + v)


# (what carries the secret, the secret itself): the secret's own characters must not be left anywhere.
FAMILIES = st.one_of(
    _value(UPPER, 16).map(lambda v: ("", f"AKIA{v}")),
    _value(UPPER, 16).map(lambda v: ("", f"ASIA{v}")),
    _value(ALNUM, 20).map(lambda v: ("password=", v)),
    _value(ALNUM, 20).map(lambda v: ("fs.s3a.secret.key=", v)),
    _value(ALNUM, 16).map(lambda v: ("jdbc:postgresql://etl:", f"{v}@db:5432/x")),
    _value(ALNUM, 24).map(lambda v: ("", f"xoxb-1234567890-{v}")),
    _value(ALNUM, 36).map(lambda v: ("", f"ghp_{v}")),
    # a password in prose (the mark's digit makes it no word of the sentence)
    _value(ALNUM, 20).map(lambda v: ("password was ", v)),
    _value(ALNUM, 20).map(lambda v: ("the secret key is ", v)),
    _value(ALNUM, 20).map(lambda v: ("db password: ", v)),
)
PLACES = st.sampled_from(["start", "end", "across the cut", "line before", "next line", "stack line"])


def _log(carrier: str, secret: str, place: str, offset: int) -> list[str]:
    planted = f"{carrier}{secret}"
    error, before, stack = ERROR, "26/11/20 02:00:00 INFO Client: starting", "\tat com.acme.Job.run(Job.scala:1)"
    if place == "start":
        error = f"{ERROR}: {planted} while writing"
    elif place == "end":
        error = f"{ERROR} while writing {planted}"
    elif place == "across the cut":
        # The secret's own characters start `offset` characters before the cut at 500.
        padding = 500 - offset - len(ERROR) - 2 - len(carrier)
        error = f"{ERROR} {'~' * padding} {planted} and more"
    elif place == "line before":
        before = f"26/11/20 02:00:00 INFO Client: connecting with {planted}"
    elif place == "next line" and carrier.rstrip().endswith(("=", ":")) and "://" not in carrier:
        # The key ends the line before; its value starts the next, before the error text.
        key_line = f"26/11/20 02:00:00 INFO Client: connecting with {carrier.rstrip()}"
        return [key_line, f"{secret} was refused", error, stack, "\tat com.acme.Main.main(Main.scala:2)"]
    elif place == "next line":  # no key (a token, a URL, prose): the next line holds it whole
        before = f"{planted} was refused"
    else:
        stack = f"\tat com.acme.Job.run(Job.scala:1) {planted}"
    return [before, error, stack, "\tat com.acme.Main.main(Main.scala:2)"]


def _outputs(lines: list[str]) -> str:
    analysis = analyse_lines(lines, catalogue=CATALOGUE, source="s3://logs/j-1/steps/s-1/stderr.gz")
    diagnosis = diagnose(analysis.findings, CATALOGUE)
    report = AnalysisReport(findings=analysis.findings)
    terminal = io.StringIO()
    print_analysis(diagnosis, terminal, logs_read=1, catalogue_version="1", elapsed=0.1)
    parts = [t for f in analysis.findings for t in (*f.evidence, *f.context_before, f.headline, f.location or "")]
    return "\n".join(
        [
            *parts,
            *(e.text for e in diagnosis.extract),
            diagnosis.summary,
            attachment_text(diagnosis, analysis.findings),
            json_text(analysis_json(diagnosis, report, catalogue_version="1")),
            terminal.getvalue(),
        ]
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=FAMILIES, place=PLACES, offset=st.integers(min_value=8, max_value=16))
def test_a_planted_secret_survives_in_no_output(family: tuple[str, str], place: str, offset: int) -> None:
    carrier, secret = family
    # Given a failing log with a secret planted at one place
    lines = _log(carrier, secret, place, offset)
    # When it is analysed and every output is produced
    text = _outputs(lines)
    # Then the error is diagnosed and not even the secret's first characters are left
    assert "OutOfMemoryError" in text
    assert secret[:8] not in text, (place, carrier, secret)
