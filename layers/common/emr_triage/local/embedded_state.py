"""The embedded table's incidents kept between commands: ``replay`` saves them, ``incidents list|show``
reads them back into a fresh embedded table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emr_triage.exceptions import ScenarioError
from emr_triage.local.replay import EMBEDDED_TABLE, FAKE_CREDENTIALS, environment
from emr_triage.local.template import (
    load_template,
)

EMBEDDED_STATE = Path(".emr-triage") / "embedded-incidents.json"


def save_embedded_state(root: Path, items: list[dict[str, Any]]) -> Path:
    """Keep the embedded table's items after a replay (moto lives in the process), for ``emr-triage
    incidents`` to read. Overwritten by each replay."""
    import json

    path = root / EMBEDDED_STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"items": items}), "utf-8")
    return path


@contextmanager
def embedded_incidents(root: Path) -> Iterator[str]:
    """The incidents the last embedded replay recorded, in a fresh embedded table built from template.yaml's
    definition (so ``incidents`` reads them through the same repository code as a deployed table); yields
    the table name.

    Raises
    ------
    ScenarioError
        No replay has saved any incidents here yet.
    """
    import json

    import boto3
    from moto import mock_aws

    path = root / EMBEDDED_STATE
    if not path.is_file():
        raise ScenarioError(
            f"no incidents recorded on the embedded AWS yet ({path} does not exist): run `emr-triage replay "
            "events/scenarios/...` first, or use --aws for a deployed stack"
        )
    items = json.loads(path.read_text("utf-8")).get("items", [])
    table = load_template(root / "template.yaml")["Resources"]["IncidentsTable"]["Properties"]
    with environment({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}), mock_aws():
        from emr_triage.aws.clients import reset_clients

        reset_clients()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=EMBEDDED_TABLE,
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table.get("GlobalSecondaryIndexes", []),
            BillingMode="PAY_PER_REQUEST",
        )
        for item in items:
            dynamodb.put_item(TableName=EMBEDDED_TABLE, Item=item)
        try:
            yield EMBEDDED_TABLE
        finally:
            reset_clients()
