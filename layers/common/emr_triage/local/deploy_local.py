"""A deploy rehearsal without AWS: template.yaml packaged, translated by SAM and created as a stack on
moto's CloudFormation, served over HTTP on 127.0.0.1 (``make deploy-local``).

What ``sam deploy`` does, step by step, against moto in server mode:

1. package: each function's ``CodeUri`` and layer's ``ContentUri`` (a local folder) is zipped and uploaded
   to an artifacts bucket, and replaced by its ``s3://bucket/key`` (as ``sam package``; the folders as they
   are, not ``sam build``'s output: moto never runs the code);
2. translate: SAM's own translator (``tests/build/sam_translate.py``, run with the SAM CLI's interpreter)
   turns the ``AWS::Serverless`` resources into plain CloudFormation;
3. create the stack with the translated template (uploaded, as a TemplateURL) and realistic parameters
   (the Slack token's secret created first in moto's Secrets Manager, the log bucket too), and wait for it.

moto's CloudFormation skips, with a warning only, every resource type it does not model: they are listed
here with their reason (:func:`unsupported_resources`), never skipped silently. Then ``emr-triage replay
--aws`` and ``emr-triage incidents --aws`` run against the stack with ``AWS_ENDPOINT_URL`` set.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emr_triage.exceptions import EmrTriageError
from emr_triage.local.members import create_bucket
from emr_triage.local.moto_server import (
    DeployRehearsalError,
    quiet_skipped_types,
    start_server,
    unsupported_resources,
)

__all__ = ["DeployRehearsalError", "Rehearsal", "deploy", "seed_scenario", "start_server", "unsupported_resources"]

DEFAULT_STACK = "emr-triage-local"
ARTIFACTS_BUCKET = "emr-triage-local-artifacts"
SLACK_SECRET_NAME = "emr-triage/slack-bot-token"  # noqa: S105 (the secret's name, not its value)
# The token the rehearsal's secret holds: nothing real, Slack is the console or a fake (SLACK_API_URL).
LOCAL_SLACK_TOKEN = "xoxb-local-rehearsal"  # noqa: S105 (no workspace has it)
DEFAULT_PARAMETERS = {
    "EnvironmentName": "dev",
    "LogBucketName": "emr-triage-local-logs",
    "LogKeyPrefix": "elasticmapreduce/",
    "SlackChannel": "#emr-alerts",
}
CODE_KEYS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
TERMINAL = {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE"}


@dataclass
class Rehearsal:
    """What the rehearsal deployed: the stack as moto's CloudFormation reports it."""

    endpoint: str
    region: str
    stack_name: str
    status: str
    status_reason: str
    outputs: dict[str, str]
    # logical id -> (resource type, physical id)
    resources: dict[str, tuple[str, str]]
    # logical id -> why moto did not create it (resources the parameters deploy, moto skipped)
    not_created: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """The variables another terminal sets to reach the stack (botocore honours AWS_ENDPOINT_URL)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **FAKE_CREDENTIALS,
        }


# ---------------------------------------------------------------------------------------------------
# Clients of the server
# ---------------------------------------------------------------------------------------------------
def _client(service: str, endpoint: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


# ---------------------------------------------------------------------------------------------------
# 1. package
# ---------------------------------------------------------------------------------------------------
def zip_folder(folder: Path) -> bytes:
    """A folder's files as a zip (sorted, without bytecode caches), as ``sam package`` uploads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def package(template: Mapping[str, Any], root: Path, s3: Any, bucket: str) -> dict[str, str]:
    """Zip and upload every function's and layer's local code folder; their logical id -> s3:// URI.

    Raises
    ------
    DeployRehearsalError
        A local CodeUri/ContentUri is not a folder of the checkout.
    """
    import hashlib

    uris: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        key = CODE_KEYS.get(str(resource.get("Type")))
        value = resource.get("Properties", {}).get(key) if key else None
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        folder = (root / value).resolve()
        if not folder.is_dir():
            raise DeployRehearsalError(f"{logical_id}: {key} {value} is not a folder of {root}")
        body = zip_folder(folder)
        object_key = f"{hashlib.md5(body, usedforsecurity=False).hexdigest()}.zip"  # sam package's naming
        s3.put_object(Bucket=bucket, Key=object_key, Body=body)
        uris[logical_id] = f"s3://{bucket}/{object_key}"
    return uris


# ---------------------------------------------------------------------------------------------------
# 2. translate
# ---------------------------------------------------------------------------------------------------
def sam_python(root: Path) -> Path:
    """The SAM CLI's interpreter (samtranslator lives there): $EMR_TRIAGE_SAM_PYTHON or .venv-sam's."""
    return Path(os.environ.get("EMR_TRIAGE_SAM_PYTHON") or root / ".venv-sam" / "bin" / "python")


