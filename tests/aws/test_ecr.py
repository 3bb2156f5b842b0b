"""aws:ecr:Repository against the emulator: create, read round trip, update, replace, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import ProviderError
from stackwright.providers.aws import ecr
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

TYPE = "aws:ecr:Repository"
POLICY = {"rules": [{
    "rulePriority": 1, "description": "keep 10",
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
    "action": {"type": "expire"},
}]}


@pytest.fixture
def handler(handlers: Any) -> AwsResource:
    return handlers(TYPE)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("ecr")


def tags_of(client: Any, arn: str) -> dict[str, str]:
    return tag_map(client.list_tags_for_resource(resourceArn=arn)["tags"])


def test_lifecycle(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "app")
    inputs = handler.check({"name": "sw/app", "image_tag_mutability": "IMMUTABLE", "scan_on_push": True,
                            "lifecycle_policy": POLICY, "tags": {"team": "web"}})
    assert set(inputs) == set(ecr.Repository.input_specs())
    created = handler.create(c, inputs)
    assert created.id == "sw/app"
    assert created.outputs["repository_url"].endswith("/sw/app")
    assert tags_of(client, created.outputs["arn"]) == {"team": "web", URN_TAG: c.urn}

    read = handler.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(ecr.Repository.input_specs())
    assert handler.diff(inputs, created.outputs, read.inputs).changed == ()

    new = handler.check(dict(inputs, image_tag_mutability="MUTABLE", scan_on_push=False,
                             lifecycle_policy=None, tags={"team": "api"}))
    assert handler.diff(inputs, created.outputs, new).replaces == ()
    handler.update(c, created.id, inputs, created.outputs, new)
    repo = client.describe_repositories(repositoryNames=["sw/app"])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is False
    with pytest.raises(client.exceptions.LifecyclePolicyNotFoundException):
        client.get_lifecycle_policy(repositoryName="sw/app")
    assert tags_of(client, created.outputs["arn"]) == {"team": "api", URN_TAG: c.urn}
    back = handler.check(dict(new, lifecycle_policy=POLICY))
    handler.update(c, created.id, new, created.outputs, back)
    stored = client.get_lifecycle_policy(repositoryName="sw/app")["lifecyclePolicyText"]
    assert json.loads(stored) == POLICY
    read = handler.read(c, created.id, back, created.outputs)
    assert read is not None and handler.diff(back, created.outputs, read.inputs).changed == ()

    assert handler.diff(back, created.outputs, dict(back, name="sw/app2")).replaces == ("name",)

    handler.delete(c, created.id, back, created.outputs)
    assert client.describe_repositories()["repositories"] == []
    assert handler.read(c, created.id, back, created.outputs) is None
    handler.delete(c, created.id, back, created.outputs)  # idempotent


def test_delete_with_images_needs_force_delete(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "imgs")
    inputs = handler.check({"name": "sw-imgs"})
    created = handler.create(c, inputs)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "a" * 64, "size": 1}, "layers": []})
    client.put_image(repositoryName="sw-imgs", imageManifest=manifest, imageTag="v1")
    with pytest.raises(ProviderError) as info:
        handler.delete(c, created.id, inputs, created.outputs)
    assert "force_delete" in info.value.message and not info.value.retryable
    forced = dict(inputs, force_delete=True)
    handler.delete(c, created.id, forced, created.outputs)
    assert handler.read(c, created.id, forced, created.outputs) is None


def test_read_without_id_finds_an_interrupted_create(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "pending")
    inputs = handler.check({"name": "sw-pending", "tags": {"a": "b"}})
    assert handler.read(c, None, inputs, {}) is None
    client.create_repository(repositoryName="sw-pending",
                             tags=[{"Key": "a", "Value": "b"}, {"Key": URN_TAG, "Value": c.urn}])
    found = handler.read(c, None, inputs, {})
    assert found is not None and found.id == "sw-pending"
    assert handler.diff(inputs, {}, found.inputs).changed == ()
    assert handler.read(ctx(TYPE, "other"), None, inputs, {}) is None
    created = handler.create(c, inputs)  # a retried create adopts its own repository
    with pytest.raises(ProviderError, match="not managed"):
        handler.create(ctx(TYPE, "other"), inputs)
    handler.delete(c, created.id, inputs, created.outputs)
