"""`up` against an emulator that throttles: retries must converge on exactly one object each.

A small HTTP proxy sits in front of the emulator and answers a seeded random 10% of
calls with the throttling error each protocol uses (JSON, query/XML, EC2, REST-XML,
S3's 503 SlowDown). The engine retries a whole provider operation, so a throttle in the
middle of a create (after the object was made, before the create returned) re-runs it:
that is where a non-idempotent create makes a duplicate. Each distinct request (method,
path, query, body) is throttled at most once, so every operation can finish within the
CLI's default 8 attempts while faults still land at every step of every create.

What was made is checked with boto3 directly against the emulator, never through
Stackwright's state: exactly one object per URN, exactly the declared buckets, roles,
topics, tables and policies, and nothing left after `destroy`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws.conftest import emulator_client
from aws_proxy import PassThroughProxy, Reply, serving, service_of
from stackwright.providers.aws.base import URN_TAG

pytestmark = pytest.mark.aws

def throttling_response(method: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The error AWS answers a throttled call with, in the call's protocol."""
    service = service_of(headers)
    request_id = uuid.uuid4().hex
    if service == "s3":  # REST-XML, S3 flavour
        xml = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
               b"<Message>Please reduce your request rate.</Message></Error>")
        return 503, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, b"" if method == "HEAD" else xml
    if headers.get("X-Amz-Target"):  # JSON 1.0/1.1 (DynamoDB, ECR, CloudWatch's JSON mode)
        out = {"Content-Type": headers.get("Content-Type", "application/x-amz-json-1.0"),
               "x-amzn-RequestId": request_id}
        if headers.get("x-amzn-query-mode"):  # a former query service (CloudWatch)
            out["x-amzn-query-error"] = "Throttling;Sender"
        return 400, out, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):  # query and EC2
        if service == "ec2":
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
                   "<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
                   f"</Error></Errors><RequestID>{request_id}</RequestID></Response>")
        else:  # IAM, SNS, STS, CloudFormation
            xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                   f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return 400, {"Content-Type": "text/xml"}, xml.encode()
    if service == "route53":  # REST-XML
        xml = ("<?xml version=\"1.0\"?><ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
               "<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
               f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return 400, {"Content-Type": "text/xml"}, xml.encode()
    # REST-JSON (EKS)
    return 400, {"Content-Type": "application/json", "X-Amzn-ErrorType": "ThrottlingException",
                 "x-amzn-RequestId": request_id}, json.dumps({"message": "Rate exceeded"}).encode()


class ThrottlingProxy(PassThroughProxy):
    """Answers a seeded random ``fraction`` of calls with a throttling error instead of
    forwarding them (each distinct request at most ``max_per_request`` times)."""

    def __init__(self, upstream: str, fraction: float, seed: int, max_per_request: int = 1) -> None:
        super().__init__(upstream)
        self.fraction = fraction
        self.max_per_request = max_per_request
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._times_throttled: Counter[str] = Counter()

    def intercept(self, service: str, method: str, path: str, headers: Any, body: bytes) -> Reply | None:
        """A request is told apart by service, X-Amz-Target (JSON calls' path and body say
        too little), method, path and body."""
        operation = headers.get("X-Amz-Target", "")
        key = hashlib.sha256(b"\0".join([service.encode(), operation.encode(), method.encode(),
                                          path.encode(), body])).hexdigest()
        with self.lock:
            self.calls[service] += 1
            if self._times_throttled[key] >= self.max_per_request or self.rng.random() >= self.fraction:
                return None
            self._times_throttled[key] += 1
            self.throttled[service] += 1
        return throttling_response(method, headers, body)


FRACTION = 0.1
"""Of the calls, how many are throttled. The engine retries a whole operation (8 attempts
by default), and a bucket's create with its retry path makes 10 to 14 distinct calls: at
10% the chance that 8 of them are throttled is under 2e-5 per bucket. At 20% it is up to
2e-3 per bucket, 2% per run of ten buckets: one run of the suite failed so (bucket 9's
lifecycle, throttled on all 8 attempts)."""


@pytest.fixture
def proxy(aws_endpoint: str) -> Iterator[ThrottlingProxy]:
    with serving(ThrottlingProxy(aws_endpoint, fraction=FRACTION, seed=20261125)) as server:
        yield server


# --- the program ------------------------------------------------------------------------

BUCKETS = 10
ROLES = 4
TOPICS = 4
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")

PROGRAM = """\
import stackwright as sw
from stackwright.providers.aws import dynamodb, ec2, iam, s3, sns

prefix = sw.Config().require_str("prefix")
tags = {"suite": "throttling"}
trust = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

vpc = ec2.Vpc("vpc", cidr_block="10.77.0.0/16", enable_dns_hostnames=True, tags=tags)
igw = ec2.InternetGateway("igw", vpc_id=vpc.id, tags=tags)
table_ = ec2.RouteTable("public", vpc_id=vpc.id, tags=tags,
                        routes=[{"destination_cidr_block": "0.0.0.0/0", "gateway_id": igw.id}])
for i, zone in enumerate(%(zones)r):
    subnet = ec2.Subnet(f"subnet-{zone}", vpc_id=vpc.id, cidr_block=f"10.77.{i}.0/24",
                        availability_zone=zone, map_public_ip_on_launch=True, tags=tags)
    ec2.RouteTableAssociation(f"subnet-{zone}", route_table_id=table_.id, subnet_id=subnet.id)
web = ec2.SecurityGroup("web", name=f"{prefix}-web", vpc_id=vpc.id, tags=tags,
                        ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443,
                                  "cidr_blocks": ["0.0.0.0/0"]}])

for i in range(%(buckets)d):
    s3.Bucket(f"bucket-{i}", bucket=f"{prefix}-bucket-{i}", versioning=True, encryption="AES256",
              tags=tags, lifecycle_rules=[{"id": "old", "noncurrent_version_expiration_days": 30}])

policy = iam.Policy("read", name=f"{prefix}-read", tags=tags, policy={
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
for i in range(%(roles)d):
    role = iam.Role(f"role-{i}", name=f"{prefix}-role-{i}", assume_role_policy=trust, tags=tags)
    iam.RolePolicyAttachment(f"role-{i}-read", role=role.name, policy_arn=policy.arn)

dynamodb.Table("orders", name=f"{prefix}-orders", hash_key="id", attributes=[{"name": "id", "type": "S"}],
               point_in_time_recovery=True, tags=tags)
for i in range(%(topics)d):
    sns.Topic(f"topic-{i}", name=f"{prefix}-topic-{i}", tags=tags)
""" % {"zones": ZONES, "buckets": BUCKETS, "roles": ROLES, "topics": TOPICS}

EC2_URNS = ["aws:ec2:Vpc::vpc", "aws:ec2:InternetGateway::igw", "aws:ec2:RouteTable::public",
            "aws:ec2:SecurityGroup::web", *(f"aws:ec2:Subnet::subnet-{z}" for z in ZONES)]
RESOURCES = 1 + 1 + 1 + 2 * len(ZONES) + 1 + BUCKETS + 1 + 2 * ROLES + 1 + TOPICS


def cli(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
    env["STACKWRIGHT_USER"] = "tester"
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"stackwright {' '.join(args)} exited {done.returncode}:\n{out}"
    return out


class Emulator:
    """boto3 straight to the emulator (not through the proxy)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = emulator_client(self.endpoint, service)
        return self._clients[service]


def tagged(ec2: Any, urn: str) -> dict[str, list[str]]:
    """Every EC2 object carrying ``urn`` in its URN tag, by kind."""
    ours = [{"Name": f"tag:{URN_TAG}", "Values": [urn]}]
    return {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=ours)["Vpcs"]],
        "subnet": [s["SubnetId"] for s in ec2.describe_subnets(Filters=ours)["Subnets"]],
        "igw": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=ours)["InternetGateways"]],
        "route-table": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=ours)["RouteTables"]],
        "security-group": [g["GroupId"] for g in ec2.describe_security_groups(Filters=ours)["SecurityGroups"]],
    }


def project_objects(aws: Emulator, project: str, prefix: str) -> dict[str, Any]:
    """Everything in the emulator that belongs to this test, by kind."""
    ec2 = aws("ec2")
    by_urn: dict[str, int] = {}
    all_tagged = {f"dev::{project}::{u}": sum(len(v) for v in tagged(ec2, f"dev::{project}::{u}").values())
                  for u in EC2_URNS}
    by_urn.update(all_tagged)
    prefix_tag = [{"Name": "tag-key", "Values": [URN_TAG]}]
    vpcs = [v for v in ec2.describe_vpcs(Filters=prefix_tag)["Vpcs"]
            if any(t["Key"] == URN_TAG and t["Value"].startswith(f"dev::{project}::") for t in v["Tags"])]
    subnets = [s for v in vpcs for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["Subnets"]]
    associations = [a for v in vpcs for t in ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["RouteTables"]
        for a in t.get("Associations", []) if a.get("SubnetId")]
    iam = aws("iam")
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix))
    attached = {r: sorted(p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=r)["AttachedPolicies"])
                for r in roles}
    return {
        "per_urn": by_urn,
        "vpcs": len(vpcs),
        "subnets": sorted(s["CidrBlock"] for s in subnets),
        "associations": sorted(a["SubnetId"] for a in associations),
        "buckets": sorted(b["Name"] for b in aws("s3").list_buckets()["Buckets"] if b["Name"].startswith(prefix)),
        "roles": roles,
        "attached": attached,
        "policies": sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]
                           if p["PolicyName"].startswith(prefix)),
        "tables": sorted(t for t in aws("dynamodb").list_tables()["TableNames"] if t.startswith(prefix)),
        "topics": sorted(t["TopicArn"].rsplit(":", 1)[1] for t in aws("sns").list_topics()["Topics"]
                         if t["TopicArn"].rsplit(":", 1)[1].startswith(prefix)),
    }


def test_up_under_throttling_makes_each_object_exactly_once(
    proxy: ThrottlingProxy, aws_endpoint: str, tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    project, prefix = f"throttle-{suffix}", f"thr-{suffix}"
    root = tmp_path / project
    root.mkdir()
    (root / "stackwright.yaml").write_text(f"name: {project}\nmain: __main__.py\n")
    (root / "__main__.py").write_text(PROGRAM)
    (root / "stacks").mkdir()
    config = {"prefix": prefix, "aws": {"region": "us-east-1", "endpoint": proxy.url,
                                        "credentials": {"access_key_id": "testing", "secret_access_key": "testing"}}}
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": config}))
    cli(root, "stack", "init", "dev")

    out = cli(root, "up", "--yes")
    assert "Update succeeded" in out and f"{RESOURCES} create" in out, out
    assert sum(proxy.throttled.values()) > 0, proxy.calls
    assert "retry" in out.lower(), out  # the engine showed its retries

    emulator = Emulator(aws_endpoint)
    found = project_objects(emulator, project, prefix)
    assert found["per_urn"] == {f"dev::{project}::{u}": 1 for u in EC2_URNS}, found["per_urn"]
    assert found["vpcs"] == 1
    assert found["subnets"] == [f"10.77.{i}.0/24" for i in range(len(ZONES))]
    assert len(found["associations"]) == len(set(found["associations"])) == len(ZONES)
    assert found["buckets"] == sorted(f"{prefix}-bucket-{i}" for i in range(BUCKETS))
    assert found["roles"] == sorted(f"{prefix}-role-{i}" for i in range(ROLES))
    assert found["attached"] == {r: [f"{prefix}-read"] for r in found["roles"]}
    assert found["policies"] == [f"{prefix}-read"]
    assert found["tables"] == [f"{prefix}-orders"]
    assert found["topics"] == sorted(f"{prefix}-topic-{i}" for i in range(TOPICS))

    assert "No changes" in cli(root, "preview")
    refreshed = cli(root, "refresh")  # reads, throttled too
    assert f"Checked {RESOURCES} resources: no drift." in refreshed, refreshed

    out = cli(root, "destroy", "--yes", "--allow-destroy")
    assert "Destroy succeeded" in out and f"{RESOURCES} delete" in out, out
    gone = project_objects(emulator, project, prefix)
    assert gone["per_urn"] == {f"dev::{project}::{u}": 0 for u in EC2_URNS}, gone["per_urn"]
    assert {k: v for k, v in gone.items() if k != "per_urn" and v} == {}, gone
    print(f"\nthrottled {sum(proxy.throttled.values())} of {sum(proxy.calls.values())} calls: "
          f"{dict(proxy.throttled)}")
