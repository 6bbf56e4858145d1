"""Translate template.yaml into plain CloudFormation with SAM's own translator, as `sam deploy` has
CloudFormation do (the AWS::Serverless-2016-10-31 transform), for the deploy rehearsal on moto
(`make deploy-local`, emr_triage/local/deploy_local.py).

Runs with the SAM CLI's interpreter (samtranslator is not in the project's virtualenv)::

    .venv-sam/bin/python tests/build/sam_translate.py TEMPLATE OUTPUT.json \
        [--code-uris URIS.json] [--parameters PARAMETERS.json]

URIS.json maps a function's or layer's logical id to the s3://bucket/key its local CodeUri/ContentUri was
uploaded to (what `sam package` writes); PARAMETERS.json holds the stack's parameter values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The AWS managed policies SAM attaches to the functions' roles, by name (the real ARNs: SAM asks IAM
# for this map when it is not given, which would need AWS).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "AWSLambdaRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
}
CODE_KEYS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _ManagedPolicies:
    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def translate(template: dict[str, Any], code_uris: dict[str, str], parameters: dict[str, str]) -> dict[str, Any]:
    """The CloudFormation template SAM makes of ``template``, each local code folder replaced by its upload.

    Raises
    ------
    SystemExit
        A function or layer has a local code path that ``code_uris`` does not name.
    """
    for logical_id, resource in template["Resources"].items():
        key = CODE_KEYS.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key is None or key not in properties:
            continue
        if logical_id in code_uris:
            properties[key] = code_uris[logical_id]
        elif not str(properties[key]).startswith("s3://"):
            raise SystemExit(f"sam translate: {logical_id}'s {key} {properties[key]} was not uploaded (--code-uris)")
    result: dict[str, Any] = transform(template, parameters, _ManagedPolicies())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--code-uris", type=Path, help="JSON: logical id -> s3://bucket/key")
    parser.add_argument("--parameters", type=Path, help="JSON: parameter name -> value")
    args = parser.parse_args(argv)
    code_uris = json.loads(args.code_uris.read_text()) if args.code_uris else {}
    parameters = json.loads(args.parameters.read_text()) if args.parameters else {}
    template = yaml_parse(args.template.read_text())
    try:
        translated = translate(template, code_uris, parameters)
    except Exception as exc:  # samtranslator's InvalidDocumentException lists every problem in its message
        print(f"sam translate: {args.template}: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(translated, indent=1, default=str))
    print(f"sam translate: {args.template} -> {args.output} ({len(translated['Resources'])} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
