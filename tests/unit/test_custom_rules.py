"""Users' own rules: a folder of YAML files shipped as a layer, checked here before they reach Lambda."""

from __future__ import annotations

from pathlib import Path

import yaml

from emr_triage.analysis.catalogue import get_catalogue, load_catalogue
from emr_triage.local.template import Resolver, function_specs, load_template, parameter_defaults
from emr_triage.runtime import _catalogue

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_RULES = ROOT / "layers" / "rules" / "emr-triage-rules"

ACME = {
    "id": "acme_quota_exceeded",
    "category": "acme_quota",
    "rank": 25,
    "severity": "high",
    "retryable": True,
    "title": "The ACME API quota was exceeded",
    "patterns": ["AcmeQuotaExceededException"],
    "explanation": "The job called the ACME API too often.",
    "remediation": "Lower acme.client.parallelism.",
}


def test_the_custom_rules_folder_loads() -> None:
    # A bad file in layers/rules/emr-triage-rules fails here, in `make test`, naming the rule and the
    # problem, before `sam deploy` ships it
    load_catalogue([CUSTOM_RULES])


def test_a_folder_adds_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    # Given two files, the second overriding the first's rule title
    (tmp_path / "10-acme.yaml").write_text(yaml.safe_dump({"version": 1, "rules": [ACME]}))
    (tmp_path / "20-acme.yml").write_text(yaml.safe_dump({"version": 2, "rules": [{**ACME, "title": "Quota!"}]}))
    (tmp_path / "notes.txt").write_text("not rules")
    # When the folder is loaded
    catalogue = load_catalogue([tmp_path])
    # Then both were read in order and the later one wins
    assert catalogue.get("acme_quota_exceeded").title == "Quota!"  # type: ignore[union-attr]
    assert catalogue.version.endswith("+10-acme@1+20-acme@2")


def test_a_bad_rules_file_in_lambda_falls_back_to_our_catalogue(tmp_path: Path) -> None:
    # Given a user file with a broken rule
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"version": 1, "rules": [{**ACME, "severity": "apocalyptic"}]}))
    get_catalogue.cache_clear()
    # When the functions build their dependencies, Then alerts keep flowing with the built-in catalogue
    catalogue = _catalogue(str(bad))
    assert catalogue.get("acme_quota_exceeded") is None
    assert catalogue.version == load_catalogue().version


def test_the_local_runner_reads_the_custom_rules_layer_where_lambda_mounts_it() -> None:
    # Given the template as the local runner reads it
    template = load_template(ROOT / "template.yaml")
    parameters = dict.fromkeys(template["Parameters"], "x") | parameter_defaults(template)
    resolver = Resolver(
        parameters, refs={name: name for name in template["Resources"]}, pseudo={"AWS::AccountId": "123456789012"}
    )
    # When it resolves the functions' environment
    specs = function_specs(template, ROOT, resolver)
    # Then /opt/emr-triage-rules (the CustomRulesLayer in Lambda) is this repository's folder
    assert specs
    for spec in specs:
        assert Path(spec.environment["EMR_TRIAGE_RULES_FILE"]) == CUSTOM_RULES.resolve()
