"""Which existing objects a create or a recovery takes as its own: only those this very
state made for the URN. Two states of one stack (two checkouts, a `.stackwright/` lost
and made again) share URNs, never a lineage; each refuses the other's objects, naming
the lineage, instead of adopting them (and then deleting them on `destroy`).

Objects made before lineage tags carry the URN tag alone: recovering a create this
state recorded as pending still takes them; any other create refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aws.conftest import unique
from stackwright.errors import ProviderError
from stackwright.providers.aws.base import LINEAGE_TAG, URN_TAG, AwsResource
from stackwright.providers.protocol import OperationContext

pytestmark = pytest.mark.aws

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
MINE, THEIRS = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222"

KINDS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "role": ("aws:iam:Role", lambda: {"name": unique("own"), "assume_role_policy": TRUST}),
    "table": ("aws:dynamodb:Table", lambda: {"name": unique("own"), "hash_key": "pk",
                                             "attributes": [{"name": "pk", "type": "S"}]}),
    "repository": ("aws:ecr:Repository", lambda: {"name": unique("own")}),
    "topic": ("aws:sns:Topic", lambda: {"name": unique("own")}),
    "bucket": ("aws:s3:Bucket", lambda: {"bucket": unique("own")}),
}


def state_ctx(type_token: str, lineage: str, *, recovering: bool = False, token: str = "t-1") -> OperationContext:
    """The same URN, as the state of ``lineage`` calls the provider."""
    return OperationContext(urn=f"dev::shop::{type_token}::main", name="main", token=token,
                            lineage=lineage, recovering=recovering)


@pytest.fixture(params=sorted(KINDS))
def made(request: pytest.FixtureRequest, handlers: Any) -> Any:
    """A handler, its inputs, and the object the state of lineage MINE created."""
    type_token, inputs = KINDS[request.param]
    h: AwsResource = handlers(type_token)
    values = h.check(inputs())
    created = h.create(state_ctx(type_token, MINE), values)
    yield h, type_token, values, created
    h.delete(state_ctx(type_token, MINE), created.id, values, created.outputs)


def test_another_state_of_the_stack_refuses_the_object_naming_its_lineage(made: Any) -> None:
    h, type_token, values, created = made
    with pytest.raises(ProviderError, match=f"managed by another state of this stack \\(lineage {MINE}") as info:
        h.create(state_ctx(type_token, THEIRS, token="t-2"), values)
    assert info.value.hint and "import" in info.value.hint
    assert h.read(state_ctx(type_token, THEIRS, recovering=True), None, values, {}) is None


def test_the_state_that_made_it_adopts_it_on_a_retry_and_in_recovery(made: Any) -> None:
    h, type_token, values, created = made
    assert h.read(state_ctx(type_token, MINE, recovering=True), None, values, {}).id == created.id
    assert h.create(state_ctx(type_token, MINE, token="t-2"), values).id == created.id


def test_a_create_marks_its_object_with_the_state_lineage(handlers: Any, boto: Any) -> None:
    h = handlers("aws:iam:Role")
    values = h.check({"name": unique("marked"), "assume_role_policy": TRUST})
    c = state_ctx("aws:iam:Role", MINE)
    created = h.create(c, values)
    tags = {t["Key"]: t["Value"] for t in boto("iam").get_role(RoleName=created.id)["Role"]["Tags"]}
    assert tags == {URN_TAG: c.urn, LINEAGE_TAG: MINE}
    assert h.read(c, created.id, values, {}).inputs["tags"] == {}  # never a user's tag, never drift
    h.delete(c, created.id, values, {})


def test_an_object_made_before_lineage_tags_is_recovered_but_never_adopted_by_a_create(
        handlers: Any, boto: Any) -> None:
    h = handlers("aws:dynamodb:Table")
    values = h.check({"name": unique("older"), "hash_key": "pk", "attributes": [{"name": "pk", "type": "S"}]})
    c = state_ctx("aws:dynamodb:Table", MINE)
    boto("dynamodb").create_table(  # what a create of an earlier version left: the URN tag alone
        TableName=values["name"], BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        Tags=[{"Key": URN_TAG, "Value": c.urn}])
    assert h.read(c, None, values, {}) is None
    with pytest.raises(ProviderError, match="before objects carried their state's lineage") as info:
        h.create(c, values)
    assert info.value.hint and "import" in info.value.hint
    recovered = h.read(state_ctx("aws:dynamodb:Table", MINE, recovering=True), None, values, {})
    assert recovered is not None and recovered.id == values["name"]
    h.delete(c, values["name"], values, {})


def test_a_vpc_of_another_state_is_not_taken_for_an_interrupted_create(handlers: Any) -> None:
    """Unnamed objects are found by their URN tag alone: the lineage tells them apart."""
    h = handlers("aws:ec2:Vpc")
    values = h.check({"cidr_block": "10.77.0.0/16"})
    theirs = h.create(state_ctx("aws:ec2:Vpc", THEIRS), values)
    assert h.read(state_ctx("aws:ec2:Vpc", MINE, recovering=True), None, values, {}) is None
    assert h.read(state_ctx("aws:ec2:Vpc", THEIRS, recovering=True), None, values, {}).id == theirs.id
    h.delete(state_ctx("aws:ec2:Vpc", THEIRS), theirs.id, values, {})
