"""How many AWS calls a refresh makes, on the local emulator.

A refresh reads every recorded object. Where an AWS API describes many objects in one
call (EC2 by id filters, ECR by names), a whole type costs one call; S3 buckets and
DynamoDB tables read only the settings the program declared. Calls are counted on the
wire (a proxy in front of the emulator, for the CLI) or with botocore's ``before-call``
event (for a handler), and drift must still show in every property that is read.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws.conftest import ctx, emulator_client, make_handler, unique
from aws_proxy import PassThroughProxy, serving, service_of
from stackwright.engine.events import EventSink
from stackwright.engine.refresh import read_all
from stackwright.engine.retry import RetryPolicy
from stackwright.providers.aws import AwsProvider, localcloud
from stackwright.providers.aws.base import AwsResource
from stackwright.providers.protocol import ReadResult, ResourceProvider
from stackwright.state.records import ResourceState, Snapshot

pytestmark = pytest.mark.aws

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform"
PLATFORM_RESOURCES = 42
CALLS_PER_RESOURCE = 1.2


def counting(handler: AwsResource) -> list[str]:
    """The names of the AWS operations ``handler`` calls from now on."""
    made: list[str] = []
    lock = threading.Lock()

    def record(model: Any, **_: Any) -> None:
        with lock:
            made.append(model.name)

    handler.client.meta.events.register("before-call", record)
    return made


def read_batched(handler: AwsResource, type_token: str, objects: Mapping[str, Mapping[str, Any]],
                 ) -> dict[str, ReadResult | None]:
    """Read every ``id: inputs`` as a refresh does: announced first, on several threads."""
    with handler.batch_reads(list(objects)), ThreadPoolExecutor(4) as pool:
        reads = {id: pool.submit(handler.read, ctx(type_token, id), id, inputs, {})
                 for id, inputs in objects.items()}
        return {id: read.result() for id, read in reads.items()}


@pytest.fixture
def vpc(boto: Any) -> Iterator[str]:
    ec2 = boto("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    yield vpc_id
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for group in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]:
        if group["GroupName"] != "default":
            ec2.delete_security_group(GroupId=group["GroupId"])
    ec2.delete_vpc(VpcId=vpc_id)


def make_subnets(handler: AwsResource, vpc: str, n: int) -> dict[str, dict[str, Any]]:
    made = {}
    for i in range(n):
        inputs = handler.check({"vpc_id": vpc, "cidr_block": f"10.40.{i}.0/24", "tags": {"n": str(i)}})
        made[handler.create(ctx("aws:ec2:Subnet", f"s{i}"), inputs).id] = inputs
    return made


# --- one call per type ------------------------------------------------------------------


def test_a_batch_of_subnets_costs_one_call_and_a_deleted_one_reads_as_gone(
        handlers: Callable[[str], AwsResource], boto: Any, vpc: str) -> None:
    h = handlers("aws:ec2:Subnet")
    subnets = make_subnets(h, vpc, 6)
    gone = sorted(subnets)[2]
    boto("ec2").delete_subnet(SubnetId=gone)
    changed = sorted(subnets)[4]
    boto("ec2").create_tags(Resources=[changed], Tags=[{"Key": "n", "Value": "edited"}])

    calls = counting(h)
    read = read_batched(h, "aws:ec2:Subnet", subnets)

    assert calls == ["DescribeSubnets"]  # one call for six subnets, one of them deleted
    assert read[gone] is None
    for id, inputs in subnets.items():
        live = read[id]
        if id in (gone, changed):
            continue
        assert live is not None and dict(live.inputs) == inputs
    changed_live = read[changed]
    assert changed_live is not None and changed_live.inputs["tags"] == {"n": "edited"}

    calls.clear()
    h.read(ctx("aws:ec2:Subnet"), changed, subnets[changed], {})  # after the refresh: its own call
    assert calls == ["DescribeSubnets"]


def test_security_group_rules_of_one_group_cost_one_call(
        handlers: Callable[[str], AwsResource], vpc: str) -> None:
    groups, rules = handlers("aws:ec2:SecurityGroup"), handlers("aws:ec2:SecurityGroupRule")
    group = groups.create(ctx("aws:ec2:SecurityGroup"), groups.check(
        {"name": unique("sg"), "vpc_id": vpc})).id
    declared = {}
    for port in (80, 443, 8080):
        inputs = rules.check({"type": "ingress", "security_group_id": group, "protocol": "tcp",
                              "from_port": port, "to_port": port, "cidr_blocks": ["10.0.0.0/8"]})
        declared[rules.create(ctx("aws:ec2:SecurityGroupRule", str(port)), inputs).id] = inputs
    revoked = next(id for id in declared if "_8080_" in id)
    rules.delete(ctx("aws:ec2:SecurityGroupRule"), revoked, declared[revoked], {})

    calls = counting(rules)
    read = read_batched(rules, "aws:ec2:SecurityGroupRule", declared)

    assert calls == ["DescribeSecurityGroups"]
    assert read[revoked] is None
    for id in set(declared) - {revoked}:
        live = read[id]
        assert live is not None and live.id == id and dict(live.inputs) == declared[id]


def test_repositories_cost_one_describe_and_a_deleted_one_falls_back_to_one_each(
        handlers: Callable[[str], AwsResource], boto: Any) -> None:
    h = handlers("aws:ecr:Repository")
    repos = {}
    for i in range(3):
        inputs = h.check({"name": unique("calls/repo"), "tags": {"n": str(i)}})
        repos[h.create(ctx("aws:ecr:Repository", f"r{i}"), inputs).id] = inputs

    calls = counting(h)
    read = read_batched(h, "aws:ecr:Repository", repos)
    assert sorted(calls) == ["DescribeRepositories"] + ["ListTagsForResource"] * 3
    assert all(read[id] is not None and dict(read[id].inputs) == repos[id] for id in repos)  # type: ignore[union-attr]

    gone = sorted(repos)[0]
    boto("ecr").delete_repository(repositoryName=gone)
    calls.clear()
    read = read_batched(h, "aws:ecr:Repository", repos)
    assert read[gone] is None and all(read[id] is not None for id in set(repos) - {gone})
    assert calls.count("DescribeRepositories") == 1 + 3  # the batch refused, then each on its own


def test_attachments_cost_one_call_per_role(handlers: Callable[[str], AwsResource], boto: Any) -> None:
    iam = boto("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = unique("calls-role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    h = handlers("aws:iam:RolePolicyAttachment")
    policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    attached = {}
    for arn in policies:
        inputs = h.check({"role": role, "policy_arn": arn})
        attached[h.create(ctx("aws:iam:RolePolicyAttachment", arn), inputs).id] = inputs
    detached = f"{role}/{policies[1]}"
    iam.detach_role_policy(RoleName=role, PolicyArn=policies[1])

    calls = counting(h)
    read = read_batched(h, "aws:iam:RolePolicyAttachment", attached)
    assert calls == ["ListAttachedRolePolicies"]
    assert read[detached] is None and read[f"{role}/{policies[0]}"] is not None
    iam.detach_role_policy(RoleName=role, PolicyArn=policies[0])
    iam.delete_role(RoleName=role)


# --- only what is declared --------------------------------------------------------------


def test_a_bucket_reads_only_the_settings_it_declares(handlers: Callable[[str], AwsResource], boto: Any) -> None:
    h = handlers("aws:s3:Bucket")
    plain, versioned = unique("calls-plain"), unique("calls-versioned")
    inputs = {plain: h.check({"bucket": plain, "tags": {"team": "web"}}),
              versioned: h.check({"bucket": versioned, "versioning": True, "tags": {"team": "web"}})}
    outputs = {name: h.create(ctx("aws:s3:Bucket", name), values).outputs for name, values in inputs.items()}
    s3 = boto("s3")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                                                       "Action": "s3:DeleteBucket", "Resource": f"arn:aws:s3:::{plain}"}]}
    s3.put_bucket_policy(Bucket=plain, Policy=json.dumps(policy))  # not declared: not looked at
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Suspended"})

    calls = counting(h)
    live = {name: h.read(ctx("aws:s3:Bucket", name), name, inputs[name], outputs[name]) for name in inputs}

    assert sorted(calls) == sorted(["GetBucketTagging", "GetPublicAccessBlock"] * 2 + ["GetBucketVersioning"])
    plain_live, versioned_live = live[plain], live[versioned]
    assert plain_live is not None and dict(plain_live.inputs) == inputs[plain]
    assert plain_live.outputs == outputs[plain]
    assert versioned_live is not None and versioned_live.inputs["versioning"] is False  # declared: drift seen
    imported = h.read(ctx("aws:s3:Bucket", plain), plain, {}, {})  # an import reads everything
    assert imported is not None and imported.inputs["policy"] == policy
    for name in inputs:
        s3.delete_bucket_policy(Bucket=name)
        h.delete(ctx("aws:s3:Bucket", name), name, inputs[name], outputs[name])
    assert h.read(ctx("aws:s3:Bucket", plain), plain, inputs[plain], outputs[plain]) is None


def test_a_table_reads_only_the_settings_it_declares(handlers: Callable[[str], AwsResource], boto: Any) -> None:
    h = handlers("aws:dynamodb:Table")
    name = unique("calls-table")
    inputs = h.check({"name": name, "hash_key": "id", "attributes": [{"name": "id", "type": "S"}]})
    created = h.create(ctx("aws:dynamodb:Table", name), inputs)
    boto("dynamodb").update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})

    calls = counting(h)
    live = h.read(ctx("aws:dynamodb:Table", name), name, inputs, created.outputs)
    assert calls == ["DescribeTable"]
    assert live is not None and dict(live.inputs) == inputs

    declared = dict(inputs, point_in_time_recovery=True, tags={"team": "data"})
    calls.clear()
    live = h.read(ctx("aws:dynamodb:Table", name), name, declared, created.outputs)
    assert sorted(calls) == ["DescribeContinuousBackups", "DescribeTable", "ListTagsOfResource"]
    assert live is not None and live.inputs["point_in_time_recovery"] is False  # declared: drift seen
    assert live.inputs["tags"] == {}
    h.delete(ctx("aws:dynamodb:Table", name), name, inputs, created.outputs)


# --- through the engine -----------------------------------------------------------------


class Lookup:
    def __init__(self, provider: AwsProvider) -> None:
        self.provider = provider

    def resource(self, type_token: str) -> ResourceProvider:
        return self.provider.resource(type_token)

    def versions(self) -> dict[str, str]:
        return {"aws": self.provider.version}


class Throttled:
    """HTTP status and body botocore turns into a throttling ClientError."""

    status_code = 400


def test_a_throttled_batch_call_is_retried_by_the_engine(aws_config: dict[str, Any], vpc: str) -> None:
    provider = AwsProvider()
    provider.configure(aws_config)
    assert provider.clients.built() == []  # each service's client is built on its first use
    h = provider.resource("aws:ec2:Subnet")
    subnets = make_subnets(h, vpc, 4)
    records = {f"dev::p::aws:ec2:Subnet::s{n}": ResourceState(
        urn=f"dev::p::aws:ec2:Subnet::s{n}", type="aws:ec2:Subnet", id=id, inputs=dict(inputs), outputs={})
        for n, (id, inputs) in enumerate(sorted(subnets.items()))}
    calls = counting(h)
    throttles = [1]

    def throttle(model: Any, **_: Any) -> Any:
        if model.name == "DescribeSubnets" and throttles:
            throttles.pop()
            return Throttled(), {"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."},
                                 "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    h.client.meta.events.register("before-call.ec2.DescribeSubnets", throttle)
    retries: list[str] = []

    class Sink(EventSink):
        def step_retrying(self, urn: str, action: str, attempt: int, delay: float, message: str) -> None:
            retries.append(message)

    snapshot = Snapshot("dev", "lineage", 1, records, {})
    result = asyncio.run(read_all(snapshot, Lookup(provider), 4, Sink(), RetryPolicy(base=0.01)))

    assert result.errors == {} and result.checked == 4
    assert len(retries) == 1 and "RequestLimitExceeded" in retries[0]
    assert throttles == []  # answered before the call reached the counter (more specific event)
    assert calls == ["DescribeSubnets"]  # the retry: one call for all four
    assert {d.kind for d in result.drift} <= {"outputs"}
    assert provider.clients.built() == ["ec2"]


# --- the platform, through the CLI -----------------------------------------------------------


class CountingProxy(PassThroughProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.lock = threading.Lock()
        self.calls: list[str] = []

    def observe(self, service: str, method: str, path: str, headers: Any, body: bytes,
                start: float, end: float) -> None:
        with self.lock:
            self.calls.append(service)

    def taken(self) -> list[str]:
        with self.lock:
            calls, self.calls = self.calls, []
        return calls


def cli(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
    env["STACKWRIGHT_USER"] = "tester"
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 2), f"stackwright {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def test_refresh_of_the_platform_makes_at_most_the_bound_of_calls_and_still_sees_drift(
        aws_endpoint: str, tmp_path: Path) -> None:
    root = tmp_path / "platform"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".stackwright", "__pycache__"))
    stack = "calls"  # names differ from other tests' platforms on this emulator
    with serving(CountingProxy(aws_endpoint)) as proxy:
        config = yaml.safe_load((root / "stacks" / "dev.yaml").read_text())
        config["config"]["aws"] = {"region": "us-east-1", "endpoint": proxy.url,
                                   "credentials": dict(localcloud.LOCAL_CREDENTIALS)}
        (root / "stacks" / f"{stack}.yaml").write_text(yaml.safe_dump(config))
        cli(root, "stack", "init", stack)
        cli(root, "up", "--yes", "-s", stack)
        try:
            proxy.taken()
            found = json.loads(cli(root, "refresh", "--json", "--exit-code", "-s", stack))
            calls = proxy.taken()
            assert found["drift"] == [] and found["checked"] == PLATFORM_RESOURCES, found
            assert len(calls) <= CALLS_PER_RESOURCE * PLATFORM_RESOURCES, sorted(calls)

            drift = make_platform_drift(aws_endpoint, stack)
            found = json.loads(cli(root, "refresh", "--json", "--exit-code", "-s", stack))
            assert len(proxy.taken()) <= CALLS_PER_RESOURCE * PLATFORM_RESOURCES
            seen = {(d["type"], d["urn"].split("::")[-1].split("$")[-1]):
                    (d["kind"], [x["path"] for x in d.get("diffs", [])]) for d in found["drift"]}
            assert seen == drift, found
        finally:
            cli(root, "destroy", "--yes", "--allow-destroy", "-s", stack)


def make_platform_drift(endpoint: str, stack: str) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """Changes behind Stackwright's back in batched and declared-only reads, and what
    refresh must report for each (by type and resource name)."""
    ec2, s3 = emulator_client(endpoint, "ec2"), emulator_client(endpoint, "s3")
    mine = [{"Name": "tag:env", "Values": [stack]}]
    subnets = sorted(ec2.describe_subnets(Filters=mine)["Subnets"], key=lambda s: s["CidrBlock"])
    ec2.create_tags(Resources=[subnets[0]["SubnetId"]], Tags=[{"Key": "team", "Value": "someone-else"}])
    tables = ec2.describe_route_tables(Filters=mine)["RouteTables"]
    association = next(a for t in tables for a in t.get("Associations", [])
                       if a.get("SubnetId") == subnets[-1]["SubnetId"])
    ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    s3.put_bucket_versioning(Bucket=f"platform-{stack}-uploads", VersioningConfiguration={"Status": "Suspended"})
    subnet_name = next(t["Value"] for t in subnets[0]["Tags"] if t["Key"] == "Name").split("-", 1)[1]
    association_name = next(t["Value"] for t in subnets[-1]["Tags"] if t["Key"] == "Name").split("-", 1)[1]
    return {("aws:ec2:Subnet", subnet_name): ("changed", ["tags.team"]),
            ("aws:ec2:RouteTableAssociation", association_name): ("deleted", []),
            ("aws:s3:Bucket", "uploads"): ("changed", ["versioning"])}
