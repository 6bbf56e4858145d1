"""`make bench`: speed and memory figures, printed as `name: value` lines.

Machines are noisy, so every figure comes with a ratio against a baseline measured in the same run:
- log reading and analysis throughput vs the standard library reading the same gzip log line by line;
- peak memory of an analysis at two log sizes (memory must not grow with the log);
- cold import of each handler in a fresh interpreter vs `import boto3` alone;
- the demo replay end to end, and what its one incident costs in DynamoDB (calls, item writes, KB written
  and read, counted at botocore: ``dynamodb_cost.py``);
- the engine on a realistic 1 GiB gzip executor log (``--only engine``): full-analysis throughput vs
  ``zcat | grep -ciE`` of the catalogue's trigger words and vs a naive line-by-line Python regex loop over
  the same patterns, and the engine's peak RSS (in a fresh interpreter);
- real log text (``--only real``, ``real_log.py``): a 1 GiB gzip log made of the whole real logs in the
  repository (or of the files in ``$BENCH_REAL_LOGS``, e.g. loghub's), and, on that same file in the same
  run, best of 3 each: ``igzip -dc`` to /dev/null (single-core decompression, the floor for anything that
  reads gzip), ``rg -z`` of the catalogue's literals, and the whole ``emr-triage analyze --no-progress``
  process (start-up included); the ratios are speeds (``analyze_vs_igzip: 0.40x``: analyze takes 2.5
  times as long as igzip);
- a load run (``--only load``, ``load.py``): 1,000 EMR and 20,000 log-object events, ~10% delivered twice,
  out of order, through the handlers on the embedded stack with 8 worker threads: incidents and Slack root
  messages against the generated ground truth (fails on a duplicate or a loss), events per second vs a
  bare moto PutItem loop, and the peak Slack post rate per channel. ``BENCH_LOAD_SCALE`` (default 1) runs
  a fraction of it;
- a fan-in run (``--only fanin``, ``fanin.py``): one failed application's 1,000 container logs landing
  together, through LogArrivalFunction from 100 threads: logs analysed once, failed invocations,
  conditional-write retries per log, vs the same logs analysed in one thread without AWS.

Run one section alone with ``--only`` (repeatable): ``python tests/bench/run.py --only engine``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_log import GIB, BenchLog, bench_log
from dynamodb_cost import bench_dynamodb_cost
from fanin import bench_fanin
from load import run_load
from real_log import real_log

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def synthetic_executor_log(target_bytes: int, seed: int = 7) -> bytes:
    """A Spark executor log: INFO/WARN noise with the odd recovered failure, gzip-compressed."""
    rng = random.Random(seed)
    templates = [
        "26/11/20 02:{m:02d}:{s:02d} INFO Executor: Running task {t}.0 in stage {st}.0 (TID {tid})",
        "26/11/20 02:{m:02d}:{s:02d} INFO Executor: Finished task {t}.0 in stage {st}.0 (TID {tid}). 2211 bytes result sent to driver",
        "26/11/20 02:{m:02d}:{s:02d} INFO ShuffleBlockFetcherIterator: Getting {t} (12.3 MiB) non-empty blocks including 4 (1.1 MiB) local and 0 (0.0 B) host-local and {st} (11.2 MiB) remote blocks",
        "26/11/20 02:{m:02d}:{s:02d} INFO TransportClientFactory: Successfully created connection to ip-10-0-1-{t}.ec2.internal/10.0.1.{t}:7337 after 1 ms (0 ms spent in bootstraps)",
        "26/11/20 02:{m:02d}:{s:02d} INFO CodeGenerator: Code generated in {t}.{st} ms",
        "26/11/20 02:{m:02d}:{s:02d} WARN S3AInstrumentation: Slow request to s3://acme-raw/orders/part-{tid}.parquet took {t} ms",
        "26/11/20 02:{m:02d}:{s:02d} INFO UnsafeExternalSorter: Thread {t} spilling sort data of 768.0 MiB to disk ({st} times so far)",
    ]
    out = io.BytesIO()
    written = 0
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as compressed:
        while written < target_bytes:
            lines = []
            for _ in range(1000):
                template = templates[rng.randrange(len(templates))]
                lines.append(
                    template.format(
                        m=rng.randrange(60),
                        s=rng.randrange(60),
                        t=rng.randrange(1, 250),
                        st=rng.randrange(1, 40),
                        tid=rng.randrange(100_000),
                    )
                )
            block = ("\n".join(lines) + "\n").encode()
            compressed.write(block)
            written += len(block)
    return out.getvalue()


def chunks(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_throughput(data: bytes, decompressed: int) -> None:
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.engine import analyse_stream
    from emr_triage.logs.reader import iter_log_lines

    catalogue = load_catalogue()

    def stdlib() -> int:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            return sum(1 for _ in io.TextIOWrapper(handle, encoding="utf-8", errors="replace"))

    def reader() -> int:
        return sum(1 for _ in iter_log_lines(chunks(data)))

    def analyse() -> int:
        analysis, _ = analyse_stream(chunks(data), catalogue=catalogue, source="bench")
        return len(analysis.findings)

    base = best_of(3, stdlib)
    read = best_of(3, reader)
    full = best_of(3, analyse)
    mb = decompressed / MIB
    print(f"log_size_mib: {mb:.1f}")
    print(f"log_compressed_mib: {len(data) / MIB:.1f}")
    print(f"baseline_stdlib_gzip_lines_mib_per_s: {mb / base:.1f}")
    print(f"reader_mib_per_s: {mb / read:.1f}")
    print(f"analyse_mib_per_s: {mb / full:.1f}")
    print(f"reader_vs_stdlib_ratio: {base / read:.2f}")
    print(f"analyse_vs_stdlib_ratio: {base / full:.2f}")
    print(f"analyse_seconds_per_gib_estimate: {full / mb * 1024:.0f}")


def bench_memory(small: bytes, large: bytes, small_mib: float, large_mib: float) -> None:
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.engine import analyse_stream

    catalogue = load_catalogue()

    def peak(data: bytes) -> float:
        # The compressed input is held by the caller (as an S3 stream would be by the network): count only
        # what the analysis itself allocates.
        tracemalloc.start()
        analyse_stream(chunks(data), catalogue=catalogue, source="bench")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / MIB

    small_peak, large_peak = peak(small), peak(large)
    print(f"analyse_peak_mib_small_log: {small_peak:.1f} (log {small_mib:.0f} MiB)")
    print(f"analyse_peak_mib_large_log: {large_peak:.1f} (log {large_mib:.0f} MiB)")
    print(
        f"peak_memory_large_vs_small_ratio: {large_peak / small_peak:.2f} (log size ratio {large_mib / small_mib:.1f})"
    )
    from emr_triage.logs import reader

    print(
        f"analyse_memory_note: includes up to {reader._RETAIN_LIMIT / MIB:.0f} MiB of one gzip member's compressed "
        "bytes, kept to replay damaged gzip exactly; flat beyond that (engine_peak_rss_mb, 1 GiB log)"
    )


def bench_redaction() -> None:
    """Redaction must stay linear on hostile input; the ratios are against normal text redacted in the same run."""
    from emr_triage.analysis.redact import redact

    normal = "26/11/20 02:00:01 INFO Executor: Running task 1.0 in stage 2.0 (TID 3) password=x\n" * 12_000
    # Long single tokens (once quadratic), the program name the old mysql -p rule rescanned from (200 KB took
    # 25 s), empty pairs, and runs of key-like words.
    hostile = {
        "tokens": "".join(["A" * 250_000, "a." * 125_000, "token" * 50_000, "x://" * 62_500]),
        "mysql": "mysql " * 175_000,
        "pairs": "a=" * 500_000,
        "keywords": "password secret_token api_key " * 35_000,
        "quotes": '"password": "a\\"' * 60_000,
    }
    normal_s = best_of(3, lambda: redact(normal))
    normal_rate = len(normal) / MIB / normal_s
    print(f"redact_normal_mib_per_s: {normal_rate:.1f}")
    total_bytes, total_s = 0, 0.0
    for name, text in hostile.items():
        seconds = best_of(3, lambda text=text: redact(text))
        total_bytes, total_s = total_bytes + len(text), total_s + seconds
        print(f"redact_adversarial_{name}_vs_normal_ratio: {len(text) / MIB / seconds / normal_rate:.2f}")
    print(f"redact_adversarial_mib_per_s: {total_bytes / MIB / total_s:.1f}")
    print(f"redact_adversarial_vs_normal_ratio: {total_bytes / MIB / total_s / normal_rate:.2f}")


def _import_ms(statement: str, cwd: Path) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    # The variables Lambda's runtime sets, which change what some libraries do at import (the X-Ray SDK
    # creates a botocore client for its sampling rules outside Lambda, and none inside).
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(cwd), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "emr-triage-bench")
    samples = []
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True, env=env
        )
        samples.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def bench_imports() -> None:
    baseline = _import_ms("import boto3", ROOT)
    print(f"baseline_import_boto3_ms: {baseline:.0f}")
    for name in ("emr_events", "log_arrivals", "slack_interactions"):
        ms = _import_ms("import handler", ROOT / "functions" / name)
        print(f"handler_import_ms_{name}: {ms:.0f}")
        print(f"handler_import_vs_boto3_ratio_{name}: {ms / baseline:.2f}")
    # What a cold button press imports before it can answer within Slack's 3 s: the handler and slack-bolt.
    ms = _import_ms("import handler, slack_bolt.adapter.aws_lambda", ROOT / "functions" / "slack_interactions")
    print(f"interactions_cold_import_with_bolt_ms: {ms:.0f}")


def bench_demo() -> None:
    command = [
        str(Path(sys.executable).parent / "emr-triage"),
        "replay",
        str(ROOT / "events/scenarios/spark-step-memory-kill"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, cwd=ROOT, env=env)
    demo = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import moto, boto3"], check=True)
    base = time.perf_counter() - start
    print(f"replay_demo_seconds: {demo:.2f}")
    print(f"baseline_python_import_moto_seconds: {base:.2f}")
    print(f"replay_demo_vs_import_moto_ratio: {demo / base:.2f}")


# ---------------------------------------------------------------------------------------------------
# The engine on a realistic 1 GiB executor log. MB = 10**6 bytes throughout this section.
# ---------------------------------------------------------------------------------------------------
MB = 1_000_000
ENGINE_RUNS = 2
GREP_RUNS = 2
# The naive loop runs at a few MB/s or less (slower with every rule added): it reads a prefix of the log,
# 128 MiB or 30 s, whichever comes first. Throughput is per MB and the log is the same mix of noise
# throughout, so a prefix is a fair sample (the figures say how much it read).
NAIVE_PREFIX_BYTES = 128 * MIB
NAIVE_MAX_SECONDS = 30.0
ENGINE_DRIVER = Path(__file__).resolve().parent / "engine_driver.py"


def _trigger_words(catalogue: Any) -> tuple[tuple[str, ...], str]:
    """The catalogue's prefilter literals (lowercase, matched caselessly), and where they came from.

    The engine is being rewritten: look in the places its literals have lived, newest name first.
    """
    prefilter = getattr(catalogue, "prefilter", None)
    for owner, name, attribute in (
        (prefilter, "catalogue.prefilter.hints", "hints"),
        (catalogue, "catalogue.scanner_literals", "scanner_literals"),
        (prefilter, "catalogue.prefilter.literals", "literals"),
    ):
        words = getattr(owner, attribute, None) if owner is not None else None
        if words:
            return tuple(str(w) for w in words), name
    rule_hints = {h for rule in catalogue.rules for h in (getattr(rule, "hints", None) or ())}
    if rule_hints:
        return tuple(sorted(rule_hints)), "union of rule.hints (no catalogue-wide literals found)"
    return (), "none found"


def _ere_literal(word: str) -> str:
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", word)


def _zcat_grep(log: BenchLog, words: tuple[str, ...]) -> tuple[float, int]:
    """Best wall time of ``zcat FILE | grep -ciE 'w1|w2|...'``, and grep's count of matching lines.

    What one would type at a shell: zcat and grep run in two processes (on two cores when there are two),
    in the environment's locale."""
    pattern = "|".join(_ere_literal(w) for w in words)
    # The file and the pattern go in as arguments: no shell quoting of the pattern.
    command = ["bash", "-o", "pipefail", "-c", 'zcat -- "$1" | grep -ciE -- "$2"', "bash", str(log.path), pattern]
    times, count = [], -1
    for _ in range(GREP_RUNS):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        # grep exits 1 when no line matches (the count is then 0), 2 on errors; zcat's failure shows too.
        if result.returncode not in (0, 1) or result.stderr.strip():
            raise SystemExit(f"zcat | grep failed ({result.returncode}): {result.stderr.strip()}")
        count = int(result.stdout.strip() or 0)
    if count < 2:
        raise SystemExit(f"sanity check: zcat | grep found {count} line(s) with trigger words; expected >= 2")
    return min(times), count


