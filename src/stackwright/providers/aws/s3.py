"""S3 buckets.

A bucket's settings live behind separate S3 sub-resources (versioning, encryption,
public access block, lifecycle, policy, tagging); each one is applied by its own call,
and only the ones whose input changed are touched on update. Settings a brand-new
bucket already has (no versioning, no policy...) are skipped on create.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    all_tags,
    call,
    call_or_none,
    claim,
    error_code,
    is_ours,
    partition,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import (
    create_or_adopt,
    delete_explaining,
    is_declared,
    reject_urn_tag,
    with_defaults,
)
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["Bucket", "BucketProvider", "RESOURCE_PROVIDERS"]

ENCRYPTIONS = (None, "AES256", "aws:kms")
RULE_DEFAULTS: dict[str, Any] = {
    "prefix": "", "expiration_days": None, "noncurrent_version_expiration_days": None,
    "enabled": True,
}
FRESH_BUCKET: dict[str, Any] = {
    "versioning": False, "encryption": None, "kms_key_id": None, "lifecycle_rules": [],
    "policy": None,
}
"""What a bucket has right after CreateBucket; create skips settings equal to these.
Tags and the public access block are always applied (AWS's default for the latter
has changed over time)."""


def _declared(declared: Mapping[str, Any], *keys: str) -> bool:
    return any(is_declared(declared, k, FRESH_BUCKET[k]) for k in keys)


class Bucket(Resource, type="aws:s3:Bucket"):
    """An S3 bucket with versioning, default encryption, lifecycle and policy."""

    bucket: str
    versioning: bool = False
    encryption: str | None = None
    kms_key_id: str | None = None
    block_public_access: bool = True
    lifecycle_rules: list[dict[str, Any]] = []
    policy: dict[str, Any] | None = None
    force_destroy: bool = False
    tags: dict[str, str] = {}
    arn: Output[str]
    bucket_domain_name: Output[str]
    region: Output[str]


def _check_rule(rule: Any) -> dict[str, Any]:
    """One lifecycle rule with every key present; unknown keys are a user mistake."""
    if not isinstance(rule, Mapping) or not isinstance(rule.get("id"), str) or not rule["id"]:
        raise InputError("each lifecycle rule needs a non-empty string 'id'", prop="lifecycle_rules")
    unknown = set(rule) - set(RULE_DEFAULTS) - {"id"}
    if unknown:
        raise InputError(f"unknown lifecycle rule keys {sorted(unknown)}", prop="lifecycle_rules",
                         hint=f"known keys: id, {', '.join(RULE_DEFAULTS)}")
    full = {"id": rule["id"], **RULE_DEFAULTS, **dict(rule)}
    if full["expiration_days"] is None and full["noncurrent_version_expiration_days"] is None:
        raise InputError(f"lifecycle rule {rule['id']!r} has no action", prop="lifecycle_rules",
                         hint="set expiration_days or noncurrent_version_expiration_days")
    return full


def _rule_to_aws(rule: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": rule["id"], "Filter": {"Prefix": rule["prefix"]},
        "Status": "Enabled" if rule["enabled"] else "Disabled",
    }
    if rule["expiration_days"] is not None:
        out["Expiration"] = {"Days": rule["expiration_days"]}
    if rule["noncurrent_version_expiration_days"] is not None:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["noncurrent_version_expiration_days"]}
    return out


def _rule_from_aws(rule: Mapping[str, Any]) -> dict[str, Any]:
    filt = rule.get("Filter") or {}
    prefix = filt.get("Prefix", filt.get("And", {}).get("Prefix", rule.get("Prefix", "")))
    return {
        "id": rule.get("ID", ""), "prefix": prefix or "",
        "expiration_days": (rule.get("Expiration") or {}).get("Days"),
        "noncurrent_version_expiration_days":
            (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
        "enabled": rule.get("Status") == "Enabled",
    }


class BucketProvider(AwsResource):
    """``aws:s3:Bucket``; the id is the bucket name."""

    service = "s3"
    type_token = "aws:s3:Bucket"
    resource_class = Bucket
    replace_on = frozenset({"bucket"})
    stateful = True

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Bucket, inputs)
        if values["encryption"] not in ENCRYPTIONS:
            raise InputError(f"encryption must be 'AES256', 'aws:kms' or None, got {values['encryption']!r}",
                             prop="encryption")
        if values["kms_key_id"] is not None and values["encryption"] != "aws:kms":
            raise InputError("kms_key_id needs encryption='aws:kms'", prop="kms_key_id")
        rules = [_check_rule(r) for r in values["lifecycle_rules"]]
        values["lifecycle_rules"] = sorted(rules, key=lambda r: str(r["id"]))
        reject_urn_tag(values["tags"])
        return values

    # --- create ---------------------------------------------------------------------

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        bucket = values["bucket"]
        self._claim(ctx, bucket)
        self._apply(bucket, ctx, FRESH_BUCKET, values)
        return Created(bucket, self._outputs(bucket))

    def _claim(self, ctx: OperationContext, bucket: str) -> None:
        """Create the bucket, or take over the one a retried create already made."""
        if self._exists(bucket):
            tags = self._all_tags(bucket)
            if tags or not self._is_ours(ctx, bucket, tags):
                claim("bucket", bucket, tags, ctx)
            return
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.clients.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.clients.region}
        create_or_adopt(f"create bucket {bucket}", lambda: self.client.create_bucket(**kwargs),
                        frozenset({"BucketAlreadyOwnedByYou"}),
                        lambda: self._is_ours(ctx, bucket) or None)  # a retried create's bucket

    def _exists(self, bucket: str) -> bool:
        return call_or_none(f"head bucket {bucket}", self.client.head_bucket, Bucket=bucket) is not None

    def _is_ours(self, ctx: OperationContext, bucket: str, tags: Mapping[str, str] | None = None) -> bool:
        """Tagged with our URN, or untagged and empty (a create interrupted before tagging)."""
        tags = self._all_tags(bucket) if tags is None else tags
        if tags:
            return is_ours(tags, ctx)
        listing = call(f"list bucket {bucket}", self.client.list_object_versions, Bucket=bucket, MaxKeys=1)
        return not listing.get("Versions") and not listing.get("DeleteMarkers")

    # --- settings -------------------------------------------------------------------

    def _apply(self, bucket: str, owner: OperationContext, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """Apply every setting group whose inputs differ between ``old`` and ``new``."""
        setters: list[tuple[tuple[str, ...], Callable[[], None]]] = [
            (("tags",), lambda: self._put_tags(bucket, new["tags"], owner)),
            (("block_public_access",), lambda: self._put_public_access(bucket, new["block_public_access"])),
            (("versioning",), lambda: self._put_versioning(bucket, new["versioning"])),
            (("encryption", "kms_key_id"), lambda: self._put_encryption(bucket, new["encryption"], new["kms_key_id"])),
            (("lifecycle_rules",), lambda: self._put_lifecycle(bucket, new["lifecycle_rules"])),
            (("policy",), lambda: self._put_policy(bucket, new["policy"])),
        ]
        for keys, setter in setters:
            if any(k not in old or old[k] != new[k] for k in keys):
                setter()

    def _put_tags(self, bucket: str, tags: Mapping[str, str], owner: OperationContext) -> None:
        """Replaces the whole tag set: the tags marking the bucket ``owner``'s go with it."""
        call(f"tag bucket {bucket}", self.client.put_bucket_tagging, Bucket=bucket,
             Tagging={"TagSet": tag_list(tags, owner)})

    def _put_public_access(self, bucket: str, block: bool) -> None:
        if block:
            flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            call(f"block public access to {bucket}", self.client.put_public_access_block, Bucket=bucket,
                 PublicAccessBlockConfiguration={f: True for f in flags})
        else:
            call_or_none(f"allow public access to {bucket}", self.client.delete_public_access_block,
                         Bucket=bucket)

    def _put_versioning(self, bucket: str, enabled: bool) -> None:
        status = "Enabled" if enabled else "Suspended"
        call(f"set versioning of {bucket}", self.client.put_bucket_versioning, Bucket=bucket,
             VersioningConfiguration={"Status": status})

    def _put_encryption(self, bucket: str, algorithm: str | None, kms_key_id: str | None) -> None:
        if algorithm is None:
            call_or_none(f"reset encryption of {bucket}", self.client.delete_bucket_encryption, Bucket=bucket)
            return
        default: dict[str, str] = {"SSEAlgorithm": algorithm}
        if kms_key_id:
            default["KMSMasterKeyID"] = kms_key_id
        call(f"set encryption of {bucket}", self.client.put_bucket_encryption, Bucket=bucket,
             ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]})

    def _put_lifecycle(self, bucket: str, rules: list[dict[str, Any]]) -> None:
        if not rules:
            call_or_none(f"remove lifecycle of {bucket}", self.client.delete_bucket_lifecycle, Bucket=bucket)
            return
        call(f"set lifecycle of {bucket}", self.client.put_bucket_lifecycle_configuration, Bucket=bucket,
             LifecycleConfiguration={"Rules": [_rule_to_aws(r) for r in rules]})

    def _put_policy(self, bucket: str, policy: Mapping[str, Any] | None) -> None:
        if policy is None:
            call_or_none(f"remove policy of {bucket}", self.client.delete_bucket_policy, Bucket=bucket)
            return
        call(f"set policy of {bucket}", self.client.put_bucket_policy, Bucket=bucket, Policy=json.dumps(policy))

    # --- read -----------------------------------------------------------------------

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        bucket = id or inputs.get("bucket")
        tags = self._tags_if_exists(bucket) if bucket else None
        if not bucket or tags is None:
            return None
        if id is None and not self._is_ours(ctx, bucket, tags):
            return None
        live = self._live_inputs(bucket, inputs, tags)
        return ReadResult(bucket, live, self._outputs(bucket, outputs.get("region")))

    def _live_inputs(self, bucket: str, declared: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
        """The bucket's settings. Those the program leaves as a new bucket has them were
        never applied, so they are not read (one call each): they read as declared."""
        live = copy.deepcopy({**FRESH_BUCKET, **{k: declared[k] for k in FRESH_BUCKET if k in declared}})
        if _declared(declared, "encryption", "kms_key_id"):
            live["encryption"], live["kms_key_id"] = self._encryption(bucket)
            if live["encryption"] == "AES256" and declared.get("encryption") is None:
                live["encryption"] = None  # AWS's own default encryption: what "None" declares
        readers: dict[str, Callable[[str], Any]] = {
            "versioning": self._versioning, "lifecycle_rules": self._lifecycle, "policy": self._policy}
        for key, reader in readers.items():
            if _declared(declared, key):
                live[key] = reader(bucket)
        return {
            "bucket": bucket, **live,
            "block_public_access": self._public_access_blocked(bucket),
            "force_destroy": bool(declared.get("force_destroy", False)),
            "tags": tag_dict(tag_list(tags)),
        }

    def _tags_if_exists(self, bucket: str) -> dict[str, str] | None:
        """Every tag including ours, ``None`` when the bucket does not exist: this one
        call tells both."""
        try:
            got = call(f"get tags of {bucket}", self.client.get_bucket_tagging, Bucket=bucket)
        except ProviderError as err:
            code = error_code(err.__cause__ or err)
            if code in ("NoSuchBucket", "404"):
                return None
            if code == "NoSuchTagSet":
                return {}
            raise
        return all_tags(got.get("TagSet"))

    def _versioning(self, bucket: str) -> bool:
        got = call(f"get versioning of {bucket}", self.client.get_bucket_versioning, Bucket=bucket)
        return bool(got.get("Status") == "Enabled")

    def _encryption(self, bucket: str) -> tuple[str | None, str | None]:
        got = call_or_none(f"get encryption of {bucket}", self.client.get_bucket_encryption, Bucket=bucket)
        rules = ((got or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        if not rules:
            return None, None
        default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
        return default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")

    def _public_access_blocked(self, bucket: str) -> bool:
        got = call_or_none(f"get public access block of {bucket}", self.client.get_public_access_block,
                           Bucket=bucket)
        flags = (got or {}).get("PublicAccessBlockConfiguration") or {}
        return len(flags) == 4 and all(flags.values())

    def _lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        got = call_or_none(f"get lifecycle of {bucket}", self.client.get_bucket_lifecycle_configuration,
                           Bucket=bucket)
        rules = [_rule_from_aws(r) for r in (got or {}).get("Rules") or []]
        return sorted(rules, key=lambda r: str(r["id"]))

    def _policy(self, bucket: str) -> dict[str, Any] | None:
        got = call_or_none(f"get policy of {bucket}", self.client.get_bucket_policy, Bucket=bucket)
        text = (got or {}).get("Policy")
        return json.loads(text) if text else None

    def _all_tags(self, bucket: str) -> dict[str, str]:
        """Every tag including ours; a bucket without tags answers NoSuchTagSet."""
        got = call_or_none(f"get tags of {bucket}", self.client.get_bucket_tagging, Bucket=bucket)
        return all_tags((got or {}).get("TagSet"))

    def _outputs(self, bucket: str, region: str | None = None) -> dict[str, Any]:
        """``region`` when it is known (a bucket never moves), else asked."""
        if not region:
            got = call(f"get location of {bucket}", self.client.get_bucket_location, Bucket=bucket)
            region = got.get("LocationConstraint") or "us-east-1"
            region = "eu-west-1" if region == "EU" else region
        return {
            "arn": f"arn:{partition(region)}:s3:::{bucket}",
            "bucket_domain_name": f"{bucket}.s3.amazonaws.com",
            "region": region,
        }

    # --- update / delete ------------------------------------------------------------

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Bucket, old_inputs), self.check(new_inputs)
        self._apply(id, ctx, old, new)
        return self._outputs(id)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        if not self._exists(id):
            return
        if inputs.get("force_destroy"):
            self._empty(ctx, id)
        delete_explaining(f"delete bucket {id}", self.client.delete_bucket, "BucketNotEmpty",
                          f"bucket {id!r} is not empty; set force_destroy=True to delete its objects "
                          "(every version) with it, or empty it first", Bucket=id)

    def _empty(self, ctx: OperationContext, bucket: str) -> None:
        """Delete every object version and delete marker, one listing page at a time."""
        while True:
            page = call(f"list versions in {bucket}", self.client.list_object_versions,
                        Bucket=bucket, MaxKeys=1000)
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])]
            if not objects:
                return
            ctx.log(f"deleting {len(objects)} object versions from {bucket}")
            done = call(f"delete objects in {bucket}", self.client.delete_objects, Bucket=bucket,
                        Delete={"Objects": objects, "Quiet": True})
            errors = done.get("Errors") or []
            if errors:
                first = errors[0]
                raise ProviderError(f"emptying bucket {bucket!r}: {first.get('Key')}: "
                                    f"{first.get('Code')}: {first.get('Message')}",
                                    retryable=first.get("Code") in {"SlowDown", "InternalError"})


RESOURCE_PROVIDERS: list[type[AwsResource]] = [BucketProvider]
