"""aws:iam types against the emulator: create, read round trip, in-place update checked
with a separate boto3 client, replacement keys, delete, lost creates."""

from __future__ import annotations

from typing import Any

import pytest

from aws.conftest import assert_round_trip, ctx, tag_map, unique
from stackwright.errors import InputError, ProviderError
from stackwright.providers.aws import iam
from stackwright.providers.aws.base import URN_TAG

pytestmark = pytest.mark.aws

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def document(*actions: str) -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


@pytest.fixture
def client(boto: Any) -> Any:
    """A boto3 client of our own, to check what the handler did without trusting it."""
    return boto("iam")


def role_tags(client: Any, role: str) -> dict[str, str]:
    return tag_map(client.list_role_tags(RoleName=role)["Tags"])


# --- Role ---------------------------------------------------------------------------


def test_role_lifecycle(handlers: Any, client: Any) -> None:
    h = handlers("aws:iam:Role")
    c = ctx("aws:iam:Role", unique("role"))
    name = unique("app")
    inputs = h.check({"name": name, "assume_role_policy": TRUST, "tags": {"team": "k8s"}})
    created = h.create(c, inputs)
    assert created.id == name
    assert created.outputs["arn"].endswith(f":role/{name}")
    assert created.outputs["unique_id"]
    assert role_tags(client, name) == {"team": "k8s", URN_TAG: c.urn}
    assert_round_trip(h, c, created.id, inputs)

    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    new = h.check({**inputs, "assume_role_policy": trust, "description": "nodes",
                   "max_session_duration": 7200, "tags": {"team": "platform"}})
    assert h.diff(inputs, created.outputs, new).replaces == ()
    h.update(c, created.id, inputs, created.outputs, new)
    role = client.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"] == trust
    assert role["Description"] == "nodes" and role["MaxSessionDuration"] == 7200
    assert role_tags(client, name) == {"team": "platform", URN_TAG: c.urn}
    assert_round_trip(h, c, created.id, new)

    assert h.diff(new, {}, {**new, "path": "/eks/"}).replaces == ("path",)
    assert h.diff(new, {}, {**new, "path": "/eks/"}).delete_before_replace  # same name
    renamed = h.diff(new, {}, {**new, "name": unique("other")})
    assert renamed.replaces == ("name",) and not renamed.delete_before_replace

    found = h.read(c, None, new, {})
    assert found is not None and found.id == name
    assert h.read(ctx("aws:iam:Role", unique("not-ours")), None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)
    assert name not in {r["RoleName"] for r in client.list_roles()["Roles"]}
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)


def test_role_policy_documents_compare_by_meaning(handlers: Any) -> None:
    h = handlers("aws:iam:Role")
    spelled = {"name": "r", "assume_role_policy": {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Principal": {"Service": ["eks.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}}}
    assert h.diff({"name": "r", "assume_role_policy": TRUST}, {}, spelled).changed == ()
    other = {**spelled, "assume_role_policy": document("s3:GetObject")}
    assert h.diff(spelled, {}, other).changed == ("assume_role_policy",)
    with pytest.raises(InputError):
        h.check({"name": "r", "assume_role_policy": {"Version": "2012-10-17"}})


def test_role_create_adopts_its_own_earlier_attempt(handlers: Any, client: Any) -> None:
    """A retried create that finds the name taken by itself succeeds; by another fails."""
    h = handlers("aws:iam:Role")
    c = ctx("aws:iam:Role", unique("role"))
    inputs = h.check({"name": unique("retry"), "assume_role_policy": TRUST})
    first = h.create(c, inputs)
    again = h.create(c, inputs)
    assert again == first
    with pytest.raises(ProviderError, match="already exists and is not managed by"):
        h.create(ctx("aws:iam:Role", unique("someone-else")), inputs)
    h.delete(c, first.id, inputs, {})


def test_role_read_without_id_finds_an_interrupted_create(handlers: Any, client: Any) -> None:
    h = handlers("aws:iam:Role")
    c = ctx("aws:iam:Role", unique("lost"))
    name = unique("lost")
    inputs = h.check({"name": name, "assume_role_policy": TRUST})
    client.create_role(RoleName=name, AssumeRolePolicyDocument=iam.policy_json(TRUST),
                       Tags=[{"Key": URN_TAG, "Value": c.urn}])
    found = h.read(c, None, inputs, {})
    assert found is not None and found.id == name and dict(found.inputs) == inputs
    h.delete(c, name, inputs, {})


# --- Policy -------------------------------------------------------------------------


