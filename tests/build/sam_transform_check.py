"""What `sam deploy` would create for the interactive function, checked on SAM's own translation of
template.yaml (the samtranslator library `sam validate` and `sam deploy` use; run by `make validate` with the
SAM CLI's interpreter, as it is not in the project's virtualenv).

The function URL is public (Slack cannot sign with SigV4): the only public grants must be invoking it
through its URL, and without a signing secret the function and its URL must not exist at all."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:emr-triage-signing-AbCdEf"


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def translated(parameters: dict[str, str]) -> dict[str, Any]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():  # (local paths: sam package uploads them first)
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://bucket/key.zip"
    result: dict[str, Any] = transform(template, parameters, _NoManagedPolicies())
    return result


def _resolved(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Resources whose Condition holds with these parameters (SAM keeps conditions for CloudFormation)."""
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    from emr_triage.local.template import render

    return render(template, parameters)["Resources"]


def main() -> int:
    problems: list[str] = []
    interactive = {"SlackSigningSecretArn": SIGNING_SECRET}
    resources = _resolved(translated(interactive), interactive)
    urls = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
    if list(urls) != ["SlackInteractionsFunctionUrl"] or urls["SlackInteractionsFunctionUrl"]["AuthType"] != "NONE":
        problems.append(f"expected one public function URL, of SlackInteractionsFunction: {urls}")
    public = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
              and r["Properties"].get("Principal") == "*"]  # fmt: skip
    allowed = [
        {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
        {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
    ]
    for grant in public:
        target = grant.get("FunctionName")
        shape = {k: v for k, v in grant.items() if k not in ("FunctionName", "Principal")}
        if target != {"Ref": "SlackInteractionsFunction"} or shape not in allowed:
            problems.append(f"a public grant other than invoking the interactive function by its URL: {grant}")
    if len(public) != 2:
        problems.append(
            f"expected the URL's two public grants (InvokeFunctionUrl, InvokeFunction via the URL): {public}"
        )
    default = _resolved(translated({}), {})
    if any(r["Type"] == "AWS::Lambda::Url" for r in default.values()) or "SlackInteractionsFunction" in default:
        problems.append("without SlackSigningSecretArn the interactive function and its URL must not be deployed")
    for problem in problems:
        print(f"sam transform check: {problem}", file=sys.stderr)
    if not problems:
        print("sam transform check: the only public grants are the interactive function's URL (only with its secret)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
