"""The platform example's dev stack on the local cloud, through the real CLI.

Everything is checked through boto3 reads against the emulator, not through
Stackwright's state: what `up` claims to have made must be there, and what `destroy`
claims to have deleted must be gone. A restart of the emulator loses everything; refresh
must see that, and `up` must make it all again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws.conftest import emulator_client
from stackwright.providers.aws import localcloud

pytestmark = pytest.mark.aws

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform"
RESOURCES = 42
"""What the dev stack declares: 22 network, 9 EKS (roles, attachments, cluster, node
group, OIDC provider), 6 service-role, 2 buckets, 2 repositories, table, zone, record,
topic, subscription, alarm, dashboard."""
ZONES = {"us-east-1a", "us-east-1b", "us-east-1c"}
VPC_URN = "dev::platform::aws:ec2:Vpc::main$vpc"
CLUSTER = "platform-dev-main"
BUCKETS = ("platform-dev-assets", "platform-dev-uploads")
REPOSITORIES = ("dev/api", "dev/worker")
ZONE = "dev.shop.example.com."
RECORD = "api.dev.shop.example.com."


class Platform:
    """The example copied into a scratch folder, driven through `python -m stackwright.cli.main`."""

    def __init__(self, root: Path, port: int, cloud_home: Path) -> None:
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.cloud_home = cloud_home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
        self.env.update(STACKWRIGHT_USER="tester", STACKWRIGHT_LOCAL_CLOUD_PORT=str(port),
                        STACKWRIGHT_LOCAL_CLOUD_HOME=str(cloud_home))
        self._clients: dict[str, Any] = {}

    def run(self, *args: str, timeout: float = 300) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)
        return done.returncode, done.stdout + done.stderr

    def ok(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, f"stackwright {' '.join(args)} exited {code}:\n{out}"
        assert "Traceback" not in out, out
        return out

    def start_cloud(self) -> None:
        out = self.ok("local-cloud", "start", "--port", str(self.port))
        assert self.url in out, out

    def aws(self, service: str) -> Any:
        """A boto3 client of our own against the emulator."""
        if service not in self._clients:
            self._clients[service] = emulator_client(self.url, service)
        return self._clients[service]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """The example with its local cloud started on a free port; stopped at the end."""
    root = tmp_path / "platform"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".stackwright", "__pycache__"))
    p = Platform(root, localcloud.free_port(), tmp_path / "local-cloud")
    try:
        p.start_cloud()
        p.ok("stack", "init", "dev")
        yield p
    finally:
        _stop_cloud(p)


def _stop_cloud(p: Platform) -> None:
    code, out = p.run("local-cloud", "stop", timeout=60)
    info = p.cloud_home / "local-cloud.json"
    if code != 0 and info.exists():  # the CLI failed: end the process we started, by its id
        pid = int(json.loads(info.read_text())["pid"])
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def error_code(fn: Callable[..., Any], **kwargs: Any) -> str | None:
    """The AWS error code of a call, or None when it succeeds."""
    try:
        fn(**kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


# --- what the emulator holds ----------------------------------------------------------


def assert_platform_exists(p: Platform) -> None:
    ec2, eks, iam = p.aws("ec2"), p.aws("eks"), p.aws("iam")

    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:stackwright:urn", "Values": [VPC_URN]}])["Vpcs"]
    assert len(vpcs) == 1, vpcs
    vpc = vpcs[0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]}["env"] == "dev"

    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert len(subnets) == 6
    assert {s["AvailabilityZone"] for s in subnets} == ZONES
    public = [s for s in subnets if s["MapPublicIpOnLaunch"]]
    private = [s for s in subnets if not s["MapPublicIpOnLaunch"]]
    assert {s["AvailabilityZone"] for s in public} == ZONES and {s["AvailabilityZone"] for s in private} == ZONES
    igws = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]
    assert len(igws) == 1

    cluster = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["version"] == "1.31"
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == sorted(s["SubnetId"] for s in private)
    assert eks.list_nodegroups(clusterName=CLUSTER)["nodegroups"] == ["general"]
    group = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName="general")["nodegroup"]
    assert group["instanceTypes"] == ["t3.medium"]
    assert group["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}

    issuer = cluster["identity"]["oidc"]["issuer"].removeprefix("https://")
    providers = [p_["Arn"] for p_ in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    provider_arn = next(a for a in providers if a.endswith(f"oidc-provider/{issuer}"))
    for account in ("api", "worker"):
        role = iam.get_role(RoleName=f"platform-dev-{account}")["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        statement = trust["Statement"][0]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": provider_arn}
        assert statement["Condition"]["StringEquals"][f"{issuer}:sub"] == f"system:serviceaccount:shop:{account}"
        attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        assert [a["PolicyName"] for a in attached] == [f"platform-dev-{account}"]

    s3 = p.aws("s3")
    for bucket in BUCKETS:
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                         "RestrictPublicBuckets": True}

    table = p.aws("dynamodb").describe_table(TableName="dev-orders")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"tenant": "HASH", "order_id": "RANGE"}

    repos = p.aws("ecr").describe_repositories(repositoryNames=list(REPOSITORIES))["repositories"]
    assert sorted(r["repositoryName"] for r in repos) == sorted(REPOSITORIES)
    assert all(r["imageScanningConfiguration"]["scanOnPush"] for r in repos)

    route53 = p.aws("route53")
    zones = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE]
    assert len(zones) == 1
    records = route53.list_resource_record_sets(HostedZoneId=zones[0]["Id"])["ResourceRecordSets"]
    cname = [r for r in records if r["Name"] == RECORD and r["Type"] == "CNAME"]
    assert len(cname) == 1
    endpoint_host = cluster["endpoint"].removeprefix("https://")
    assert [v["Value"] for v in cname[0]["ResourceRecords"]] == [endpoint_host]

    sns = p.aws("sns")
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":dev-platform-alarms")]
    assert len(topics) == 1
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall-dev@shop.example.com")]

    cloudwatch = p.aws("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=["dev-orders-throttled"])["MetricAlarms"]
    assert len(alarms) == 1 and alarms[0]["AlarmActions"] == topics
    dashboard = json.loads(cloudwatch.get_dashboard(DashboardName="dev-platform")["DashboardBody"])
    assert dashboard["widgets"][0]["properties"]["title"] == "Orders table"


def assert_platform_gone(p: Platform) -> None:
    ec2, iam = p.aws("ec2"), p.aws("iam")
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:stackwright:urn", "Values": [VPC_URN]}])["Vpcs"] == []
    ours = [{"Name": "tag-key", "Values": ["stackwright:urn"]}]
    assert ec2.describe_subnets(Filters=ours)["Subnets"] == []
    assert ec2.describe_internet_gateways(Filters=ours)["InternetGateways"] == []
    assert ec2.describe_route_tables(Filters=ours)["RouteTables"] == []
    assert CLUSTER not in p.aws("eks").list_clusters()["clusters"]
    for role in ("platform-dev-api", "platform-dev-worker", f"{CLUSTER}-cluster", f"{CLUSTER}-node"):
        assert error_code(iam.get_role, RoleName=role) == "NoSuchEntity", role
    assert not [pol for pol in iam.list_policies(Scope="Local")["Policies"]
                if pol["PolicyName"].startswith("platform-dev-")]
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    for bucket in BUCKETS:
        assert error_code(p.aws("s3").head_bucket, Bucket=bucket) in ("404", "NoSuchBucket"), bucket
    assert error_code(p.aws("dynamodb").describe_table, TableName="dev-orders") == "ResourceNotFoundException"
    assert p.aws("ecr").describe_repositories()["repositories"] == []
    assert [z for z in p.aws("route53").list_hosted_zones()["HostedZones"] if z["Name"] == ZONE] == []
    assert not [t for t in p.aws("sns").list_topics()["Topics"] if t["TopicArn"].endswith(":dev-platform-alarms")]
    assert p.aws("cloudwatch").describe_alarms(AlarmNames=["dev-orders-throttled"])["MetricAlarms"] == []
    assert "dev-platform" not in [d["DashboardName"] for d in p.aws("cloudwatch").list_dashboards()["DashboardEntries"]]


# --- the tests ------------------------------------------------------------------------


def test_dev_stack_up_preview_destroy(platform: Platform) -> None:
    out = platform.ok("up", "--yes")
    assert "Update succeeded" in out and f"{RESOURCES} create" in out, out
    assert_platform_exists(platform)

    preview = platform.ok("preview")
    assert f"No changes. {RESOURCES} resources unchanged." in preview, preview

    out = platform.ok("destroy", "--yes", "--allow-destroy")
    assert "Destroy succeeded" in out and f"{RESOURCES} delete" in out, out
    assert_platform_gone(platform)
    assert "0 resources" in platform.ok("state", "ls")


def test_emulator_restart_loses_everything_and_up_recreates_it(platform: Platform) -> None:
    platform.ok("up", "--yes")
    assert_platform_exists(platform)

    assert "Local cloud stopped." in platform.ok("local-cloud", "stop")
    platform.start_cloud()
    assert_platform_gone(platform)  # the emulator keeps everything in memory

    code, out = platform.run("refresh")
    assert code == 0, out
    deleted = [line for line in out.splitlines() if line.endswith("deleted outside Stackwright")]
    assert len(deleted) == RESOURCES, out
    assert f"Checked {RESOURCES} resources: {RESOURCES} drifted." in out, out
    assert "refresh --yes" in out  # nothing recorded yet: it says how to
    assert f"{RESOURCES} resources" in platform.ok("state", "ls")

    out = platform.ok("refresh", "--yes")
    assert "Recorded in checkpoint" in out, out
    assert "0 resources" in platform.ok("state", "ls")
    assert f"{RESOURCES} to create" in platform.ok("preview")

    out = platform.ok("up", "--yes")
    assert f"{RESOURCES} create" in out, out
    assert_platform_exists(platform)
    assert "No changes." in platform.ok("preview")


def test_dev_and_staging_are_up_on_one_emulator_at_once(platform: Platform) -> None:
    """staging pointed at the same local cloud, in dev's region: IAM is global, so the
    OIDC providers of the two clusters collide unless each cluster has its own issuer."""
    import yaml

    staging_file = platform.root / "stacks" / "staging.yaml"
    staging = yaml.safe_load(staging_file.read_text())
    staging["config"]["aws"] = {"region": "us-east-1", "endpoint": "local"}
    staging["config"]["platform"]["availability_zones"] = sorted(ZONES)
    staging_file.write_text(yaml.safe_dump(staging))
    platform.ok("stack", "init", "staging")

    platform.ok("up", "--yes", "-s", "dev")
    out = platform.ok("up", "--yes", "-s", "staging")
    assert f"{RESOURCES} create" in out, out
    assert_platform_exists(platform)  # dev is untouched

    eks, iam = platform.aws("eks"), platform.aws("iam")
    issuers = {name: eks.describe_cluster(name=name)["cluster"]["identity"]["oidc"]["issuer"]
               for name in (CLUSTER, "platform-staging-main")}
    assert len(set(issuers.values())) == 2, issuers
    listed = {p_["Arn"].split("oidc-provider/", 1)[1] for p_ in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
    assert {i.removeprefix("https://") for i in issuers.values()} <= listed
    assert "No changes." in platform.ok("preview", "-s", "dev")

    platform.ok("destroy", "--yes", "--allow-destroy", "-s", "staging")
    platform.ok("destroy", "--yes", "--allow-destroy", "-s", "dev")
    assert_platform_gone(platform)


def test_a_second_state_of_the_same_stack_refuses_the_objects_of_the_first(platform: Platform,
                                                                          tmp_path: Path) -> None:
    """A second checkout with a state of its own (or a `.stackwright/` lost and made
    again) shares the first one's URNs: its `up` must stop at the first named object,
    saying which state manages it, and its `destroy` must leave the first one's alone."""
    platform.ok("up", "--yes")
    root = tmp_path / "second"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".stackwright", "__pycache__"))
    second = Platform(root, platform.port, platform.cloud_home)
    second.ok("stack", "init", "dev")

    code, out = second.run("up", "--yes")
    assert code == 1 and "managed by another state of this stack (lineage" in out, out
    assert "hint: another checkout or state backend manages it" in out, out
    assert "eks:Cluster" not in second.ok("state", "ls")
    second.ok("destroy", "--yes", "--allow-destroy")

    assert "no drift" in platform.ok("refresh")
    assert_platform_exists(platform)


