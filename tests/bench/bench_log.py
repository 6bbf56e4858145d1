"""A realistic, large gzip Spark executor log for `make bench` (generated, cached, never committed).

The log is 1 GiB uncompressed (exactly, by default): mostly INFO noise of a Spark 3 executor on EMR, a
few WARN lines, recovered-task noise and GC lines, with one real failure block in the middle (an
``OutOfMemoryError`` with its stack, including the user's frame) and one at the end (YARN's memory kill
and the executor receiving SIGTERM). It is gzip level 6, one member, as EMR's log pusher writes it.

Generation is fast: a pool of formatted lines is built once from a seeded RNG and written repeatedly
through one ``zlib.compressobj``. The file is cached under ``tests/bench/.data/`` with the generator's
version in its name (bump ``GENERATOR_VERSION`` when the output changes) and reused when present.

Run alone: ``python tests/bench/bench_log.py [--size-mib N]`` prints the cached file's path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 2
DATA_DIR = Path(__file__).resolve().parent / ".data"
GIB = 1 << 30
POOL_LINES = 80_000
COMPRESS_LEVEL = 6  # EMR's log pusher
_WRITE_BATCH = 4 << 20

_APP = "application_1763600000000_0042"
_BUCKETS = ("acme-raw", "acme-curated", "acme-landing")
_TABLES = ("orders", "order_lines", "customers", "clickstream", "inventory_snapshots", "payments")


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _host(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randrange(0, 4), rng.randrange(2, 254)
    return f"ip-10-0-{a}-{b}.ec2.internal", f"10.0.{a}.{b}"


# The part files one Spark write produces share its job's UUID: a few per table.
_JOB_UUIDS = {table: [_uuid(random.Random(f"{table}{n}")) for n in range(3)] for table in _TABLES}


def _s3_file(rng: random.Random) -> str:
    table = rng.choice(_TABLES)
    return (
        f"s3://{rng.choice(_BUCKETS)}/{table}/dt=2026-11-{rng.randrange(12, 20):02d}/"
        f"part-{rng.randrange(2000):05d}-{rng.choice(_JOB_UUIDS[table])}.c000.snappy.parquet"
    )


class _Task:
    """Task ids that advance like a real executor's: a stage, its partitions, increasing TIDs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.stage = 3
        self.tid = 1200

    def next(self) -> tuple[int, int, int]:
        if self.rng.random() < 0.002:
            self.stage += 1
        self.tid += self.rng.randrange(1, 4)
        return self.rng.randrange(0, 2000), self.stage, self.tid


