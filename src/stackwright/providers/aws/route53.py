"""Route 53 hosted zones and record sets.

Zones are created with ``CallerReference = ctx.token``, so a retried create finds the
zone its earlier attempt made. Records have no tags; their identity is
``zone_id/name/type`` and every write is an UPSERT. DNS names are kept without the
trailing dot and in lower case, which is how Route 53 answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    all_tags,
    call,
    call_or_none,
    error_code,
    is_ours,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import create_or_adopt, delete_explaining, reject_urn_tag, with_defaults
from stackwright.providers.common import wait_until
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["RESOURCE_PROVIDERS", "Record", "RecordProvider", "Zone", "ZoneProvider"]

CHANGE_BATCH = 100
"""Record deletions per ChangeResourceRecordSets call when force-destroying a zone."""


class Zone(Resource, type="aws:route53:Zone"):
    """A public hosted zone, or a private one attached to ``vpc_id``."""

    name: str
    comment: str = ""
    private: bool = False
    vpc_id: str | None = None
    force_destroy: bool = False
    tags: dict[str, str] = {}
    zone_id: Output[str]
    name_servers: Output[list[str]]


class Record(Resource, type="aws:route53:Record"):
    """A record set: ``records`` with a ``ttl``, or an ``alias`` {name, zone_id,
    evaluate_target_health} to another AWS resource."""

    zone_id: str
    name: str
    type: str
    ttl: int | None = 300
    records: list[str] = []
    alias: dict[str, Any] | None = None


def dns_name(name: str) -> str:
    """Route 53's answer form of a name: lower case, no trailing dot, ``*`` unescaped."""
    return name.replace("\\052", "*").rstrip(".").lower()


