"""`make bench`: speed and memory figures, printed as `name: value` lines.

Machines are noisy, so every figure comes with a ratio against a baseline measured in the same run:
- log reading and analysis throughput vs the standard library reading the same gzip log line by line;
- peak memory of an analysis at two log sizes (memory must not grow with the log);
- cold import of each handler in a fresh interpreter vs `import boto3` alone;
- the demo replay end to end.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

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


def bench_redaction() -> None:
    """Redaction must stay linear on hostile input (long single tokens once backtracked quadratically)."""
    from emr_triage.analysis.redact import redact

    normal = "26/11/20 02:00:01 INFO Executor: Running task 1.0 in stage 2.0 (TID 3) password=x\n" * 12_000
    hostile = "".join(["A" * 250_000, "a." * 125_000, "token" * 50_000, "x://" * 62_500])
    normal_s = best_of(3, lambda: redact(normal))
    hostile_s = best_of(3, lambda: redact(hostile))
    print(f"redact_normal_mib_per_s: {len(normal) / MIB / normal_s:.1f}")
    print(f"redact_adversarial_mib_per_s: {len(hostile) / MIB / hostile_s:.1f}")
    print(f"redact_adversarial_vs_normal_ratio: {(len(hostile) / hostile_s) / (len(normal) / normal_s):.2f}")


def _import_ms(statement: str, cwd: Path) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    samples = []
    for _ in range(5):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True)
        samples.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def bench_imports() -> None:
    baseline = _import_ms("import boto3", ROOT)
    print(f"baseline_import_boto3_ms: {baseline:.0f}")
    for name in ("emr_events", "log_arrivals"):
        ms = _import_ms("import handler", ROOT / "functions" / name)
        print(f"handler_import_ms_{name}: {ms:.0f}")
        print(f"handler_import_vs_boto3_ratio_{name}: {ms / baseline:.2f}")


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


def main() -> None:
    target = int(os.environ.get("BENCH_LOG_MIB", "64")) * MIB
    large = synthetic_executor_log(target)
    small = synthetic_executor_log(target // 4)
    large_mib = len(gzip.decompress(large)) / MIB
    small_mib = len(gzip.decompress(small)) / MIB
    bench_throughput(large, int(large_mib * MIB))
    bench_memory(small, large, small_mib, large_mib)
    bench_redaction()
    bench_imports()
    bench_demo()


if __name__ == "__main__":
    main()