def _templates(rng: random.Random, task: _Task) -> list[tuple[int, Callable[[], str]]]:
    """(weight, message factory) pairs; each message is ``LEVEL Logger: text``."""
    r = rng

    def running() -> str:
        p, st, tid = task.next()
        return f"INFO Executor: Running task {p}.0 in stage {st}.0 (TID {tid})"

    def finished() -> str:
        p, st, tid = task.next()
        return f"INFO Executor: Finished task {p}.0 in stage {st}.0 (TID {tid}). {r.randrange(1500, 9000)} bytes result sent to driver"

    def assigned() -> str:
        return f"INFO YarnCoarseGrainedExecutorBackend: Got assigned task {task.tid + r.randrange(1, 8)}"

    def broadcast_read() -> str:
        return f"INFO TorrentBroadcast: Started reading broadcast variable {r.randrange(1, 400)} with 1 pieces (estimated total size 4.0 MiB)"

    def broadcast_took() -> str:
        return f"INFO TorrentBroadcast: Reading broadcast variable {r.randrange(1, 400)} took {r.randrange(1, 90)} ms"

    def memory_store() -> str:
        kind = r.choice(("_piece0 stored as bytes", " stored as values"))
        return (
            f"INFO MemoryStore: Block broadcast_{r.randrange(1, 400)}{kind} in memory "
            f"(estimated size {r.randrange(5, 900)}.{r.randrange(10)} KiB, free {r.randrange(2, 9)}.{r.randrange(10)} GiB)"
        )

    def map_output() -> str:
        shuffle = r.randrange(0, 60)
        return r.choice(
            (
                f"INFO MapOutputTrackerWorker: Don't have map outputs for shuffle {shuffle}, fetching them",
                f"INFO MapOutputTrackerWorker: Doing the fetch; tracker endpoint = NettyRpcEndpointRef(spark://MapOutputTracker@{_host(r)[0]}:{r.randrange(33000, 46000)})",
                "INFO MapOutputTrackerWorker: Got the map output locations",
                f"INFO MapOutputTrackerWorker: Updating epoch to {r.randrange(1, 40)} and clearing cache",
            )
        )

    def fetcher() -> str:
        n, local = r.randrange(20, 2000), r.randrange(0, 40)
        return (
            f"INFO ShuffleBlockFetcherIterator: Getting {n} ({r.randrange(1, 900)}.{r.randrange(10)} MiB) non-empty blocks including "
            f"{local} ({r.randrange(0, 90)}.{r.randrange(10)} MiB) local and 0 (0.0 B) host-local and 0 (0.0 B) push-merged-local and "
            f"{n - local if n > local else 0} ({r.randrange(1, 800)}.{r.randrange(10)} MiB) remote blocks"
        )

    def fetches() -> str:
        return (
            f"INFO ShuffleBlockFetcherIterator: Started {r.randrange(1, 12)} remote fetches in {r.randrange(0, 60)} ms"
        )

    def connection() -> str:
        host, ip = _host(r)
        return f"INFO TransportClientFactory: Successfully created connection to {host}/{ip}:7337 after {r.randrange(0, 6)} ms (0 ms spent in bootstraps)"

    def codegen() -> str:
        return f"INFO CodeGenerator: Code generated in {r.randrange(3, 400)}.{r.randrange(100, 999)} ms"

    def file_scan() -> str:
        start = r.randrange(0, 8) * 134217728
        return f"INFO FileScanRDD: Reading File path: {_s3_file(r)}, range: {start}-{start + r.randrange(1, 134217728)}, partition values: [empty row]"

    def emrfs_open() -> str:
        return f"INFO S3NativeFileSystem: Opening '{_s3_file(r)}' for reading"

    def task_memory() -> str:
        return r.choice(
            (
                f"INFO TaskMemoryManager: Memory used in task {task.tid}",
                f"INFO TaskMemoryManager: Acquired by org.apache.spark.unsafe.map.BytesToBytesMap@{_hex(r, 8)}: {r.randrange(1, 512)}.0 MiB",
                f"INFO TaskMemoryManager: Acquired by org.apache.spark.util.collection.unsafe.sort.UnsafeExternalSorter@{_hex(r, 8)}: {r.randrange(64, 2048)}.0 MiB",
                f"INFO TaskMemoryManager: {r.randrange(0, 300)} bytes of memory were used by task {task.tid} but are not associated with specific consumers",
            )
        )

    def spill() -> str:
        return (
            f"INFO UnsafeExternalSorter: Thread {r.randrange(60, 400)} spilling sort data of "
            f"{r.randrange(64, 1600)}.0 MiB to disk ({r.randrange(0, 30)} times so far)"
        )

    def codec() -> str:
        return r.choice(
            (
                "INFO CodecPool: Got brand-new decompressor [.snappy]",
                "INFO CodecPool: Got brand-new compressor [.snappy]",
                "INFO FileOutputCommitter: File Output Committer Algorithm version is 2",
                "INFO SQLHadoopMapReduceCommitProtocol: Using output committer class org.apache.parquet.hadoop.ParquetOutputCommitter",
            )
        )

    def commit() -> str:
        p, st, tid = task.next()
        return (
            f"INFO SparkHadoopMapRedUtil: attempt_202611200214{r.randrange(10**6):06d}{st:04d}_m_{p:06d}_{tid}: "
            f"Committed. Elapsed time: {r.randrange(20, 4000)} ms."
        )

    def slow_s3() -> str:
        return r.choice(
            (
                f"WARN S3AInstrumentation: Slow request to {_s3_file(r).replace('s3://', 's3a://')} took {r.randrange(1000, 30000)} ms",
                f"INFO GlobalS3Executor: ReadTimeout File: {_s3_file(r)[5:]}; Range: [{r.randrange(10**8)}-{r.randrange(10**8, 10**9)}] "
                "Use default timeout configuration to retry for read timeout {ReadTimeoutRetryCount=2}",
                f"WARN EmrFileSystem: Slow S3 GET of {_s3_file(r)} ({r.randrange(2000, 20000)} ms, retry {r.randrange(1, 4)} of 15)",
            )
        )

    def warn() -> str:
        return r.choice(
            (
                f"WARN BlockManager: Block rdd_{r.randrange(1, 90)}_{r.randrange(2000)} could not be removed as it was not found on disk or in memory",
                f"WARN HashedWheelTimer: An exception was thrown by TimerTask@{_hex(r, 8)}",
                f"WARN TransportChannelHandler: Exception in connection from /{_host(r)[1]}:{r.randrange(30000, 60000)}",
                f"WARN BlockManager: Putting block rdd_{r.randrange(1, 90)}_{r.randrange(2000)} failed due to exception org.apache.spark.TaskKilledException.",
            )
        )

    def killed_attempt() -> str:
        p, st, tid = task.next()
        return r.choice(
            (
                f"INFO Executor: Executor is trying to kill task {p}.1 in stage {st}.0 (TID {tid}), reason: another attempt succeeded",
                f"INFO Executor: Executor killed task {p}.1 in stage {st}.0 (TID {tid}), reason: another attempt succeeded",
                f"INFO RetryingBlockTransferor: Retrying fetch (1/3) for {r.randrange(1, 9)} outstanding blocks after 5000 ms",
            )
        )

    def shuffle_write() -> str:
        return f"INFO ShuffleExternalSorter: Thread {r.randrange(60, 400)} spilling sort data of {r.randrange(64, 1024)}.0 MiB to disk ({r.randrange(0, 9)} time so far)"

    return [
        (160, running),
        (150, finished),
        (150, assigned),
        (40, broadcast_read),
        (40, broadcast_took),
        (80, memory_store),
        (70, map_output),
        (70, fetcher),
        (60, fetches),
        (50, connection),
        (60, codegen),
        (60, file_scan),
        (30, emrfs_open),
        (50, task_memory),
        (20, spill),
        (15, shuffle_write),
        (25, codec),
        (25, commit),
        (6, slow_s3),
        (5, warn),
        (4, killed_attempt),
    ]


