"""DynamoDB tables.

The key schema (and so the attribute definitions, which only describe key attributes
here) cannot change in place; capacity, point-in-time recovery, TTL and tags can.
A replacement that keeps the table name must delete the old table first, since two
tables cannot share a name.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import (
    ArnTags,
    create_or_adopt,
    is_declared,
    reject_urn_tag,
    stale_tags,
    with_defaults,
)
from stackwright.providers.common import wait_until
from stackwright.providers.protocol import Created, DiffResult, OperationContext, ReadResult

__all__ = ["RESOURCE_PROVIDERS", "Table", "TableProvider"]

BILLING_MODES = ("PAY_PER_REQUEST", "PROVISIONED")
ATTRIBUTE_TYPES = ("S", "N", "B")
TAGS = ArnTags()


class Table(Resource, type="aws:dynamodb:Table"):
    """A DynamoDB table keyed by ``hash_key`` (and ``range_key``)."""

    name: str
    hash_key: str
    range_key: str | None = None
    attributes: list[dict[str, str]] = []
    billing_mode: str = "PAY_PER_REQUEST"
    read_capacity: int | None = None
    write_capacity: int | None = None
    point_in_time_recovery: bool = False
    ttl_attribute: str | None = None
    tags: dict[str, str] = {}
    arn: Output[str]
    stream_arn: Output[str | None]


def _check_attributes(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """Attribute definitions must name exactly the key attributes (AWS rejects extras)."""
    attrs: list[dict[str, str]] = []
    for attr in values["attributes"]:
        if not isinstance(attr, Mapping) or set(attr) != {"name", "type"}:
            raise InputError("each attribute is {'name': ..., 'type': 'S' | 'N' | 'B'}", prop="attributes")
        if attr["type"] not in ATTRIBUTE_TYPES:
            raise InputError(f"attribute {attr['name']!r} has type {attr['type']!r}", prop="attributes",
                             hint="types are 'S' (string), 'N' (number) or 'B' (binary)")
        attrs.append({"name": attr["name"], "type": attr["type"]})
    keys = {values["hash_key"]} | ({values["range_key"]} if values["range_key"] else set())
    names = {a["name"] for a in attrs}
    if names != keys or len(names) != len(attrs):
        raise InputError(
            f"attributes must define exactly the key attributes {sorted(keys)}, got {sorted(names)}",
            prop="attributes", hint="DynamoDB only stores definitions of attributes used in keys")
    return sorted(attrs, key=lambda a: a["name"])


def _check_capacity(values: dict[str, Any]) -> None:
    if values["billing_mode"] not in BILLING_MODES:
        raise InputError(f"billing_mode must be one of {BILLING_MODES}", prop="billing_mode")
    provisioned = values["billing_mode"] == "PROVISIONED"
    for key in ("read_capacity", "write_capacity"):
        if provisioned and not values[key]:
            raise InputError(f"{key} is required with billing_mode='PROVISIONED'", prop=key)
        if not provisioned and values[key] is not None:
            raise InputError(f"{key} only applies to billing_mode='PROVISIONED'", prop=key,
                             hint="remove it, or set billing_mode='PROVISIONED'")


class TableProvider(AwsResource):
    """``aws:dynamodb:Table``; the id is the table name."""

    service = "dynamodb"
    type_token = "aws:dynamodb:Table"
    resource_class = Table
    replace_on = frozenset({"name", "hash_key", "range_key", "attributes"})
    stateful = True

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Table, inputs)
        values["attributes"] = _check_attributes(values)
        _check_capacity(values)
        reject_urn_tag(values["tags"])
        return values

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        result = super().diff(old_inputs, old_outputs, new_inputs)
        same_name = old_inputs.get("name") == new_inputs.get("name")
        if result.replaces and same_name:
            return DiffResult(result.changed, result.replaces, delete_before_replace=True)
        return result

    # --- create ---------------------------------------------------------------------

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        name = values["name"]
        table = self._describe(name) or self._create_table(ctx, values)
        claim("table", name, self._all_tags(table["TableArn"]), ctx)
        self._wait_active(ctx, name)
        if values["point_in_time_recovery"]:
            self._put_pitr(ctx, name, True)
        if values["ttl_attribute"]:
            self._put_ttl(name, values["ttl_attribute"], True)
        return Created(name, self._outputs(self._describe(name) or table))

    def _create_table(self, ctx: OperationContext, values: Mapping[str, Any]) -> dict[str, Any]:
        name = values["name"]
        keys = [{"AttributeName": values["hash_key"], "KeyType": "HASH"}]
        if values["range_key"]:
            keys.append({"AttributeName": values["range_key"], "KeyType": "RANGE"})
        kwargs: dict[str, Any] = {
            "TableName": name, "KeySchema": keys, "BillingMode": values["billing_mode"],
            "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]}
                                     for a in values["attributes"]],
            "Tags": tag_list(values["tags"], ctx),
        }
        if values["billing_mode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = self._throughput(values)
        return dict(create_or_adopt(  # when an earlier attempt made it, the caller checks whose it is
            f"create table {name}", lambda: self.client.create_table(**kwargs)["TableDescription"],
            frozenset({"ResourceInUseException"}), lambda: self._describe(name)))

    @staticmethod
    def _throughput(values: Mapping[str, Any]) -> dict[str, int]:
        return {"ReadCapacityUnits": values["read_capacity"], "WriteCapacityUnits": values["write_capacity"]}

    def _describe(self, name: str) -> dict[str, Any] | None:
        got = call_or_none(f"describe table {name}", self.client.describe_table, TableName=name)
        return dict(got["Table"]) if got else None

    def _wait_active(self, ctx: OperationContext, name: str) -> None:
        def active() -> bool:
            table = self._describe(name)
            if table is None:
                raise ProviderError(f"table {name!r} disappeared while waiting for it", retryable=True)
            return table.get("TableStatus") == "ACTIVE"

        wait_until(ctx, f"table {name} to become ACTIVE", active)

    def _all_tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = call(f"list tags of {arn}", self.client.list_tags_of_resource, **kwargs)
            tags.update(all_tags(page.get("Tags")))
            if not page.get("NextToken"):
                return tags
            kwargs["NextToken"] = page["NextToken"]

    def _outputs(self, table: Mapping[str, Any]) -> dict[str, Any]:
        return {"arn": table["TableArn"], "stream_arn": table.get("LatestStreamArn")}

    # --- settings -------------------------------------------------------------------

    def _put_pitr(self, ctx: OperationContext, name: str, enabled: bool) -> None:
        """Right after creation AWS may answer ContinuousBackupsUnavailable; wait it out."""

        def attempt() -> bool:
            try:
                call(f"set point-in-time recovery of {name}", self.client.update_continuous_backups,
                     TableName=name,
                     PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled})
            except ProviderError as err:
                if error_code(err.__cause__ or err) == "ContinuousBackupsUnavailableException":
                    return False
                raise
            return True

        wait_until(ctx, f"continuous backups of {name}", attempt, timeout=600)

    def _put_ttl(self, name: str, attribute: str, enabled: bool) -> None:
        call(f"set TTL of {name}", self.client.update_time_to_live, TableName=name,
             TimeToLiveSpecification={"Enabled": enabled, "AttributeName": attribute})

    # --- read -----------------------------------------------------------------------

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        name = id or inputs.get("name")
        table = self._describe(name) if name else None
        if table is None or table.get("TableStatus") == "DELETING":
            return None
        if id is None or is_declared(inputs, "tags", {}):
            tags = self._all_tags(table["TableArn"])
        else:
            tags = {}
        if id is None and not is_ours(tags, ctx):
            return None
        return ReadResult(table["TableName"], self._live_inputs(table, inputs, tags), self._outputs(table))

    def _live_inputs(self, table: Mapping[str, Any], declared: Mapping[str, Any],
                     tags: Mapping[str, str]) -> dict[str, Any]:
        """The table's settings. Those the program leaves at their defaults were never
        applied, so they are not read (one call each): they read as declared."""
        name = table["TableName"]
        keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
        mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        throughput = table.get("ProvisionedThroughput") or {}
        provisioned = mode == "PROVISIONED"
        return {
            "name": name,
            "hash_key": keys["HASH"],
            "range_key": keys.get("RANGE"),
            "attributes": sorted(({"name": a["AttributeName"], "type": a["AttributeType"]}
                                  for a in table["AttributeDefinitions"]), key=lambda a: a["name"]),
            "billing_mode": mode,
            "read_capacity": throughput.get("ReadCapacityUnits") if provisioned else None,
            "write_capacity": throughput.get("WriteCapacityUnits") if provisioned else None,
            "point_in_time_recovery":
                self._pitr(name) if is_declared(declared, "point_in_time_recovery", False) else False,
            "ttl_attribute": self._ttl(name) if is_declared(declared, "ttl_attribute", None) else None,
            "tags": tag_dict(tag_list(tags)),
        }

    def _pitr(self, name: str) -> bool:
        got = call(f"describe backups of {name}", self.client.describe_continuous_backups, TableName=name)
        pitr = got["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription") or {}
        return pitr.get("PointInTimeRecoveryStatus") == "ENABLED"

    def _ttl(self, name: str) -> str | None:
        got = call(f"describe TTL of {name}", self.client.describe_time_to_live, TableName=name)
        ttl = got.get("TimeToLiveDescription") or {}
        return ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None

    # --- update / delete ------------------------------------------------------------

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Table, old_inputs), self.check(new_inputs)
        if any(old[k] != new[k] for k in ("billing_mode", "read_capacity", "write_capacity")):
            self._put_capacity(ctx, id, new)
        if old["point_in_time_recovery"] != new["point_in_time_recovery"]:
            self._put_pitr(ctx, id, new["point_in_time_recovery"])
        if old["ttl_attribute"] != new["ttl_attribute"]:
            self._change_ttl(id, old["ttl_attribute"], new["ttl_attribute"])
        table = self._describe(id)
        if table is None:
            raise ProviderError(f"table {id!r} no longer exists")
        if old["tags"] != new["tags"]:
            arn = table["TableArn"]
            TAGS.write(self.client, arn, stale_tags(self._all_tags(arn), new["tags"]), new["tags"], ctx)
        return self._outputs(table)

    def _put_capacity(self, ctx: OperationContext, name: str, new: Mapping[str, Any]) -> None:
        kwargs: dict[str, Any] = {"TableName": name, "BillingMode": new["billing_mode"]}
        if new["billing_mode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = self._throughput(new)
        call(f"update capacity of {name}", self.client.update_table, **kwargs)
        self._wait_active(ctx, name)

    def _change_ttl(self, name: str, old: str | None, new: str | None) -> None:
        if old:
            self._put_ttl(name, old, False)
        if new:
            self._put_ttl(name, new, True)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        if call_or_none(f"delete table {id}", self.client.delete_table, TableName=id) is None:
            return
        wait_until(ctx, f"table {id} to be deleted", lambda: self._describe(id) is None)


RESOURCE_PROVIDERS: list[type[AwsResource]] = [TableProvider]