def edit_platform(p: Platform, old: str, new: str) -> None:
    path = p.root / "stacks" / "dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


ABC = "[us-east-1a, us-east-1b, us-east-1c]"


@pytest.mark.parametrize(("old", "new", "zones", "cidr"), [
    (ABC, "[us-east-1a, us-east-1b, us-east-1c, us-east-1d]", ZONES | {"us-east-1d"}, "10.0.0.0/16"),
    (ABC, "[us-east-1a, us-east-1c]", ZONES - {"us-east-1b"}, "10.0.0.0/16"),
    (ABC, "[us-east-1a, us-east-1d, us-east-1c]", ZONES - {"us-east-1b"} | {"us-east-1d"}, "10.0.0.0/16"),
    ("domain: dev.shop.example.com", "domain: dev.shop.example.com\n    cidr_block: 10.1.0.0/16",
     ZONES, "10.1.0.0/16"),
], ids=["zones", "zones-drop-middle", "zones-swap", "cidr"])
def test_zone_and_cidr_edits_apply_in_one_up(platform: Platform, old: str, new: str,
                                             zones: set[str], cidr: str) -> None:
    """Config edits that replace subnets, and through them the cluster (delete-first, its
    name stays), its node group and its OIDC provider: one `up` orders the whole chain.
    Dropping or swapping a zone in the middle of the list moves no other zone's subnets,
    whose replacements would otherwise collide with the subnets still there."""
    platform.ok("up", "--yes")
    edit_platform(platform, old, new)
    preview = platform.ok("preview")
    assert "replace (delete first)" in preview and "cluster" in preview, preview
    if zones >= ZONES:  # dropping a zone changes the cluster's subnets itself: no side effect to warn of
        assert "warning: stateful aws:eks:Cluster is replaced as a side effect" in preview, preview

    out = platform.ok("up", "--yes", "--allow-destroy")  # the cluster's replacement is a policy violation
    assert "Update succeeded" in out, out
    assert "No changes." in platform.ok("preview")

    ec2, eks = platform.aws("ec2"), platform.aws("eks")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:stackwright:urn", "Values": [VPC_URN]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == [cidr]
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag-key", "Values": ["stackwright:urn"]}])["Subnets"]
    assert {s["VpcId"] for s in subnets} == {vpcs[0]["VpcId"]} and len(subnets) == 2 * len(zones)
    assert {s["AvailabilityZone"] for s in subnets} == zones
    private = sorted(s["SubnetId"] for s in subnets if not s["MapPublicIpOnLaunch"])
    assert eks.list_clusters()["clusters"] == [CLUSTER]
    cluster = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == private
    issuer = cluster["identity"]["oidc"]["issuer"].removeprefix("https://")
    arns = [o["Arn"] for o in platform.aws("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    assert len(arns) == 1 and arns[0].endswith(f"oidc-provider/{issuer}")