def test_policy_lifecycle(handlers: Any, client: Any) -> None:
    h = handlers("aws:iam:Policy")
    c = ctx("aws:iam:Policy", unique("policy"))
    name = unique("read")
    inputs = h.check({"name": name, "policy": document("s3:GetObject"), "description": "reads",
                      "tags": {"k": "v"}})
    created = h.create(c, inputs)
    assert created.id == created.outputs["arn"] and created.id.endswith(f":policy/{name}")
    assert created.outputs["default_version_id"] == "v1"
    assert_round_trip(h, c, created.id, inputs)

    new = h.check({**inputs, "policy": document("s3:GetObject", "s3:ListBucket"), "tags": {}})
    assert h.diff(inputs, {}, new).replaces == ()
    assert "default_version_id" in h.computed_on_update
    outputs = h.update(c, created.id, inputs, created.outputs, new)
    meta = client.get_policy(PolicyArn=created.id)["Policy"]
    assert meta["DefaultVersionId"] == outputs["default_version_id"] == "v2"
    version = client.get_policy_version(PolicyArn=created.id, VersionId="v2")["PolicyVersion"]
    assert version["Document"] == new["policy"]
    assert client.list_policy_tags(PolicyArn=created.id)["Tags"] == [{"Key": URN_TAG, "Value": c.urn}]
    assert_round_trip(h, c, created.id, new)

    for key, value in (("name", unique("x")), ("path", "/p/"), ("description", "other")):
        assert h.diff(new, {}, {**new, key: value}).replaces == (key,)

    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, new, {})  # with a non-default version left
    assert name not in {p["PolicyName"] for p in client.list_policies(Scope="Local")["Policies"]}
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, {})


def test_policy_update_prunes_the_oldest_version(handlers: Any, client: Any) -> None:
    """IAM keeps five versions; the oldest non-default one makes room for the next."""
    h = handlers("aws:iam:Policy")
    c = ctx("aws:iam:Policy", unique("policy"))
    inputs = h.check({"name": unique("many"), "policy": document("s3:Action0")})
    created = h.create(c, inputs)
    old = inputs
    for n in range(1, 7):
        new = h.check({**old, "policy": document(f"s3:Action{n}")})
        h.update(c, created.id, old, {}, new)
        old = new
    versions = client.list_policy_versions(PolicyArn=created.id)["Versions"]
    assert len(versions) == 5
    default = next(v for v in versions if v["IsDefaultVersion"])
    assert default["VersionId"] == "v7"
    assert sorted(v["VersionId"] for v in versions) == ["v3", "v4", "v5", "v6", "v7"]
    assert_round_trip(h, c, created.id, old)
    h.delete(c, created.id, old, {})
    assert h.read(c, created.id, old, {}) is None


# --- RolePolicyAttachment and RolePolicy --------------------------------------------


@pytest.fixture
def role(client: Any) -> Any:
    name = unique("holder")
    client.create_role(RoleName=name, AssumeRolePolicyDocument=iam.policy_json(TRUST))
    yield name
    for p in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        client.detach_role_policy(RoleName=name, PolicyArn=p["PolicyArn"])
    for p in client.list_role_policies(RoleName=name)["PolicyNames"]:
        client.delete_role_policy(RoleName=name, PolicyName=p)
    client.delete_role(RoleName=name)


def test_role_policy_attachment_lifecycle(handlers: Any, client: Any, role: str) -> None:
    h = handlers("aws:iam:RolePolicyAttachment")
    arn = client.create_policy(PolicyName=unique("p"),
                               PolicyDocument=iam.policy_json(document("s3:GetObject")))["Policy"]["Arn"]
    c = ctx("aws:iam:RolePolicyAttachment", unique("attach"))
    inputs = h.check({"role": role, "policy_arn": arn})
    created = h.create(c, inputs)
    assert created.id == f"{role}/{arn}"
    attached = client.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    assert_round_trip(h, c, created.id, inputs)
    imported = h.read(c, created.id, {}, {})
    assert imported is not None and dict(imported.inputs) == inputs

    assert h.diff(inputs, {}, {**inputs, "role": "other"}).replaces == ("role",)
    assert h.diff(inputs, {}, {**inputs, "policy_arn": "arn:aws:iam::aws:policy/X"}).replaces == ("policy_arn",)

    found = h.read(c, None, inputs, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, inputs, {})
    assert client.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    assert h.read(c, created.id, inputs, {}) is None
    assert h.read(c, None, inputs, {}) is None
    h.delete(c, created.id, inputs, {})
    assert h.read(c, f"{unique('gone')}/{arn}", inputs, {}) is None  # role itself gone
    client.delete_policy(PolicyArn=arn)


def test_role_policy_lifecycle(handlers: Any, client: Any, role: str) -> None:
    h = handlers("aws:iam:RolePolicy")
    c = ctx("aws:iam:RolePolicy", unique("inline"))
    inputs = h.check({"role": role, "name": "read", "policy": document("s3:GetObject")})
    created = h.create(c, inputs)
    assert created.id == f"{role}:read"
    assert_round_trip(h, c, created.id, inputs)

    new = h.check({**inputs, "policy": document("s3:PutObject")})
    assert h.diff(inputs, {}, new).replaces == ()
    h.update(c, created.id, inputs, {}, new)
    live = client.get_role_policy(RoleName=role, PolicyName="read")["PolicyDocument"]
    assert live == new["policy"]
    assert_round_trip(h, c, created.id, new)
    renamed = h.diff(new, {}, {**new, "name": "write"})
    assert renamed.replaces == ("name",) and not renamed.delete_before_replace

    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, new, {})
    assert client.list_role_policies(RoleName=role)["PolicyNames"] == []
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, {})