def _engine_once(log: BenchLog) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(ENGINE_DRIVER), str(log.path)], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"engine driver failed ({result.returncode}):\n{result.stderr.strip()}")
    run: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    problems = []
    if run["partial"]:
        problems.append(f"the read was partial: {run['notes']}")
    if run["category"] == "no_failure":
        problems.append("the verdict is no_failure (the log has two failure blocks)")
    if run["compressed_bytes_read"] != log.compressed_bytes:
        problems.append(f"read {run['compressed_bytes_read']:,} of the {log.compressed_bytes:,} compressed bytes")
    if run["lines"] != log.lines:
        problems.append(f"read {run['lines']:,} lines of {log.lines:,}")
    # Uncompressed bytes: newer engines report them (LogRead.bytes_scanned); check them when present.
    scanned = run.get("uncompressed_bytes_read")
    if scanned not in (None, 0, log.uncompressed_bytes):
        problems.append(f"scanned {scanned:,} uncompressed bytes of {log.uncompressed_bytes:,}")
    if problems:
        raise SystemExit("sanity check of the engine run failed: " + "; ".join(problems))
    return run


def _naive(log: BenchLog, catalogue: Any, limit: int, max_seconds: float) -> tuple[float, int]:
    """A plain Python loop: every line of the gzip file against every rule's pattern (what the engine
    replaces). Stops after ``limit`` uncompressed bytes or ``max_seconds``; returns (seconds, bytes)."""
    rules = catalogue.rules
    done = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    with gzip.open(log.path, "rt", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            for rule in rules:
                rule.matcher.search(line)
            done += len(line)  # characters = bytes: the bench log is ASCII
            if done >= limit or (number % 1024 == 0 and time.perf_counter() > deadline):
                break
    return time.perf_counter() - start, done


def bench_engine(naive_prefix_bytes: int = NAIVE_PREFIX_BYTES, naive_max_seconds: float = NAIVE_MAX_SECONDS) -> None:
    from emr_triage.analysis.catalogue import load_catalogue

    log = bench_log(GIB, log=lambda message: print(message, file=sys.stderr, flush=True))
    size_mb = log.uncompressed_bytes / MB
    print(f"bench_log_uncompressed_mb: {size_mb:.1f}")
    print(f"bench_log_compressed_mb: {log.compressed_bytes / MB:.1f}")
    print(f"bench_log_compression_ratio: {log.uncompressed_bytes / log.compressed_bytes:.1f}")
    print(f"bench_log_lines: {log.lines}")
    if log.generated_seconds is not None:
        print(f"bench_log_generate_seconds: {log.generated_seconds:.1f}")

    catalogue = load_catalogue()
    words, origin = _trigger_words(catalogue)
    grep_mb_s: float | None = None
    if words:
        print(f"trigger_words: {len(words)} ({origin})")
        grep_s, count = _zcat_grep(log, words)
        grep_mb_s = size_mb / grep_s
        print(f"zcat_grep_matching_lines: {count}")
        print(f"zcat_grep_mb_per_s: {grep_mb_s:.1f}")
    else:
        print(
            "warning: found no trigger words in the catalogue (looked for prefilter.hints, scanner_literals, "
            "prefilter.literals, rule.hints); skipping the zcat | grep baseline",
            file=sys.stderr,
        )

    runs = [_engine_once(log) for _ in range(ENGINE_RUNS)]
    best = min(runs, key=lambda r: r["seconds"])
    engine_mb_s = size_mb / best["seconds"]
    print(f"engine_scanner: {best.get('scanner') or 'unknown'}")
    print(f"engine_verdict: {best['category']} (line {best['line_no']}, {best['location']})")
    print(f"engine_seconds: {best['seconds']:.2f} (best of {ENGINE_RUNS})")
    print(f"engine_mb_per_s: {engine_mb_s:.1f}")
    print(f"engine_peak_rss_mb: {max(r['peak_rss_bytes'] for r in runs) / MB:.1f} (target <= 150)")
    print(f"engine_rss_before_analysis_mb: {max(r['rss_before_analysis_bytes'] for r in runs) / MB:.1f}")

    naive_s, naive_bytes = _naive(log, catalogue, naive_prefix_bytes, naive_max_seconds)
    naive_mb_s = naive_bytes / MB / naive_s
    print(f"naive_measured_on_first_mb: {naive_bytes / MB:.1f}")
    print(f"naive_mb_per_s: {naive_mb_s:.2f}")

    if grep_mb_s is not None:
        print(f"engine_vs_zcat_grep: {engine_mb_s / grep_mb_s:.2f} (target >= 2.0)")
    print(f"engine_vs_naive: {engine_mb_s / naive_mb_s:.1f} (target >= 6)")


# ---------------------------------------------------------------------------------------------------
# Real log text, 1 GiB, against igzip and ripgrep on the same file. MB = 10**6 bytes.
# ---------------------------------------------------------------------------------------------------
REAL_RUNS = 3


def _best_wall(argv: list[str], runs: int = REAL_RUNS, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Best wall time of ``argv`` over ``runs`` runs (its output discarded but for the last run's)."""
    best, output = float("inf"), ""
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if result.returncode not in ok:
            raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
        output = result.stdout
    return best, output


def bench_real() -> None:
    import shutil

    from emr_triage.analysis.catalogue import load_catalogue

    log = real_log(GIB, log=lambda message: print(message, file=sys.stderr, flush=True))
    size_mb = log.uncompressed_bytes / MB
    print(f"real_log_sources: {log.sources} file(s), {log.source_bytes / MB:.2f} MB, from {log.origin}")
    print(f"real_log_uncompressed_mb: {size_mb:.1f}")
    print(f"real_log_compressed_mb: {log.compressed_bytes / MB:.1f}")
    print(f"real_log_lines: {log.lines}")
    if log.generated_seconds is not None:
        print(f"real_log_generate_seconds: {log.generated_seconds:.1f}")

    igzip_s: float | None = None
    igzip = shutil.which("igzip")
    if igzip:
        # stdout to /dev/null through a shell, as one would type it (no pipe for Python to drain)
        igzip_s, _ = _best_wall(["sh", "-c", 'exec "$0" -dc -- "$1" > /dev/null', igzip, str(log.path)])
        print(f"igzip_real_1gb_seconds: {igzip_s:.2f} (best of {REAL_RUNS})")
    else:
        print("igzip_real_1gb_seconds: skipped (igzip is not installed: apt-get install isal)")

    rg_s: float | None = None
    rg = shutil.which("rg")
    if rg:
        words = ROOT / "tests" / "bench" / ".data" / "catalogue-literals.txt"
        words.write_text("\n".join(load_catalogue().prefilter.hints) + "\n")
        # rg exits 1 when no line matches
        rg_s, _ = _best_wall([rg, "-z", "-c", "-i", "-F", "-f", str(words), str(log.path)], ok=(0, 1))
        print(f"rg_real_1gb_seconds: {rg_s:.2f} (rg -z -c -i -F of the catalogue's literals, best of {REAL_RUNS})")
    else:
        print("rg_real_1gb_seconds: skipped (ripgrep is not installed: apt-get install ripgrep)")

    command = [str(Path(sys.executable).parent / "emr-triage"), "analyze", "--no-progress", str(log.path)]
    analyze_s, report = _best_wall(command)
    if "partial" in report:
        raise SystemExit(f"sanity check: the analysis of the real log was partial:\n{report}")
    verdict = next((line.split(None, 1)[1] for line in report.splitlines() if line.strip().startswith("verdict")), "?")
    print(f"analyze_real_verdict: {verdict.strip()}")
    print(f"analyze_real_1gb_seconds: {analyze_s:.2f} (whole process, best of {REAL_RUNS})")
    print(f"analyze_real_mb_per_s: {size_mb / analyze_s:.1f}")
    if igzip_s is not None:
        print(f"analyze_vs_igzip: {igzip_s / analyze_s:.2f}x (target >= 0.40x)")
    if rg_s is not None:
        print(f"analyze_vs_rg: {rg_s / analyze_s:.2f}x")


def bench_load() -> None:
    status = run_load(
        scale=float(os.environ.get("BENCH_LOAD_SCALE", "1")), workers=int(os.environ.get("BENCH_LOAD_WORKERS", "8"))
    )
    if status:
        raise SystemExit("the load run found duplicate alerts or lost incidents (see the FAIL line)")


SECTIONS = ("throughput", "memory", "redaction", "imports", "demo", "interactions", "engine", "real", "load", "fanin")


def main() -> None:
    parser = argparse.ArgumentParser(description="Speed and memory figures as `name: value` lines.")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable); default: all"
    )
    parser.add_argument(
        "--naive-mib",
        type=int,
        default=NAIVE_PREFIX_BYTES // MIB,
        help="uncompressed MiB the naive loop reads at most (default %(default)s)",
    )
    parser.add_argument(
        "--naive-seconds",
        type=float,
        default=NAIVE_MAX_SECONDS,
        help="seconds the naive loop runs at most (default %(default)s)",
    )
    args = parser.parse_args()
    sections = args.only or SECTIONS
    failed: list[str] = []

    def run(name: str, work: Callable[[], object]) -> None:
        # One broken section must not hide the others' figures: report it, go on, fail at the end.
        try:
            work()
        except (Exception, SystemExit) as exc:
            failed.append(name)
            detail = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, subprocess.CalledProcessError):
                for output in (exc.stdout, exc.stderr):
                    text = output.decode(errors="replace") if isinstance(output, bytes) else str(output or "")
                    detail += "".join(f"\n  {line}" for line in text.splitlines()[-12:])
            print(f"bench section {name!r} failed: {detail}", file=sys.stderr, flush=True)

    if "throughput" in sections or "memory" in sections:
        target = int(os.environ.get("BENCH_LOG_MIB", "64")) * MIB
        large = synthetic_executor_log(target)
        small = synthetic_executor_log(target // 4)
        large_mib = len(gzip.decompress(large)) / MIB
        small_mib = len(gzip.decompress(small)) / MIB
        if "throughput" in sections:
            run("throughput", lambda: bench_throughput(large, int(large_mib * MIB)))
        if "memory" in sections:
            run("memory", lambda: bench_memory(small, large, small_mib, large_mib))
    if "redaction" in sections:
        run("redaction", bench_redaction)
    if "imports" in sections:
        run("imports", bench_imports)
    if "demo" in sections:
        run("demo", bench_demo)
        run("dynamodb_cost", bench_dynamodb_cost)
    if "interactions" in sections:
        from tests.bench.interactions import bench_interactions

        run("interactions", bench_interactions)
    if "engine" in sections:
        run("engine", lambda: bench_engine(args.naive_mib * MIB, args.naive_seconds))
    if "real" in sections:
        run("real", bench_real)
    if "load" in sections:
        run("load", bench_load)
    if "fanin" in sections:
        run("fanin", bench_fanin)
    if failed:
        raise SystemExit(f"bench sections failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
