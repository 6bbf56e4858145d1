"""The ``emr-triage`` command: replay saved events through the handlers, analyse log files.

Exit status of ``replay``: 0 success; 1 an event was rejected, failed, or missed its scenario's
expectation; 2 bad input (not an event, unknown event type, incomplete scenario, unreadable template).
Of ``analyze``: 0 whatever the verdict; 1 no input could be read at all; 2 bad usage or a bad rules file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from emr_triage import __version__
from emr_triage.exceptions import EmrTriageError
from emr_triage.local.inputs import (
    DEFAULT_READ_BUDGET_GIB,
    PROGRESS_MIN_BYTES,
    LogInput,
    analyse_inputs,
    local_inputs,
    s3_inputs,
)
from emr_triage.local.manifest import add_manifest_command, manifest_for
from emr_triage.terminal import safe_text, terminal_writer, write_json

if TYPE_CHECKING:
    from emr_triage.models.incident import Incident
    from emr_triage.ports import LogStore

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a pipeline stage its reader left


def _project_root(explicit: str | None) -> Path:
    """Where template.yaml and functions/ are: --project, else the current folder or a parent, else
    the checkout this package was installed from (pip install -e .)."""
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "template.yaml").is_file() and (folder / "functions").is_dir():
            return folder
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "template.yaml").is_file():
        return checkout
    raise EmrTriageError("cannot find template.yaml: run from the project folder or pass --project PATH")


def _samconfig_stack_name(root: Path, env: str) -> str | None:
    import tomllib

    path = root / "samconfig.toml"
    if not path.is_file():
        return None
    config = tomllib.loads(path.read_text("utf-8"))
    for section in (config.get(env, {}).get("deploy", {}), config.get(env, {}).get("global", {})):
        name = section.get("parameters", {}).get("stack_name")
        if name:
            return str(name)
    return None


def _quiet_powertools(verbose: bool) -> dict[str, str]:
    """Keep the functions' logs and metrics out of the replay's output unless -v; returns the
    environment the functions should run with for that."""
    import warnings

    from emr_triage.observability import logger

    logger.setLevel("INFO" if verbose else "ERROR")
    if verbose:
        return {}
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return {"POWERTOOLS_METRICS_DISABLED": "true"}


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from emr_triage.local.embedded_state import save_embedded_state
    from emr_triage.local.items import ReplayItem, collect_items, validate_item
    from emr_triage.local.output import print_event_report, print_incident
    from emr_triage.local.replay import LocalStack, slack_environment

    root = _project_root(args.project)
    quiet = _quiet_powertools(args.verbose)
    items = collect_items([Path(p) for p in args.paths])
    for item in items:
        validate_item(item)
    groups: list[list[ReplayItem]] = []
    for item in items:
        if groups and groups[-1][0].folder == item.folder:
            groups[-1].append(item)
        else:
            groups.append([item])
    extra = {**quiet, **slack_environment(os.environ)}
    if args.rules:
        extra["EMR_TRIAGE_RULES_FILE"] = str(Path(args.rules).resolve())
    failed = False
    saved: dict[str, dict[str, Any]] = {}
    for group in groups:
        first = group[0]
        stack_name = args.stack_name or (_samconfig_stack_name(root, args.config_env) if args.aws else None)
        where = f"stack {stack_name} ({args.region or 'default region'})" if args.aws else "embedded AWS (moto)"
        title = first.scenario.description if first.scenario else "saved events"
        out.write(f"━━ {title}\n   replaying {len(group)} event(s) through template.yaml's functions on {where}\n")
        with LocalStack(
            root,
            mode="aws" if args.aws else "embedded",
            scenario=first.scenario if not args.aws else None,
            folder=first.folder,
            stack_name=stack_name,
            region=args.region,
            extra_environment=extra,
        ) as stack:
            touched: list[str] = []
            shown: dict[str, str] = {}
            for report in (report for item in group for report in stack.replay_then_checks(item)):
                print_event_report(report, out, show_json=args.json, verbose=args.verbose, shown=shown)
                failed = failed or report.failed
                for invocation in report.invocations:
                    incident_id = (invocation.outcome or {}).get("incident_id")
                    if incident_id and incident_id not in touched:
                        touched.append(str(incident_id))
            follow_ups = stack.run_follow_ups()
            if follow_ups:
                out.write(
                    f"\n━━ Log checks after the failure ({len(follow_ups)}): on AWS each is due every 5 minutes "
                    "until the logs deadline; here time is compressed to the deadline\n"
                )
            for report in follow_ups:
                print_event_report(report, out, show_json=args.json, verbose=args.verbose, shown=shown)
                failed = failed or report.failed
            recorded = [i for i in (stack.incident(t) for t in touched) if i is not None]  # (not runs' ids)
            if recorded:
                out.write(f"\n━━ Incidents recorded ({len(recorded)})\n")
            for incident in recorded:
                print_incident(incident, stack.table_name, out, show_json=args.json)
            for message in stack.dead_letters():
                out.write(f"\n━━ Dead-lettered: {message.get('reason')}\n")
            for row in stack.table_items():
                saved[json.dumps([row["pk"], row["sk"]])] = row
    if not args.aws:
        path = save_embedded_state(root, list(saved.values()))
        shown_path = path.relative_to(root) if path.is_relative_to(root) else path
        out.write(f"\n(embedded incidents kept in {shown_path}: `emr-triage incidents list` shows them)\n")
    return EXIT_FAILED if failed else EXIT_OK


# ── emr-triage incidents ───────────────────────────────────────────────────────────────────────────

_SINCE = re.compile(r"^(\d+)([mhd])$")


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    match = _SINCE.match(value.strip())
    if not match:
        raise EmrTriageError(f"--since {value!r}: use a number and m, h or d (e.g. 90m, 12h, 7d)")
    amount, unit = int(match[1]), match[2]
    seconds = amount * {"m": 60, "h": 3600, "d": 86400}[unit]
    return datetime.now(UTC) - timedelta(seconds=seconds)


@contextmanager
def _incident_table(args: argparse.Namespace, root: Path) -> Iterator[str]:
    """The incidents table: the deployed stack's (--aws) or the last embedded replay's."""
    if not args.aws:
        from emr_triage.local.embedded_state import embedded_incidents

        with embedded_incidents(root) as table:
            yield table
        return
    from emr_triage.aws import clients

    stack_name = args.stack_name or _samconfig_stack_name(root, args.config_env)
    if not stack_name:
        raise EmrTriageError("--aws needs the deployed stack's name (--stack-name, or stack_name in samconfig.toml)")
    try:
        resource = clients.cloudformation(args.region).describe_stack_resource(
            StackName=stack_name, LogicalResourceId="IncidentsTable"
        )["StackResourceDetail"]
    except Exception as exc:
        raise EmrTriageError(f"cannot read stack {stack_name}: {exc}") from exc
    yield str(resource["PhysicalResourceId"])


def _slack_where(incident: Incident) -> str:
    marks = "".join(f" {m}" for m, on in (("acked", incident.acknowledged_by), ("muting", incident.mute)) if on)
    if incident.slack is None:
        return f"muted: in the thread of {incident.muted_under}" if incident.muted_under else "-"
    if incident.slack.ts.startswith("webhook-"):
        return "webhook"
    return f"{incident.slack.channel}/p{incident.slack.ts.replace('.', '')}{marks}"


def cmd_incidents(args: argparse.Namespace, out: TextIO) -> int:
    from emr_triage.aws.incident_store import DynamoIncidentRepository
    from emr_triage.local.output import print_incident

    root = _project_root(args.project)
    with _incident_table(args, root) as table:
        repository = DynamoIncidentRepository(table)
        if args.action == "stats":  # the weekly digest's figures over --since, every channel
            from emr_triage.aws.run_store import DynamoRunStore
            from emr_triage.digest.service import stats_text

            out.write(stats_text(DynamoRunStore(table), repository, since=_since(args.since), until=datetime.now(UTC)))
            return EXIT_OK
        if args.action == "show":
            incident = repository.get(args.incident_id)
            if incident is None:
                out.write(f"no incident {args.incident_id} in table {table}\n")
                return EXIT_FAILED
            print_incident(incident, table, out, show_json=args.json)
            if incident.slack is not None:
                out.write(
                    f"  slack link    https://<your-workspace>.slack.com/archives/{_slack_where(incident)}\n"
                    if not incident.slack.ts.startswith("webhook-")
                    else "  slack link    (posted through an incoming webhook: no link)\n"
                )
            return EXIT_OK
        incidents = repository.list_incidents(
            cluster_id=args.cluster, open_only=args.open, since=_since(args.since), limit=args.limit
        )
    if args.json:
        write_json(out, [i.model_dump(mode="json") for i in incidents])
        return EXIT_OK
    out.write(f"{len(incidents)} incident(s) in table {table}\n")
    from emr_triage.alerts.message import neutralise

    for incident in incidents:
        verdict = (
            incident.diagnosis.category
            if incident.diagnosis
            else ("logs unavailable" if incident.logs_unavailable else "awaiting logs")
        )
        name = neutralise(
            incident.step_name or incident.job_run_name or incident.spark_app_name or incident.cluster_name or ""
        )
        status = incident.status if not incident.folded_into else "FOLDED"
        out.write(
            f"{incident.failed_at.strftime('%Y-%m-%d %H:%M')}  {status:<8} {incident.severity:<8} "
            f"{incident.incident_id:<36} {name[:30]:<30} {verdict:<22} slack {_slack_where(incident)}\n"
        )
    return EXIT_OK


# ── emr-triage analyze ─────────────────────────────────────────────────────────────────────────────

RULES_FILE_VARIABLE = "EMR_TRIAGE_RULES_FILE"


def _rules_files(args: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    """--rules files when given (in order), else the one EMR_TRIAGE_RULES_FILE names, else none."""
    if args.rules:
        return list(args.rules)
    from_environment = environ.get(RULES_FILE_VARIABLE, "").strip()
    return [from_environment] if from_environment else []


def _use_color(choice: str, out: TextIO, environ: Mapping[str, str]) -> bool:
    if choice != "auto":
        return choice == "always"
    return not environ.get("NO_COLOR") and _is_terminal(out)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def cmd_analyze(args: argparse.Namespace, out: TextIO) -> int:
    """Diagnose logs given as files, folders and s3:// URIs; see :func:`build_parser` for the options.

    Returns 0 whatever the verdict, 1 when no input could be read at all (a one-line reason on stderr).
    A log that cannot be read (missing, access denied, binary) is noted and the others are analysed.
    """
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.verdict import diagnose
    from emr_triage.cache import default_cache_dir
    from emr_triage.local.output import ProgressBar, analysis_json, print_analysis
    from emr_triage.models.analysis import LogRead

    catalogue = load_catalogue(_rules_files(args, os.environ), cache_dir=default_cache_dir(os.environ))
    started = time.monotonic()
    inputs: list[LogInput] = []
    prefix_notes: list[LogRead] = []
    store: LogStore | None = None
    for raw in args.paths:
        if raw.startswith(("s3://", "s3n://", "s3a://")):
            if store is None:
                from emr_triage.aws.s3 import S3LogStore

                store = S3LogStore()
            found, note = s3_inputs(raw, store)
            inputs.extend(found)
            if note:
                prefix_notes.append(LogRead(source=raw, partial=True, notes=[note]))
        else:
            inputs.extend(local_inputs(raw))

    total = sum(i.size for i in inputs if i.error is None)
    progress = (
        ProgressBar(sys.stderr, total)
        if not args.no_progress and total >= PROGRESS_MIN_BYTES and _is_terminal(sys.stderr)
        else None
    )
    try:
        report, diagnosis, unreadable = analyse_inputs(
            inputs, catalogue, outcome=args.outcome, progress=progress, max_bytes=int(args.max_gib * (1 << 30))
        )
    finally:
        if progress:
            progress.close()
    elapsed = time.monotonic() - started

    if inputs and len(unreadable) == len(inputs):
        shown = "; ".join(unreadable[:3]) + (f" (and {len(unreadable) - 3} more)" if len(unreadable) > 3 else "")
        sys.stderr.write(f"emr-triage: error: no input could be read: {safe_text(shown)}\n")
        return EXIT_FAILED
    report.reads.extend(prefix_notes)
    if prefix_notes:
        diagnosis = diagnose(report.findings, catalogue, report.reads, report.exit_codes, outcome=args.outcome)
    if args.save_extract:
        from emr_triage.analysis.verdict import attachment_text

        # A file a person will `cat`: redacted and sanitised like the terminal.
        Path(args.save_extract).write_text(safe_text(attachment_text(diagnosis, report.findings)), "utf-8")
    if args.json:
        document = analysis_json(diagnosis, report, catalogue_version=catalogue.version, outcome=args.outcome)
        write_json(out, document)
    else:
        color = _use_color(args.color, out, os.environ)
        print_analysis(
            diagnosis,
            out,
            logs_read=len(inputs) - len(unreadable),
            logs_unreadable=len(unreadable),
            catalogue_version=catalogue.version,
            elapsed=elapsed,
            color=color,
        )
    return EXIT_OK


def _positive_gib(value: str) -> float:
    try:
        gib = float(value)
    except ValueError:
        gib = 0.0
    if not gib > 0:
        raise argparse.ArgumentTypeError(f"expected a number of GiB above 0, got {value!r}")
    return gib


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emr-triage", description="Spark-on-EMR failure triage.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser(
        "replay",
        help="run saved events (files or scenario folders) through the Lambda handlers",
        description="Run saved EventBridge events through the same handler code Lambda runs, routed by "
        "template.yaml's rules. By default on an embedded AWS (moto) seeded from the scenario folder; "
        "Slack messages are rendered here unless SLACK_BOT_TOKEN is set (then sent through slack-sdk to "
        "SLACK_API_URL, default https://slack.com/api/, and SLACK_CHANNEL).",
    )
    replay.add_argument("paths", nargs="+", help="event JSON files and/or scenario folders, replayed in order")
    replay.add_argument("--aws", action="store_true", help="use the real AWS account of a deployed stack")
    replay.add_argument("--stack-name", help="the deployed stack (default: stack_name in samconfig.toml)")
    replay.add_argument(
        "--config-env", default="default", help="samconfig.toml environment for --aws (default: default)"
    )
    replay.add_argument("--region", help="AWS region for --aws (default: your AWS configuration)")
    replay.add_argument(
        "--json", action="store_true", help="also print the Block Kit JSON and the stored incident items"
    )
    replay.add_argument("--rules", help="an extra failure-catalogue YAML file (adds or overrides rules)")
    replay.add_argument("--project", help="the project folder with template.yaml (default: found from here)")
    replay.add_argument("-v", "--verbose", action="store_true", help="show the functions' logs and metrics")

    analyze = commands.add_parser(
        "analyze",
        help="diagnose log files, folders or s3:// objects",
        description="Find the root cause of a failed Spark application in its logs: files (gzip or plain), "
        "folders (every log below, e.g. a downloaded EMR log tree) and s3:// URIs (an object, or every object "
        "under a prefix). Exit status: 0 whatever the verdict, 1 when no input could be read, 2 for bad usage "
        "or a bad rules file.",
    )
    analyze.add_argument("paths", nargs="+", metavar="PATH", help="log files, folders, or s3:// URIs")
    analyze.add_argument(
        "--rules",
        action="append",
        metavar="FILE",
        help=f"a failure-catalogue YAML file that adds or overrides rules (repeatable; default: "
        f"${RULES_FILE_VARIABLE} when set)",
    )
    analyze.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    analyze.add_argument(
        "--outcome",
        choices=("failed", "succeeded", "unknown"),
        default="unknown",
        help="what you know of the run: failed (EMR or YARN says so; lines healthy runs also print, such as "
        "lost executors, then name the cause), succeeded, or unknown (default: judged from the logs)",
    )
    analyze.add_argument(
        "--save-extract",
        metavar="FILE",
        help="also write the full redacted extract (every finding's lines, numbered) to FILE",
    )
    analyze.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the report: auto (default) when writing to a terminal and NO_COLOR is not set",
    )
    analyze.add_argument(
        "--max-gib",
        type=_positive_gib,
        default=DEFAULT_READ_BUDGET_GIB,
        metavar="N",
        help=f"read at most N GiB of decompressed text per log; the rest is flagged partial (default "
        f"{DEFAULT_READ_BUDGET_GIB})",
    )
    analyze.add_argument(
        "--no-progress",
        action="store_true",
        help=f"no progress bar (shown on a terminal's stderr from {PROGRESS_MIN_BYTES >> 20} MiB of input)",
    )
    incidents = commands.add_parser(
        "incidents",
        help="list and show recorded incidents (the last embedded replay's, or a deployed stack's with --aws)",
        description="Read incidents from the last embedded replay (kept in .emr-triage/), or from a deployed "
        "stack's table with --aws.",
    )
    incident_commands = incidents.add_subparsers(dest="action", required=True)
    listing = incident_commands.add_parser("list", help="incidents, newest failure first")
    listing.add_argument("--open", action="store_true", help="only open incidents")
    listing.add_argument("--cluster", help="only this cluster's incidents (j-...)")
    listing.add_argument("--since", help="only failures within this long (e.g. 90m, 12h, 7d)")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    show = incident_commands.add_parser("show", help="one incident: verdict, evidence, timeline, Slack")
    show.add_argument("incident_id", help="the incident id (e.g. j-XXXX.s-XXXX)")
    stats = incident_commands.add_parser("stats", help="the weekly digest's figures (failures, flaky jobs, ...)")
    stats.add_argument("--since", default="30d", help="the period (e.g. 7d, 30d; default 30d), against the one before")
    for sub in (listing, show, stats):
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.add_argument("--aws", action="store_true", help="a deployed stack's table")
        sub.add_argument("--stack-name", help="the deployed stack (default: stack_name in samconfig.toml)")
        sub.add_argument("--config-env", default="default", help="samconfig.toml environment for --aws")
        sub.add_argument("--region", help="AWS region for --aws")
        sub.add_argument("--project", help="the project folder with template.yaml (default: found from here)")
    add_manifest_command(commands)
    return parser


def cmd_slack_manifest(args: argparse.Namespace, out: TextIO) -> int:
    stack = args.stack_name or _samconfig_stack_name(_project_root(args.project), args.config_env)
    out.write(manifest_for(args.url, stack, args.region))
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    # Every byte the commands print passes through one writer: redacted, control characters shown.
    out = terminal_writer(out or sys.stdout)
    args = build_parser().parse_args(argv)
    handlers = {"replay": cmd_replay, "analyze": cmd_analyze, "incidents": cmd_incidents}
    handlers["slack-manifest"] = cmd_slack_manifest
    try:
        status = handlers[args.command](args, out)
        out.flush()
        return status
    except EmrTriageError as exc:
        sys.stderr.write(f"emr-triage: error: {safe_text(str(exc))}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader went away (`emr-triage analyze ... | head`): stop quietly, as other tools do, and keep
        # the interpreter from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):  # not a real file descriptor (a test's captured output)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
