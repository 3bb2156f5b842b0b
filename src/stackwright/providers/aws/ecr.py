"""ECR repositories: tag mutability, scan on push, lifecycle policy and tags change in
place; the name is the identity."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    call,
    call_or_none,
    claim,
    error_code,
    is_ours,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import (
    ArnTags,
    create_or_adopt,
    delete_explaining,
    is_declared,
    reject_urn_tag,
    stale_tags,
    with_defaults,
)
from stackwright.providers.aws.read_batch import MISS
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["RESOURCE_PROVIDERS", "Repository", "RepositoryProvider"]

MUTABILITIES = ("MUTABLE", "IMMUTABLE")
TAGS = ArnTags(arn="resourceArn", keys="tagKeys", tags="tags")


class Repository(Resource, type="aws:ecr:Repository"):
    """A private container image repository."""

    name: str
    image_tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    lifecycle_policy: dict[str, Any] | None = None
    force_delete: bool = False
    tags: dict[str, str] = {}
    arn: Output[str]
    repository_url: Output[str]


class RepositoryProvider(AwsResource):
    """``aws:ecr:Repository``; the id is the repository name."""

    service = "ecr"
    type_token = "aws:ecr:Repository"
    resource_class = Repository
    replace_on = frozenset({"name"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Repository, inputs)
        if values["image_tag_mutability"] not in MUTABILITIES:
            raise InputError(f"image_tag_mutability must be one of {MUTABILITIES}",
                             prop="image_tag_mutability")
        reject_urn_tag(values["tags"])
        return values

    # --- create ---------------------------------------------------------------------

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        name = values["name"]
        repo = self._describe(name) or self._create_repository(ctx, values)
        claim("repository", name, self._all_tags(repo["repositoryArn"]), ctx)
        if values["lifecycle_policy"] is not None:
            self._put_lifecycle(name, values["lifecycle_policy"])
        return Created(name, self._outputs(repo))

    def _create_repository(self, ctx: OperationContext, values: Mapping[str, Any]) -> dict[str, Any]:
        name = values["name"]
        return dict(create_or_adopt(  # when an earlier attempt made it, the caller checks whose it is
            f"create repository {name}",
            lambda: self.client.create_repository(
                repositoryName=name, imageTagMutability=values["image_tag_mutability"],
                imageScanningConfiguration={"scanOnPush": values["scan_on_push"]},
                tags=tag_list(values["tags"], ctx))["repository"],
            frozenset({"RepositoryAlreadyExistsException"}), lambda: self._describe(name)))

    def _describe(self, name: str) -> dict[str, Any] | None:
        got = call_or_none(f"describe repository {name}", self.client.describe_repositories,
                           repositoryNames=[name])
        repos = (got or {}).get("repositories") or []
        return dict(repos[0]) if repos else None

    batch_size = 100

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        """One call for all; ECR fails it when one of them is gone, then each on its own."""
        try:
            got = call(f"describe {len(keys)} repositories", self.client.describe_repositories,
                       repositoryNames=keys)
        except ProviderError as err:
            if error_code(err.__cause__ or err) != "RepositoryNotFoundException":
                raise
            return {name: repo for name in keys if (repo := self._describe(name)) is not None}
        return {r["repositoryName"]: dict(r) for r in got.get("repositories") or []}

    def _describe_once(self, name: str) -> dict[str, Any] | None:
        answer = self.batched(name)
        return self._describe(name) if answer is MISS else answer

    def _all_tags(self, arn: str) -> dict[str, str]:
        return TAGS.read(self.client, arn)

    @staticmethod
    def _outputs(repo: Mapping[str, Any]) -> dict[str, Any]:
        return {"arn": repo["repositoryArn"], "repository_url": repo["repositoryUri"]}

    def _put_lifecycle(self, name: str, policy: Mapping[str, Any] | None) -> None:
        if policy is None:
            call_or_none(f"remove lifecycle policy of {name}", self.client.delete_lifecycle_policy,
                         repositoryName=name)
            return
        call(f"set lifecycle policy of {name}", self.client.put_lifecycle_policy, repositoryName=name,
             lifecyclePolicyText=json.dumps(policy))

    # --- read -----------------------------------------------------------------------

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        name = id or inputs.get("name")
        repo = self._describe_once(name) if name else None
        if repo is None:
            return None
        tags = self._all_tags(repo["repositoryArn"])
        if id is None and not is_ours(tags, ctx):
            return None
        live = {
            "name": repo["repositoryName"],
            "image_tag_mutability": repo.get("imageTagMutability", "MUTABLE"),
            "scan_on_push": bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush")),
            "lifecycle_policy": self._lifecycle(repo["repositoryName"])
            if is_declared(inputs, "lifecycle_policy", None) else None,
            "force_delete": bool(inputs.get("force_delete", False)),
            "tags": tag_dict(tag_list(tags)),
        }
        return ReadResult(repo["repositoryName"], live, self._outputs(repo))

    def _lifecycle(self, name: str) -> dict[str, Any] | None:
        got = call_or_none(f"get lifecycle policy of {name}", self.client.get_lifecycle_policy,
                           repositoryName=name)
        text = (got or {}).get("lifecyclePolicyText")
        return json.loads(text) if text else None

    # --- update / delete ------------------------------------------------------------

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Repository, old_inputs), self.check(new_inputs)
        if old["image_tag_mutability"] != new["image_tag_mutability"]:
            call(f"set tag mutability of {id}", self.client.put_image_tag_mutability,
                 repositoryName=id, imageTagMutability=new["image_tag_mutability"])
        if old["scan_on_push"] != new["scan_on_push"]:
            call(f"set scan on push of {id}", self.client.put_image_scanning_configuration,
                 repositoryName=id, imageScanningConfiguration={"scanOnPush": new["scan_on_push"]})
        if old["lifecycle_policy"] != new["lifecycle_policy"]:
            self._put_lifecycle(id, new["lifecycle_policy"])
        repo = self._describe(id)
        if repo is None:
            raise ProviderError(f"repository {id!r} no longer exists")
        if old["tags"] != new["tags"]:
            arn = repo["repositoryArn"]
            TAGS.write(self.client, arn, stale_tags(self._all_tags(arn), new["tags"]), new["tags"], ctx)
        return self._outputs(repo)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        delete_explaining(
            f"delete repository {id}", self.client.delete_repository, "RepositoryNotEmptyException",
            f"repository {id!r} still holds images; set force_delete=True to delete them with it, "
            "or delete them first",
            repositoryName=id, force=bool(inputs.get("force_delete", False)))


RESOURCE_PROVIDERS: list[type[AwsResource]] = [RepositoryProvider]