def _gc_line(rng: random.Random) -> str:
    before = rng.randrange(2000, 9000)
    return (
        f"2026-11-20T02:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}+0000: "
        f"[GC pause (G1 Evacuation Pause) (young) {before}M->{before // rng.randrange(2, 6)}M(10240M), "
        f"0.0{rng.randrange(100000, 999999)} secs]"
    )


def _recovered_fetch_failure(rng: random.Random, stamp: str) -> list[str]:
    """A shuffle fetch that failed and was retried (healthy runs have these)."""
    host, ip = _host(rng)
    return [
        f"{stamp} ERROR RetryingBlockTransferor: Exception while beginning fetch of 1 outstanding blocks (after 1 retries)",
        f"java.io.IOException: Failed to connect to {host}/{ip}:7337",
        "\tat org.apache.spark.network.client.TransportClientFactory.createClient(TransportClientFactory.java:288)",
        "\tat org.apache.spark.network.client.TransportClientFactory.createClient(TransportClientFactory.java:218)",
        "\tat org.apache.spark.network.shuffle.ExternalBlockStoreClient.lambda$fetchBlocks$0(ExternalBlockStoreClient.java:130)",
        "\tat org.apache.spark.network.shuffle.RetryingBlockTransferor.transferAllOutstanding(RetryingBlockTransferor.java:173)",
        "\tat java.util.concurrent.Executors$RunnableAdapter.call(Executors.java:511)",
        "\tat java.lang.Thread.run(Thread.java:750)",
        f"Caused by: io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: {host}/{ip}:7337",
        "Caused by: java.net.ConnectException: Connection refused",
        "\tat sun.nio.ch.SocketChannelImpl.checkConnect(Native Method)",
        "\t... 1 more",
        f"{stamp} INFO RetryingBlockTransferor: Retrying fetch (2/3) for 1 outstanding blocks after 5000 ms",
    ]