def translate(root: Path, code_uris: Mapping[str, str], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """template.yaml as SAM's translator makes it plain CloudFormation, with the uploaded code's URIs.

    Raises
    ------
    DeployRehearsalError
        No SAM interpreter (``make validate`` creates .venv-sam), or the translator rejected the template.
    """
    python = sam_python(root)
    if not python.exists():
        raise DeployRehearsalError(f"no SAM CLI interpreter at {python}: `make validate` (or `make build`) makes it")
    with tempfile.TemporaryDirectory(prefix="emr-triage-sam-") as work:
        uris, values, output = (Path(work) / name for name in ("uris.json", "parameters.json", "template.json"))
        uris.write_text(json.dumps(dict(code_uris)))
        values.write_text(json.dumps(dict(parameters)))
        command = [str(python), str(root / "tests" / "build" / "sam_translate.py"), str(root / "template.yaml")]
        command += [str(output), "--code-uris", str(uris), "--parameters", str(values)]
        env = {**os.environ, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise DeployRehearsalError(f"SAM's translator failed: {done.stderr.strip() or done.stdout.strip()}")
        translated: dict[str, Any] = json.loads(output.read_text())
    return translated


# ---------------------------------------------------------------------------------------------------
# 3. create the stack
# ---------------------------------------------------------------------------------------------------
def rehearsal_parameters(
    secrets: Any, overrides: Mapping[str, str] | None = None, token: str = LOCAL_SLACK_TOKEN
) -> dict[str, str]:
    """Realistic stack parameters: the defaults above, the Slack token's secret created in Secrets Manager."""
    try:
        arn = secrets.create_secret(Name=SLACK_SECRET_NAME, SecretString=json.dumps({"bot_token": token}))["ARN"]
    except secrets.exceptions.ResourceExistsException:
        arn = secrets.describe_secret(SecretId=SLACK_SECRET_NAME)["ARN"]
    return {**DEFAULT_PARAMETERS, "SlackTokenSecretArn": str(arn), **(overrides or {})}


def _wait(cloudformation: Any, stack_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] in TERMINAL or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def _failure_reasons(cloudformation: Any, stack_name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    failed = [e for e in events if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    return "; ".join(f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '?')}" for e in failed)


def deploy(
    root: Path,
    endpoint: str,
    *,
    stack_name: str = DEFAULT_STACK,
    region: str = "us-east-1",
    parameters: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Rehearsal:
    """Package, translate and create template.yaml's stack on the moto server at ``endpoint``.

    Parameters
    ----------
    root
        The checkout (template.yaml, functions/, layers/, tests/build/sam_translate.py).
    endpoint
        The moto server's URL (:func:`start_server`).
    parameters
        Stack parameters over :data:`DEFAULT_PARAMETERS` (the Slack secret is created unless given).

    Returns
    -------
    Rehearsal
        The stack's status, outputs and physical resources, and the resources moto did not create.

    Raises
    ------
    DeployRehearsalError
        Packaging or translation failed, or the stack did not reach CREATE_COMPLETE (with the reasons).
    """
    from emr_triage.local.template import load_template

    s3 = _client("s3", endpoint, region)
    cloudformation = _client("cloudformation", endpoint, region)
    given = dict(parameters or {})
    values = (
        {**DEFAULT_PARAMETERS, **given}
        if "SlackTokenSecretArn" in given
        else rehearsal_parameters(_client("secretsmanager", endpoint, region), given)
    )
    for bucket in (ARTIFACTS_BUCKET, values["LogBucketName"]):
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            create_bucket(s3, bucket, region)
    code_uris = package(load_template(root / "template.yaml"), root, s3, ARTIFACTS_BUCKET)
    translated = translate(root, code_uris, values, region)
    body = json.dumps(translated, separators=(",", ":"))
    template_key = f"{stack_name}/template.json"
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=template_key, Body=body.encode())
    declared = translated.get("Parameters", {})
    from botocore.exceptions import ClientError

    try:
        cloudformation.create_stack(
            StackName=stack_name,
            # As `sam deploy` passes a template over TemplateBody's 51,200 bytes.
            TemplateURL=f"https://s3.{region}.amazonaws.com/{ARTIFACTS_BUCKET}/{template_key}",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items() if k in declared],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as exc:  # moto creates the resources within the call: a failure is its answer
        raise DeployRehearsalError(f"CreateStack {stack_name} failed: {exc}") from exc
    stack = _wait(cloudformation, stack_name, timeout)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        reasons = _failure_reasons(cloudformation, stack_name) or stack.get("StackStatusReason", "")
        raise DeployRehearsalError(f"stack {stack_name} is {stack['StackStatus']}: {reasons or 'no reason given'}")
    described = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    # (an entry without a logical id is one moto skipped: see moto_server.skipped_resources_out_of_describe)
    resources = {
        r["LogicalResourceId"]: (str(r.get("ResourceType", "")), str(r.get("PhysicalResourceId", "")))
        for r in described
        if r.get("LogicalResourceId")
    }
    not_created = unsupported_resources(translated, values)
    for logical_id in set(render_resources(translated, values)) - set(resources) - set(not_created):
        not_created[logical_id] = "moto's CloudFormation did not report it (describe_stack_resources)"
    return Rehearsal(
        endpoint=endpoint,
        region=region,
        stack_name=stack_name,
        status=stack["StackStatus"],
        status_reason=str(stack.get("StackStatusReason", "")),
        outputs={o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])},
        resources=resources,
        not_created=dict(sorted(not_created.items())),
        parameters=values,
    )


def render_resources(translated: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """The translated template's resources whose Condition holds with these parameters."""
    from emr_triage.local.template import render

    resources: dict[str, Any] = render(translated, parameters)["Resources"]
    return resources


def seed_scenario(folder: Path, endpoint: str) -> dict[tuple[str, str], Path]:
    """Create a scenario's clusters, steps, job runs and log files on the moto server.

    The server must run in this process (the seeding sets what moto's API cannot, in its backends).

    Returns
    -------
    dict
        The log objects the scenario lands later (``lands: true``), not uploaded: (bucket, key) -> file. The
        ``--aws`` replay does not land them; upload each before replaying its event, as EMR would copy it.
    """
    from emr_triage.aws import clients
    from emr_triage.local.replay import environment
    from emr_triage.local.scenario import load_scenario, seed

    scenario = load_scenario(folder)
    with environment({"AWS_ENDPOINT_URL": endpoint, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": scenario.region}):
        held_back = seed(scenario, folder)
    clients.reset_clients()
    return held_back


def report(rehearsal: Rehearsal, out: Any) -> None:
    """Print the stack's outputs, physical resources and what moto did not create."""
    out.write(f"━━ Stack {rehearsal.stack_name}: {rehearsal.status} on moto at {rehearsal.endpoint}\n")
    out.write("\n━━ Outputs\n")
    for key, value in sorted(rehearsal.outputs.items()):
        out.write(f"  {key:<30} {value}\n")
    out.write(f"\n━━ Resources created ({len(rehearsal.resources)})\n")
    for logical_id, (kind, physical) in sorted(rehearsal.resources.items()):
        out.write(f"  {logical_id:<44} {kind:<32} {physical}\n")
    out.write(f"\n━━ Resources moto could NOT create ({len(rehearsal.not_created)}): not rehearsed\n")
    for logical_id, reason in rehearsal.not_created.items():
        out.write(f"  {logical_id:<44} {reason}\n")


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: use Name=value")
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    """``make deploy-local``: deploy on a moto server, print what was created, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="deploy_local", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--stack-name", default=DEFAULT_STACK)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--parameter", type=_parameter, action="append", default=[], help="Name=value, repeatable")
    parser.add_argument("--scenario", type=Path, action="append", default=[], help="seed this scenario folder")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout (default: .)")
    parser.add_argument("--no-wait", action="store_true", help="stop the server after deploying (a check)")
    args = parser.parse_args(argv)
    from emr_triage.local.scenario import load_scenario

    overrides = dict(args.parameter)
    if args.scenario:  # the stack reads the first scenario's log bucket and channel
        first = load_scenario(args.scenario[0])
        overrides = {"LogBucketName": first.log_bucket, "LogKeyPrefix": first.log_prefix,
                     "SlackChannel": first.slack_channel, **overrides}  # fmt: skip
    import signal

    quiet_skipped_types()
    # Ctrl-C, and a plain kill too (a terminal's Ctrl-C may be ignored when started in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server, endpoint = start_server(args.port)
    try:
        # The log bucket exists before the stack, as in an account (the template takes an existing one).
        held_back = {where: path for folder in args.scenario for where, path in seed_scenario(folder, endpoint).items()}
        rehearsal = deploy(args.root.resolve(), endpoint, stack_name=args.stack_name, region=args.region,
                           parameters=overrides)  # fmt: skip
    except EmrTriageError as exc:
        print(f"deploy-local: {exc}", file=sys.stderr)
        server.stop()
        return 1
    report(rehearsal, sys.stdout)
    seeded = "".join(f"\n  seeded: {folder}" for folder in args.scenario)
    seeded += "".join(
        f"\n  lands later (upload it before its event): aws s3 cp {path} s3://{bucket}/{key}"
        for (bucket, key), path in sorted(held_back.items())
    )
    exports = "\n".join(f"  export {k}={v}" for k, v in rehearsal.environment.items())
    print(f"\n━━ moto serves the stack at {endpoint}{seeded}\nIn another terminal:\n{exports}")
    first_events = args.scenario[0] if args.scenario else Path("events/step-failed.json")
    print(f"  emr-triage replay --aws --stack-name {args.stack_name} {first_events}")
    print(f"  emr-triage incidents --aws --stack-name {args.stack_name} list")
    if args.no_wait:
        server.stop()
        return 0
    print("Ctrl-C stops the server (and forgets the stack).", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping moto")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
