"""The catalogue of benign lines (rules/benign.yaml): lines healthy runs print, which never count as a cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from emr_triage.analysis.catalogue import Catalogue, load_catalogue
from emr_triage.analysis.findings import analyse_lines
from emr_triage.analysis.verdict import diagnose
from emr_triage.exceptions import CatalogueError
from emr_triage.models.analysis import LogRead

SOURCE = "s3://acme-emr-logs/logs/j-3ANP7YJ2WQ0LC/containers/application_1_0001/container_1_0001_01_000002/stderr.gz"
NATIVE_GPL = """\
2024-03-01 10:00:02,101 ERROR [main] lzo.GPLNativeCodeLoader: Could not load native gpl library
java.lang.UnsatisfiedLinkError: no gplcompression in java.library.path
\tat java.lang.ClassLoader.loadLibrary(ClassLoader.java:1860)
\tat java.lang.Runtime.loadLibrary0(Runtime.java:871)
\tat com.hadoop.compression.lzo.GPLNativeCodeLoader.<clinit>(GPLNativeCodeLoader.java:32)
2024-03-01 10:00:02,102 ERROR [main] lzo.LzoCodec: Cannot load native-lzo without native-hadoop
"""
LATER_CAUSE = (
    "2024-03-01 10:09:40,551 ERROR [Executor task launch worker for task 3.0] executor.Executor: Exception in task "
    "3.0 in stage 1.0 (TID 3)\njava.lang.OutOfMemoryError: Java heap space\n"
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _category(catalogue: Catalogue, text: str, outcome: str = "unknown") -> str:
    analysis = analyse_lines(text.splitlines(), catalogue=catalogue, source=SOURCE)
    reads = [LogRead(source=SOURCE, lines=analysis.lines)]
    return diagnose(analysis.findings, catalogue, reads, outcome=outcome).category  # type: ignore[arg-type]


def test_every_benign_line_has_patterns_a_stack_and_a_public_source(catalogue: Catalogue) -> None:
    # Given the shipped benign lines
    assert catalogue.benign
    for entry in catalogue.benign:
        # Then each says which stacks print it, why it is harmless, and where that is shown in public
        assert entry.patterns and entry.seen_in and entry.why, entry.id
        assert all(source.startswith("https://") for source in entry.sources), entry.id


def test_a_native_library_that_healthy_runs_fail_to_load_is_not_a_dependency_conflict(catalogue: Catalogue) -> None:
    # Given a container log that starts with hadoop-lzo's native library failing to load (at ERROR, with
    # the UnsatisfiedLinkError a dependency rule knows), as every container on such nodes does
    # Then alone it is nothing to act on, even in a run known to have failed
    assert _category(catalogue, NATIVE_GPL) == "no_failure"
    assert _category(catalogue, NATIVE_GPL, "failed") == "no_failure"
    # And it does not hide the real cause that comes later
    assert _category(catalogue, NATIVE_GPL + LATER_CAUSE) == "oom_heap"


def test_the_same_exception_outside_a_benign_record_still_counts(catalogue: Catalogue) -> None:
    # Given an UnsatisfiedLinkError that no benign record printed (the job's own native library)
    log = 'Exception in thread "main" java.lang.UnsatisfiedLinkError: no acmecodec in java.library.path\n'
    # Then it is the dependency problem it says
    assert _category(catalogue, log) == "dependency_conflict"


def test_a_users_file_adds_benign_lines(catalogue: Catalogue, tmp_path: Path) -> None:
    # Given a user file marking a line of their own library as benign
    rules = tmp_path / "ours.yaml"
    rules.write_text(
        "version: 1\n"
        "benign:\n"
        "  - id: acme_codec_probe\n"
        "    patterns: ['AcmeCodec: probing native codec']\n"
        "    seen_in: every executor of our jobs\n"
        "    sources: ['https://wiki.acme.example/codec']\n"
        "    why: the probe falls back to the Java codec\n",
        encoding="utf-8",
    )
    extended = load_catalogue([rules])
    log = (
        "24/03/01 10:00:02 ERROR AcmeCodec: probing native codec failed\n"
        "java.lang.UnsatisfiedLinkError: no acmecodec in java.library.path\n"
    )
    # Then that line no longer counts, with ours or theirs still in force
    assert _category(catalogue, log) == "dependency_conflict"
    assert _category(extended, log) == "no_failure"
    assert {e.id for e in extended.benign} >= {"acme_codec_probe", "hadoop_lzo_native_library"}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "  - id: x1\n    patterns: ['(unclosed']\n    seen_in: abc\n    sources: [b]\n    why: abc\n",
            "not a valid regular",
        ),
        ("  - id: x2\n    patterns: ['a.*b']\n    seen_in: abc\n    sources: [b]\n    why: abc\n", "quadratic"),
        ("  - id: x3\n    patterns: []\n    seen_in: abc\n    sources: [b]\n    why: abc\n", "benign line 'x3'"),
    ],
)
def test_a_bad_benign_line_is_rejected_with_the_file_and_the_problem(tmp_path: Path, entry: str, problem: str) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(f"version: 1\nbenign:\n{entry}", encoding="utf-8")
    with pytest.raises(CatalogueError, match=problem) as raised:
        load_catalogue([rules])
    assert "bad.yaml" in str(raised.value)


def test_a_missing_listener_jar_is_not_benign_though_the_listener_is(catalogue: Catalogue) -> None:
    # Given the OpenLineage listener's class missing from the classpath (the SparkContext cannot start)
    log = (
        "24/03/01 10:00:00 ERROR SparkContext: Error initializing SparkContext.\n"
        "java.lang.ClassNotFoundException: io.openlineage.spark.agent.OpenLineageSparkListener\n"
    )
    # Then the missing class is the cause, as it would be for any other listener
    assert _category(catalogue, log, "failed") == "dependency_conflict"


def test_users_benign_lines_with_the_same_group_names_load_and_work(catalogue: Catalogue, tmp_path: Path) -> None:
    rules = tmp_path / "ours.yaml"
    entry = "    patterns: ['(?P<what>AcmeProbe{n}): failed']\n    seen_in: abc\n    sources: [x]\n    why: abc\n"
    rules.write_text(
        "version: 1\nbenign:\n" + "".join(f"  - id: acme_{n}\n" + entry.format(n=n) for n in (1, 2)), encoding="utf-8"
    )
    extended = load_catalogue([rules])
    log = "24/03/01 10:00:00 ERROR Executor: task failed\njava.lang.OutOfMemoryError: Java heap space\n"
    assert _category(extended, log) == "oom_heap"
    assert _category(extended, "24/03/01 10:00:00 ERROR AcmeProbe2: failed\njava.lang.UnsatisfiedLinkError: x\n") == (
        "no_failure"
    )