def bare_zone_id(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


# --- Zone ---------------------------------------------------------------------------


class ZoneProvider(AwsResource):
    """``aws:route53:Zone``; the id is the zone id without ``/hostedzone/``."""

    service = "route53"
    type_token = "aws:route53:Zone"
    resource_class = Zone
    replace_on = frozenset({"name", "private", "vpc_id"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Zone, inputs)
        values["name"] = dns_name(values["name"])
        if values["private"] != (values["vpc_id"] is not None):
            raise InputError("a private zone needs vpc_id, and vpc_id needs private=True", prop="vpc_id")
        reject_urn_tag(values["tags"])
        return values

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        zone_id = self._find_by_token(values["name"], ctx.token) or self._create_zone(ctx, values)
        self._put_tags(zone_id, {}, values["tags"], ctx)
        return Created(zone_id, self._outputs(zone_id))

    def _create_zone(self, ctx: OperationContext, values: Mapping[str, Any]) -> str:
        kwargs: dict[str, Any] = {
            "Name": values["name"], "CallerReference": ctx.token,
            "HostedZoneConfig": {"Comment": values["comment"], "PrivateZone": values["private"]},
        }
        if values["private"]:
            kwargs["VPC"] = {"VPCRegion": self.clients.region, "VPCId": values["vpc_id"]}
        return str(create_or_adopt(
            f"create zone {values['name']}",
            lambda: bare_zone_id(self.client.create_hosted_zone(**kwargs)["HostedZone"]["Id"]),
            frozenset({"HostedZoneAlreadyExists"}), lambda: self._find_by_token(values["name"], ctx.token)))

    def _zones_named(self, name: str) -> Iterator[dict[str, Any]]:
        """Every zone called ``name`` (there may be several, public and private)."""
        kwargs: dict[str, Any] = {"DNSName": name}
        while True:
            page = call(f"list zones named {name}", self.client.list_hosted_zones_by_name, **kwargs)
            for zone in page.get("HostedZones") or []:
                if dns_name(zone["Name"]) != name:
                    return  # the listing starts at ``name``; its zones come first
                yield zone
            if not page.get("IsTruncated"):
                return
            kwargs = {"DNSName": page["NextDNSName"], "HostedZoneId": page["NextHostedZoneId"]}

    def _find_by_token(self, name: str, token: str) -> str | None:
        for zone in self._zones_named(name):
            if zone.get("CallerReference") == token:
                return bare_zone_id(zone["Id"])
        return None

    def _find_ours(self, name: str, ctx: OperationContext) -> str | None:
        """A zone called ``name`` this state made for ``ctx.urn`` (names are not unique)."""
        for zone in self._zones_named(name):
            zone_id = bare_zone_id(zone["Id"])
            if is_ours(self._all_tags(zone_id), ctx):
                return zone_id
        return None

    def _all_tags(self, zone_id: str) -> dict[str, str]:
        got = call(f"list tags of zone {zone_id}", self.client.list_tags_for_resource,
                   ResourceType="hostedzone", ResourceId=zone_id)
        return all_tags((got.get("ResourceTagSet") or {}).get("Tags"))

    def _put_tags(self, zone_id: str, old: Mapping[str, str], new: Mapping[str, str],
                  owner: OperationContext) -> None:
        kwargs: dict[str, Any] = {"ResourceType": "hostedzone", "ResourceId": zone_id,
                                  "AddTags": tag_list(new, owner)}
        stale = [k for k in old if k not in new]
        if stale:
            kwargs["RemoveTagKeys"] = stale
        call(f"tag zone {zone_id}", self.client.change_tags_for_resource, **kwargs)

    def _get(self, zone_id: str) -> dict[str, Any] | None:
        got = call_or_none(f"get zone {zone_id}", self.client.get_hosted_zone, Id=zone_id)
        return dict(got) if got else None

    def _outputs(self, zone_id: str, got: Mapping[str, Any] | None = None) -> dict[str, Any]:
        got = got or self._get(zone_id) or {}
        servers = list((got.get("DelegationSet") or {}).get("NameServers") or [])
        return {"zone_id": zone_id, "name_servers": servers}

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        if id is None:
            name = dns_name(str(inputs.get("name", "")))
            id = self._find_by_token(name, ctx.token) or self._find_ours(name, ctx)
            if id is None:
                return None
        got = self._get(id)
        if got is None:
            return None
        zone, vpcs = got["HostedZone"], got.get("VPCs") or []
        private = bool((zone.get("Config") or {}).get("PrivateZone"))
        live = {
            "name": dns_name(zone["Name"]),
            "comment": (zone.get("Config") or {}).get("Comment") or "",
            "private": private,
            "vpc_id": vpcs[0]["VPCId"] if private and vpcs else None,
            "force_destroy": bool(inputs.get("force_destroy", False)),
            "tags": tag_dict(tag_list(self._all_tags(id))),
        }
        return ReadResult(id, live, self._outputs(id, got))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Zone, old_inputs), self.check(new_inputs)
        if old["comment"] != new["comment"]:
            call(f"set comment of zone {id}", self.client.update_hosted_zone_comment,
                 Id=id, Comment=new["comment"])
        if old["tags"] != new["tags"]:
            self._put_tags(id, old["tags"], new["tags"], ctx)
        return self._outputs(id)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        got = self._get(id)
        if got is None:
            return
        if inputs.get("force_destroy"):
            self._delete_records(ctx, id, dns_name(got["HostedZone"]["Name"]))
        delete_explaining(f"delete zone {id}", self.client.delete_hosted_zone, "HostedZoneNotEmpty",
                          f"zone {id} still holds records; set force_destroy=True to delete them with it, "
                          "or delete them first", Id=id)

    def _delete_records(self, ctx: OperationContext, zone_id: str, apex: str) -> None:
        """Every record set but the apex SOA and NS, which AWS deletes with the zone."""
        doomed = [r for r in _record_sets(self.client, zone_id)
                  if not (dns_name(r["Name"]) == apex and r["Type"] in ("SOA", "NS"))]
        for start in range(0, len(doomed), CHANGE_BATCH):
            batch = doomed[start:start + CHANGE_BATCH]
            ctx.log(f"deleting {len(batch)} records from zone {zone_id}")
            call(f"delete records of zone {zone_id}", self.client.change_resource_record_sets,
                 HostedZoneId=zone_id,
                 ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in batch]})


def _record_sets(client: Any, zone_id: str) -> list[dict[str, Any]]:
    sets: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id}
    while True:
        page = call(f"list records of zone {zone_id}", client.list_resource_record_sets, **kwargs)
        sets.extend(page.get("ResourceRecordSets") or [])
        if not page.get("IsTruncated"):
            return sets
        kwargs = {"HostedZoneId": zone_id, "StartRecordName": page["NextRecordName"],
                  "StartRecordType": page["NextRecordType"]}
        if page.get("NextRecordIdentifier"):
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]


# --- Record -------------------------------------------------------------------------


def _check_alias(alias: Any) -> dict[str, Any]:
    if not isinstance(alias, Mapping) or not {"name", "zone_id"} <= set(alias):
        raise InputError("alias needs 'name' and 'zone_id'", prop="alias",
                         hint="alias={'name': lb.dns_name, 'zone_id': lb.zone_id}")
    unknown = set(alias) - {"name", "zone_id", "evaluate_target_health"}
    if unknown:
        raise InputError(f"unknown alias keys {sorted(unknown)}", prop="alias")
    return {"name": dns_name(alias["name"]), "zone_id": alias["zone_id"],
            "evaluate_target_health": bool(alias.get("evaluate_target_health", False))}


