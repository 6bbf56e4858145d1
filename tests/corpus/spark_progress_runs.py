"""Runs small PySpark jobs that hang, straggle, retry a stage or make steady progress, and keeps the driver's
stderr log as it stood while the job was still running: the fixtures of ``tests/fixtures/progress/``.

Not run by the tests. Run it with the Python of a virtualenv that has pyspark 3.5 (never the project's .venv):

    python3 -m venv /tmp/pyspark-venv && /tmp/pyspark-venv/bin/pip install 'pyspark==3.5.*'
    /tmp/pyspark-venv/bin/python tests/corpus/spark_progress_runs.py [--only NAME ...] [--out DIR]

Each case runs spark-submit in local mode or against a standalone Master and Worker(s) it starts on
127.0.0.1 from the pyspark package's ``bin/spark-class``, with a log4j2.properties that prints INFO to stderr
(what an EMR step's driver stderr shows), in UTC. A watcher follows the driver's stderr; when the case's
moment comes (a line seen, then a wait) it takes a copy of the log as it stands (what the alert would read
from S3 at that time), records that time, and kills spark-submit with SIGKILL, as a cancelled step is.
The copy is written gzipped (no name, mtime 0) to ``<out>/<name>.log.gz`` and its capture time to
``<out>/captures.json``, which the tests read as the alert's "now".
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "progress"

# One job file, its behaviour chosen by the first argument. Every mode starts with a small warm-up job
# (finished tasks before the interesting part), except no_executors, whose first job is already stuck.
JOB = r"""
import sys
import time

from pyspark.sql import SparkSession

mode = sys.argv[1]
spark = SparkSession.builder.appName(f"progress-{mode}").getOrCreate()
sc = spark.sparkContext


def straggle(index, rows):
    time.sleep(1200 if index == 13 else 0.3)  # partition 13 sleeps 20 min, the 19 others 0.3 s
    yield sum(rows)


def hang(rows):
    time.sleep(1800)  # every task of the stage hangs
    yield sum(rows)


def slow(rows):
    time.sleep(3)
    yield sum(v for _, v in rows)


def steady(rows):
    time.sleep(1.0)
    yield sum(rows)


print("warm-up:", sc.parallelize(range(1000), 4).map(lambda x: x * x).sum())
if mode == "straggler":
    print(sc.parallelize(range(2000), 20).mapPartitionsWithIndex(straggle).collect())
elif mode == "no_task_finished":
    print(sc.parallelize(range(80), 8).mapPartitions(hang).collect())
elif mode == "stage_retried":
    pairs = sc.parallelize(range(200000), 8).map(lambda x: (x % 64, 1))
    print(pairs.reduceByKey(lambda a, b: a + b, 8).mapPartitions(slow).collect())
    for _ in range(20):  # then steady work, so the capture is taken while the application still runs
        print(sc.parallelize(range(400), 8).mapPartitions(steady).sum())
elif mode == "healthy":
    for round_ in range(80):
        counts = sc.parallelize(range(4000), 6).map(lambda x: (x % 17, 1)).reduceByKey(lambda a, b: a + b, 6)
        print(round_, counts.mapPartitions(lambda rows: steady(v for _, v in rows)).sum())
