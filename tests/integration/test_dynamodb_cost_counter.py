"""The DynamoDB counter behind the bench's ``dynamodb_*_per_incident`` lines (tests/bench/dynamodb_cost.py)
counts what it should, so that its figures cannot silently go to zero: it sees calls a direct client makes,
with their sizes, refused conditional writes included, and nothing outside its block; and on the demo
scenario it sees a plausible story (writes, reads and queries for its one incident). No figure is asserted:
the bench reports them, and issue 15's rewrite changes them.
"""

from __future__ import annotations

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from tests.bench.dynamodb_cost import DEMO, counting_dynamodb, replay_counted
from tests.integration.conftest import ROOT

from emr_triage.aws import clients
from emr_triage.local.replay import LocalStack


def test_the_counter_sees_each_call_of_a_client_made_before_it_with_its_size() -> None:
    with LocalStack(ROOT) as stack:
        # Given a DynamoDB client made before counting starts, and an item of ~10 KB
        dynamodb = clients.dynamodb()
        key = {"pk": {"S": "COUNTER#1"}, "sk": {"S": "ITEM"}}
        item = {**key, "body": {"S": "x" * 10_000}}
        original = BaseClient._make_api_call
        # When it writes the item, updates it, reads it back, queries it, and is refused a conditional write
        with counting_dynamodb() as use:
            dynamodb.put_item(TableName=stack.table_name, Item=item)
            dynamodb.update_item(
                TableName=stack.table_name,
                Key=key,
                UpdateExpression="SET note = :note",
                ExpressionAttributeValues={":note": {"S": "n" * 1_000}},
            )
            dynamodb.get_item(TableName=stack.table_name, Key=key)
            dynamodb.query(
                TableName=stack.table_name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "COUNTER#1"}},
            )
            with pytest.raises(ClientError) as refused:
                dynamodb.put_item(TableName=stack.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
        # And once counting has stopped, reads it again
        counted = (dict(use.calls), use.writes, use.bytes_written, use.bytes_read)
        dynamodb.get_item(TableName=stack.table_name, Key=key)
    # Then each call was counted by operation, the three writes (one refused) with what they sent, the two
    # reads with the ~11 KB item each returned, and nothing after the block (botocore is as it was)
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    calls, writes, written, read = counted
    assert calls == {"PutItem": 2, "UpdateItem": 1, "GetItem": 1, "Query": 1}
    assert (writes, use.refused_writes) == (3, 1)
    assert 21_000 <= written <= 23_000
    assert 22_000 <= read <= 23_000
    assert (dict(use.calls), use.writes, use.bytes_written, use.bytes_read) == counted
    assert BaseClient._make_api_call is original


def test_the_demo_replay_is_counted_as_a_plausible_story() -> None:
    # Given the demo scenario (one failed step, its cancelled step and dead cluster folded into its alert)
    # When it is replayed on the embedded stack with the counter on
    cost = replay_counted(DEMO)
    # Then it went as its scenario expects, leaving one incident, and the counter saw it written, read and
    # queried (at least one write and one read per incident, and data both ways)
    assert cost.failures == []
    assert (cost.incidents, cost.events) == (1, 5)
    use = cost.use
    assert use.writes >= cost.incidents and use.calls["PutItem"] + use.calls["UpdateItem"] >= 1
    assert use.calls["GetItem"] >= 1 and use.calls["Query"] >= 1
    assert use.bytes_written > 0 and use.bytes_read > 0
    assert set(use.calls) <= {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "GetItem",
        "Query",
        "BatchWriteItem",
        "TransactWriteItems",
        "BatchGetItem",
        "TransactGetItems",
        "Scan",
    }
