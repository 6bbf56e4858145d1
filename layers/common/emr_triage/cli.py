"""The ``emr-triage`` command: replay saved events through the handlers, analyse log files.

Exit status: 0 success; 1 an event was rejected, failed, or missed its scenario's expectation;
2 bad input (not an event, unknown event type, incomplete scenario, unreadable template).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from emr_triage import __version__
from emr_triage.exceptions import EmrTriageError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


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
    from emr_triage.local.output import print_event_report, print_incident
    from emr_triage.local.replay import (
        LocalStack,
        ReplayItem,
        collect_items,
        slack_environment,
        validate_item,
    )

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
            for item in group:
                report = stack.replay(item)
                print_event_report(report, out, show_json=args.json, verbose=args.verbose, shown=shown)
                failed = failed or report.failed
                for invocation in report.invocations:
                    incident_id = (invocation.outcome or {}).get("incident_id")
                    if incident_id and incident_id not in touched:
                        touched.append(str(incident_id))
            if touched:
                out.write(f"\n━━ Incidents recorded ({len(touched)})\n")
            for incident_id in touched:
                incident = stack.incident(incident_id)
                if incident is not None:
                    print_incident(incident, stack.table_name, out, show_json=args.json)
            for message in stack.dead_letters():
                out.write(f"\n━━ Dead-lettered: {message.get('reason')}\n")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_analyze(args: argparse.Namespace, out: TextIO) -> int:
    from emr_triage.analysis.catalogue import load_catalogue
    from emr_triage.analysis.classify import build_report, diagnose
    from emr_triage.analysis.engine import analyse_stream
    from emr_triage.local.output import print_diagnosis
    from emr_triage.logs.reader import iter_file_chunks

    catalogue = load_catalogue([args.rules] if args.rules else [])
    results = []
    for raw in args.paths:
        if raw.startswith(("s3://", "s3n://", "s3a://")):
            from emr_triage.aws.s3 import S3LogStore
            from emr_triage.logs.locations import parse_s3_uri

            bucket, key = parse_s3_uri(raw)
            stream = S3LogStore().open_object(bucket, key)
            results.append(
                analyse_stream(stream.chunks, catalogue=catalogue, source=f"s3://{bucket}/{key}", etag=stream.info.etag)
            )
            continue
        path = Path(raw)
        if not path.exists():
            raise EmrTriageError(f"{raw}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            results.append(analyse_stream(iter_file_chunks(file), catalogue=catalogue, source=str(file)))
    report = build_report(results)
    diagnosis = diagnose(report.findings, catalogue, report.reads)
    if args.json:
        out.write(
            json.dumps(
                {
                    "diagnosis": diagnosis.model_dump(mode="json"),
                    "reads": [r.model_dump() for r in report.reads],
                },
                indent=2,
            )
            + "\n"
        )
        return EXIT_OK
    out.write(f"Analysed {len(report.reads)} log(s) with catalogue {catalogue.version}\n")
    print_diagnosis(diagnosis, out)
    return EXIT_OK


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

    analyze = commands.add_parser("analyze", help="diagnose log files, folders or s3:// objects")
    analyze.add_argument("paths", nargs="+", help="log files (gzip or plain), folders, or s3:// URIs")
    analyze.add_argument("--rules", help="an extra failure-catalogue YAML file (adds or overrides rules)")
    analyze.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    handlers = {"replay": cmd_replay, "analyze": cmd_analyze}
    try:
        return handlers[args.command](args, out)
    except EmrTriageError as exc:
        sys.stderr.write(f"emr-triage: error: {exc}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