spark.stop()
"""

# Spark 3.5's own pattern (conf/log4j2.properties.template) at INFO, to stderr; iso=True prints ISO 8601.
LOG4J = """rootLogger.level = info
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = {pattern} %p %c{{1}}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
"""


@dataclass(frozen=True)
class Case:
    name: str
    mode: str  # the job's mode
    master: str  # local[n], or "standalone"
    wait_for: str  # a regex the driver's stderr must show before the capture clock starts
    then: float  # seconds after that line to take the copy
    workers: int = 1
    worker_cores: int = 1
    worker_memory: str = "1g"
    confs: dict[str, str] = field(default_factory=dict)
    kill_executor_on: str = ""  # a regex: when the driver shows it, one busy executor JVM is SIGKILLed
    iso: bool = False  # ISO 8601 timestamps instead of Spark's yy/MM/dd HH:mm:ss


CASES = [
    Case(
        name="standalone-no-executors",
        mode="no_executors",
        master="standalone",
        worker_memory="1g",
        confs={"spark.executor.memory": "4g"},  # more than the only worker offers
        wait_for=r"Initial job has not accepted any resources",
        then=390,
    ),
    Case(
        name="local-straggler",
        mode="straggler",
        master="local[4]",
        wait_for=r"\(19/20\)",
        then=660,
    ),
    Case(
        name="local-no-task-finished",
        mode="no_task_finished",
        master="local[2]",
        wait_for=r"Starting task 1\.0 in stage 1\.0",
        then=1000,
    ),
    Case(
        name="standalone-stage-retried",
        mode="stage_retried",
        master="standalone",
        workers=2,
        kill_executor_on=r"Starting task 2\.0 in stage 2\.0",  # the reduce stage (after warm-up 0, map 1)
        wait_for=r"Starting task \d+\.0 in stage 4\.0",  # the steady job after the retried one
        then=20,
    ),
    Case(
        name="standalone-healthy",
        mode="healthy",
        master="standalone",
        worker_cores=2,
        wait_for=r"Starting task 0\.0 in stage 0\.0",
        then=150,
        iso=True,
    ),
]


def spark_home() -> Path:
    import pyspark  # the virtualenv's (run this script with its Python)

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            parents.setdefault(int(text[text.rfind(")") + 2 :].split()[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def executor_pids(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    pids = []
    for worker in workers:
        for pid in descendants(worker.pid):
            with contextlib.suppress(OSError):
                if b"CoarseGrainedExecutorBackend" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(pid)
    return pids


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)


class Run:
    """One case's folders, processes and environment."""

    def __init__(self, case: Case, tmp: Path) -> None:
        self.case, self.tmp, self.home = case, tmp, spark_home()
        self.stderr = tmp / "driver-stderr.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.notes: list[str] = []
        conf = tmp / "conf"
        conf.mkdir()
        pattern = "%d{yyyy-MM-dd'T'HH:mm:ss,SSS}" if case.iso else "%d{yy/MM/dd HH:mm:ss}"
        (conf / "log4j2.properties").write_text(LOG4J.format(pattern=pattern))
        (tmp / "job.py").write_text(JOB)

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "SPARK_HOME": str(self.home),
            "SPARK_CONF_DIR": str(self.tmp / "conf"),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(self.tmp),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONUNBUFFERED": "1",
            **({"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}),
        }

    def start(self, cmd: list[str], stdout: Path, stderr: Path | None = None) -> subprocess.Popen[bytes]:
        with contextlib.ExitStack() as files:
            out = files.enter_context(stdout.open("wb"))
            err = files.enter_context(stderr.open("wb")) if stderr else subprocess.STDOUT
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.tmp,
                env=self.env(),
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start_cluster(self) -> str:
        case, cls = self.case, str(self.home / "bin" / "spark-class")
        port, ui = free_port(), free_port()
        url = f"spark://127.0.0.1:{port}"
        master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
        self.start([cls, *master, "--webui-port", str(ui)], self.tmp / "master.log")
        for i in range(case.workers):
            work = self.tmp / f"worker-{i}"
            work.mkdir()
            cmd = [cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--webui-port", "0"]
            cmd += ["--cores", str(case.worker_cores), "--memory", case.worker_memory, "--work-dir", str(work), url]
            self.workers.append(self.start(cmd, self.tmp / f"worker-{i}.log"))
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(OSError, ValueError):
                conn = http.client.HTTPConnection("127.0.0.1", ui, timeout=2)
                conn.request("GET", "/json/")
                if json.loads(conn.getresponse().read()).get("aliveworkers") == case.workers:
                    return url
            time.sleep(0.5)
        raise RuntimeError(f"{case.name}: the standalone workers did not register in time")

    def submit(self, master: str) -> subprocess.Popen[bytes]:
        cmd = [str(self.home / "bin" / "spark-submit"), "--master", master]
        for key, value in self.case.confs.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [str(self.tmp / "job.py"), self.case.mode]
        return self.start(cmd, self.tmp / "driver-stdout.log", self.stderr)

    def log_shows(self, pattern: str) -> bool:
        with contextlib.suppress(OSError):
            return re.search(pattern, self.stderr.read_text(errors="replace")) is not None
        return False

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            kill_group(proc)


def wait_until(cond: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def saboteur(run: Run, proc: subprocess.Popen[bytes]) -> None:
    """SIGKILLs one executor JVM when the driver shows the case's line (as a lost node or an OOM kill does)."""
    if not wait_until(lambda: run.log_shows(run.case.kill_executor_on), 600, proc):
        run.notes.append(f"{run.case.kill_executor_on!r} never showed: no executor killed")
        return
    pids = executor_pids(run.workers)
    if pids:
        os.kill(pids[0], signal.SIGKILL)
        run.notes.append(f"SIGKILLed executor JVM pid {pids[0]} of {len(pids)}")


def run_case(case: Case, out: Path) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix=f"spark-progress-{case.name}-"))
    run = Run(case, tmp)
    try:
        master = run.start_cluster() if case.master == "standalone" else case.master
        started = datetime.now(UTC)
        proc = run.submit(master)
        if case.kill_executor_on:
            threading.Thread(target=saboteur, args=(run, proc), daemon=True).start()
        if not wait_until(lambda: run.log_shows(case.wait_for), 900, proc):
            raise RuntimeError(f"{case.name}: {case.wait_for!r} never showed (exit {proc.poll()}), see {tmp}")
        time.sleep(case.then)
        if proc.poll() is not None:
            raise RuntimeError(f"{case.name}: spark-submit ended before the capture (exit {proc.returncode})")
        data = run.stderr.read_bytes()
        captured = datetime.now(UTC)
        run.stop_all()
    except BaseException:
        run.stop_all()
        raise
    data = data[: data.rfind(b"\n") + 1]  # a line being written at the copy is not whole yet
    (out / f"{case.name}.log.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    import pyspark

    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "captured_at": captured.isoformat(timespec="seconds"),
        "spark_version": pyspark.__version__,
        "master": master if case.master != "standalone" else f"standalone ({case.workers} worker(s))",
        "lines": data.count(b"\n"),
        "notes": run.notes,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", default=[], help="case names (default: all)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "captures.json"
    for case in cases:
        print(f"{case.name}: running", flush=True)
        entry = run_case(case, args.out)
        print(f"{case.name}: {entry}", flush=True)
        # Re-read before writing: several cases may run at once (one --only each).
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        manifest[case.name] = entry
        manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