def record_id(zone_id: str, name: str, type: str) -> str:
    return f"{zone_id}/{name}/{type}"


def parse_record_id(id: str) -> tuple[str, str, str]:
    """Names may hold ``/`` (classless reverse zones); zone ids and types never do."""
    zone_id, rest = id.split("/", 1)
    name, type = rest.rsplit("/", 1)
    return zone_id, name, type


class RecordProvider(AwsResource):
    """``aws:route53:Record``; the id is ``zone_id/name/type``."""

    service = "route53"
    type_token = "aws:route53:Record"
    resource_class = Record
    replace_on = frozenset({"zone_id", "name", "type"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Record, inputs)
        values["zone_id"] = bare_zone_id(values["zone_id"])
        values["name"] = dns_name(values["name"])
        values["type"] = str(values["type"]).upper()
        if values["alias"] is not None:
            if values["records"]:
                raise InputError("an alias record has no records", prop="records")
            values["alias"], values["ttl"] = _check_alias(values["alias"]), None
        elif not values["records"] or values["ttl"] is None:
            raise InputError("a record needs records and a ttl, or an alias", prop="records")
        else:
            values["records"] = sorted(values["records"])
        return values

    def _record_set(self, values: Mapping[str, Any]) -> dict[str, Any]:
        rrset: dict[str, Any] = {"Name": values["name"], "Type": values["type"]}
        alias = values["alias"]
        if alias is not None:
            rrset["AliasTarget"] = {"DNSName": alias["name"], "HostedZoneId": alias["zone_id"],
                                    "EvaluateTargetHealth": alias["evaluate_target_health"]}
        else:
            rrset["TTL"] = values["ttl"]
            rrset["ResourceRecords"] = [{"Value": v} for v in values["records"]]
        return rrset

    def _change(self, ctx: OperationContext, zone_id: str, action: str, rrset: Mapping[str, Any]) -> None:
        what = f"{action.lower()} record {rrset['Name']} {rrset['Type']}"
        got = call(what, self.client.change_resource_record_sets, HostedZoneId=zone_id,
                   ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": rrset}]})
        change_id = got["ChangeInfo"]["Id"]

        def in_sync() -> bool:
            status = call(f"get change {change_id}", self.client.get_change, Id=change_id)
            return bool(status["ChangeInfo"]["Status"] == "INSYNC")

        wait_until(ctx, f"{what} to be in sync", in_sync, interval=5.0)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        self._change(ctx, values["zone_id"], "UPSERT", self._record_set(values))
        return Created(record_id(values["zone_id"], values["name"], values["type"]), {})

    def _live(self, zone_id: str, name: str, type: str) -> dict[str, Any] | None:
        got = call_or_none(f"get record {name} {type}", self.client.list_resource_record_sets,
                           HostedZoneId=zone_id, StartRecordName=name, StartRecordType=type, MaxItems="1")
        sets = (got or {}).get("ResourceRecordSets") or []
        if sets and dns_name(sets[0]["Name"]) == name and sets[0]["Type"] == type:
            return dict(sets[0])
        return None

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        if id is None:
            values = self.check(inputs)
            id = record_id(values["zone_id"], values["name"], values["type"])
        zone_id, name, type = parse_record_id(id)
        rrset = self._live(zone_id, name, type)
        if rrset is None:
            return None
        target = rrset.get("AliasTarget")
        alias = None if target is None else {
            "name": dns_name(target["DNSName"]), "zone_id": target["HostedZoneId"],
            "evaluate_target_health": bool(target.get("EvaluateTargetHealth")),
        }
        live = {
            "zone_id": zone_id, "name": name, "type": type,
            "ttl": None if alias else rrset.get("TTL"),
            "records": sorted(r["Value"] for r in rrset.get("ResourceRecords") or []),
            "alias": alias,
        }
        return ReadResult(id, live, {})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        values = self.check(new_inputs)
        self._change(ctx, values["zone_id"], "UPSERT", self._record_set(values))
        return {}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """DELETE needs the exact live record set, so it is read first."""
        zone_id, name, type = parse_record_id(id)
        rrset = self._live(zone_id, name, type)
        if rrset is None:
            return
        try:
            self._change(ctx, zone_id, "DELETE", rrset)
        except ProviderError as err:
            gone = error_code(err.__cause__ or err) == "InvalidChangeBatch" and "not found" in err.message
            if not gone:
                raise


RESOURCE_PROVIDERS: list[type[AwsResource]] = [ZoneProvider, RecordProvider]