def build_pool(seed: int = 20261120, lines: int = POOL_LINES) -> bytes:
    """``lines`` noise lines (plus multi-line recovered failures) with increasing timestamps."""
    rng = random.Random(seed)
    task = _Task(rng)
    weighted = _templates(rng, task)
    factories = [f for _, f in weighted]
    weights = [w for w, _ in weighted]
    picks = rng.choices(factories, weights=weights, k=lines)
    out: list[str] = []
    seconds = 2 * 3600
    for index, factory in enumerate(picks):
        if rng.random() < 0.05:
            seconds += 1
        stamp = f"26/11/20 {seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if index % 9_000 == 4_500:
            out.extend(_recovered_fetch_failure(rng, stamp))
        elif index % 700 == 350:
            out.append(_gc_line(rng))
        else:
            out.append(f"{stamp} {factory()}")
    return ("\n".join(out) + "\n").encode("utf-8")


def failure_middle() -> bytes:
    """A task dies of a heap OOM (the first, and decisive, failure)."""
    lines = [
        "26/11/20 02:48:13 INFO Executor: Running task 1312.0 in stage 41.0 (TID 98231)",
        "26/11/20 02:48:13 INFO UnsafeExternalSorter: Thread 211 spilling sort data of 1912.0 MiB to disk (14 times so far)",
        "26/11/20 02:48:19 ERROR Executor: Exception in task 1312.0 in stage 41.0 (TID 98231)",
        "java.lang.OutOfMemoryError: Java heap space",
        "\tat java.util.Arrays.copyOf(Arrays.java:3236)",
        "\tat java.io.ByteArrayOutputStream.grow(ByteArrayOutputStream.java:118)",
        "\tat org.apache.spark.sql.catalyst.expressions.UnsafeRow.copy(UnsafeRow.java:494)",
        "\tat org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage7.processNext(Unknown Source)",
        "\tat org.apache.spark.sql.execution.BufferedRowIterator.hasNext(BufferedRowIterator.java:43)",
        "\tat scala.collection.Iterator$$anon$10.hasNext(Iterator.scala:460)",
        "\tat com.acme.etl.orders.DedupeOrders$.$anonfun$mergeLines$1(DedupeOrders.scala:87)",
        "\tat com.acme.etl.orders.DedupeOrders$.mergeLines(DedupeOrders.scala:84)",
        "\tat org.apache.spark.rdd.RDD.$anonfun$mapPartitions$2(RDD.scala:855)",
        "\tat org.apache.spark.scheduler.ResultTask.runTask(ResultTask.scala:90)",
        "\tat org.apache.spark.scheduler.Task.run(Task.scala:141)",
        "\tat org.apache.spark.executor.Executor$TaskRunner.$anonfun$run$4(Executor.scala:620)",
        "\tat java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1149)",
        "\tat java.lang.Thread.run(Thread.java:750)",
        "26/11/20 02:48:19 ERROR SparkUncaughtExceptionHandler: Uncaught exception in thread Thread[Executor task launch worker for task 1312.0 in stage 41.0 (TID 98231),5,main]",
        "java.lang.OutOfMemoryError: Java heap space",
        "\tat java.util.Arrays.copyOf(Arrays.java:3236)",
        "\tat com.acme.etl.orders.DedupeOrders$.mergeLines(DedupeOrders.scala:84)",
        "26/11/20 02:48:19 INFO Executor: Not reporting error to driver during JVM shutdown.",
        "26/11/20 02:48:20 INFO YarnCoarseGrainedExecutorBackend: Got assigned task 98240",
        "26/11/20 02:48:20 INFO Executor: Running task 1320.0 in stage 41.0 (TID 98240)",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def failure_end() -> bytes:
    """The executor's container is killed by YARN for its memory, then receives SIGTERM."""
    lines = [
        "26/11/20 03:09:58 WARN YarnCoarseGrainedExecutorBackend: Container killed by YARN for exceeding physical memory limits. 12.6 GB of 12 GB physical memory used. Consider boosting spark.executor.memoryOverhead.",
        "26/11/20 03:09:58 ERROR YarnCoarseGrainedExecutorBackend: RECEIVED SIGNAL TERM",
        "26/11/20 03:09:58 INFO MemoryStore: MemoryStore cleared",
        "26/11/20 03:09:58 INFO BlockManager: BlockManager stopped",
        "26/11/20 03:09:58 INFO ShutdownHookManager: Shutdown hook called",
        f"26/11/20 03:09:58 INFO ShutdownHookManager: Deleting directory /mnt/yarn/usercache/hadoop/appcache/{_APP}/spark-0c6b1d2e-5a0f-4c1e-9d43-6f3e1b7a2c55",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class BenchLog:
    path: Path
    uncompressed_bytes: int
    compressed_bytes: int
    lines: int
    generated_seconds: float | None  # None when reused from the cache


def _fill_exactly(pool_lines: list[bytes], gap: int) -> list[bytes]:
    """Pool lines whose lengths add up to ``gap`` (as close as the pool allows)."""
    by_length: dict[int, bytes] = {}
    for line in pool_lines:
        by_length.setdefault(len(line), line)
    shortest = min(by_length)
    chosen: list[bytes] = []
    while gap > 0:
        for length, line in sorted(by_length.items()):
            if length == gap:
                return [*chosen, line]
            if (other := by_length.get(gap - length)) is not None:
                return [*chosen, line, other]
        fits = [n for n in by_length if n <= gap - shortest]
        if not fits:
            break
        chosen.append(by_length[max(fits)])
        gap -= max(fits)
    return chosen


def generate(path: Path, target_bytes: int) -> tuple[int, int]:
    """Write the log to ``path``; returns (uncompressed bytes, lines)."""
    pool = build_pool()
    middle, end = failure_middle(), failure_end()
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
    written = lines = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:

        def write(data: bytes) -> None:
            nonlocal written, lines
            handle.write(compressor.compress(data))
            written += len(data)
            lines += data.count(b"\n")

        def noise_until(limit: int) -> None:
            # Whole pools while they fit, then pool lines in batches, then single lines.
            while written + len(pool) <= limit:
                write(pool)
            offset = 0
            while written + _WRITE_BATCH <= limit:
                cut = pool.rfind(b"\n", offset, offset + _WRITE_BATCH) + 1
                write(pool[offset:cut])
                offset = cut
            tail_lines = pool[offset:].splitlines(keepends=True)
            for line in tail_lines:
                if written + len(line) > limit:
                    break
                write(line)

        noise_until(target_bytes // 2 - len(middle) // 2)
        write(middle)
        # Leave room for a pair of lines that makes the total exact.
        noise_until(target_bytes - len(end) - 600)
        gap = target_bytes - len(end) - written
        candidates = [line for line in pool.splitlines(keepends=True)[:5000] if line.startswith(b"26/")]
        write(b"".join(_fill_exactly(candidates, gap)))
        write(end)
        handle.write(compressor.flush())
    os.replace(tmp, path)
    return written, lines


def bench_log(size_bytes: int = GIB, *, log: Callable[[str], None] | None = None) -> BenchLog:
    """The cached bench log of ``size_bytes`` uncompressed bytes, generated on first use."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"executor-v{GENERATOR_VERSION}-{size_bytes}"
    path, meta_path = DATA_DIR / f"{stem}.log.gz", DATA_DIR / f"{stem}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("compressed_bytes") == path.stat().st_size:
            return BenchLog(path, meta["uncompressed_bytes"], meta["compressed_bytes"], meta["lines"], None)
    for stale in DATA_DIR.glob("executor-v*"):
        if not stale.name.startswith(f"executor-v{GENERATOR_VERSION}-"):
            stale.unlink()  # written by an older generator
    if log:
        log(f"generating {path.name} ({size_bytes / 1e6:.0f} MB uncompressed; cached for later runs)")
    start = time.perf_counter()
    uncompressed, lines = generate(path, size_bytes)
    seconds = time.perf_counter() - start
    compressed = path.stat().st_size
    meta_path.write_text(
        json.dumps({"uncompressed_bytes": uncompressed, "compressed_bytes": compressed, "lines": lines}) + "\n"
    )
    return BenchLog(path, uncompressed, compressed, lines, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=GIB >> 20, help="uncompressed size in MiB (default 1024)")
    args = parser.parse_args()
    result = bench_log(args.size_mib << 20, log=print)
    print(result)


if __name__ == "__main__":
    main()
