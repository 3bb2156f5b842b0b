"""`stackwright import` round trip for every AWS resource type in the catalog.

For each type: make an object *outside* Stackwright with boto3 (plus whatever it needs),
run the real `stackwright import TYPE NAME ID`, and check that the Python it prints,
used as the whole program, previews as "No changes": the inputs `read` reports must be
exactly the inputs the printed declaration gives.

Prerequisites are referenced by their literal ids in the printed code, which is fine.
A type added to the catalog without a recipe here fails loudly, so coverage never
silently shrinks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws.conftest import emulator_client
from stackwright.providers.aws import localcloud, provider

pytestmark = pytest.mark.aws

PROJECT = "imports"
TRUST_EC2 = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_EKS = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
READ_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}


class Aws:
    """boto3 clients against the emulator, and unique names for one test."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.suffix = uuid.uuid4().hex[:8]
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = emulator_client(self.endpoint, service)
        return self._clients[service]

    def name(self, prefix: str) -> str:
        return f"{prefix}-{self.suffix}"

    # --- prerequisites shared by several recipes ---------------------------------------

    def vpc(self) -> str:
        # A CIDR of its own per test: moto keeps every VPC of the session.
        octet = int(self.suffix[:2], 16) % 250
        return str(self("ec2").create_vpc(CidrBlock=f"10.{octet}.0.0/16")["Vpc"]["VpcId"])

    def subnet(self, vpc_id: str, index: int = 0, zone: str = "us-east-1a") -> str:
        cidr = self("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"]
        base = cidr.split(".")
        block = f"{base[0]}.{base[1]}.{index}.0/24"
        return str(self("ec2").create_subnet(VpcId=vpc_id, CidrBlock=block,
                                             AvailabilityZone=zone)["Subnet"]["SubnetId"])

    def igw(self, vpc_id: str) -> str:
        igw = self("ec2").create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self("ec2").attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        return str(igw)

    def security_group(self, vpc_id: str) -> str:
        return str(self("ec2").create_security_group(
            GroupName=self.name("sg"), Description="made by hand", VpcId=vpc_id)["GroupId"])

    def role(self, trust: dict[str, Any] = TRUST_EC2, prefix: str = "role") -> tuple[str, str]:
        role = self("iam").create_role(RoleName=self.name(prefix), AssumeRolePolicyDocument=json.dumps(trust),
                                       Description="made by hand", Tags=[{"Key": "team", "Value": "data"}])
        return str(role["Role"]["RoleName"]), str(role["Role"]["Arn"])

    def cluster(self) -> str:
        _, role_arn = self.role(TRUST_EKS, "cluster")
        vpc = self.vpc()
        subnets = [self.subnet(vpc, 0, "us-east-1a"), self.subnet(vpc, 1, "us-east-1b")]
        name = self.name("eks")
        self("eks").create_cluster(
            name=name, roleArn=role_arn, version="1.30", tags={"team": "data"},
            resourcesVpcConfig={"subnetIds": subnets, "securityGroupIds": [self.security_group(vpc)],
                                "endpointPublicAccess": True, "endpointPrivateAccess": True})
        return name

    def topic(self) -> str:
        return str(self("sns").create_topic(Name=self.name("topic"),
                                            Tags=[{"Key": "team", "Value": "data"}])["TopicArn"])

    def zone(self) -> str:
        zone = self("route53").create_hosted_zone(Name=f"{self.name('zone')}.example.com",
                                                  CallerReference=self.name("ref"),
                                                  HostedZoneConfig={"Comment": "made by hand"})
        return str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]


# --- one recipe per type: make the object with boto3, return its import id -----------


def vpc(aws: Aws) -> str:
    vpc_id = aws.vpc()
    aws("ec2").create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": aws.name("vpc")}])
    aws("ec2").modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return vpc_id


def subnet(aws: Aws) -> str:
    subnet_id = aws.subnet(aws.vpc(), zone="us-east-1b")
    aws("ec2").modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    aws("ec2").create_tags(Resources=[subnet_id], Tags=[{"Key": "tier", "Value": "public"}])
    return subnet_id


def internet_gateway(aws: Aws) -> str:
    igw = aws.igw(aws.vpc())
    aws("ec2").create_tags(Resources=[igw], Tags=[{"Key": "Name", "Value": aws.name("igw")}])
    return igw


def route_table(aws: Aws) -> str:
    vpc_id = aws.vpc()
    table = aws("ec2").create_route_table(VpcId=vpc_id, TagSpecifications=[{
        "ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": aws.name("public")}]}],
    )["RouteTable"]["RouteTableId"]
    aws("ec2").create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=aws.igw(vpc_id))
    return str(table)


def route(aws: Aws) -> str:
    vpc_id = aws.vpc()
    table = aws("ec2").create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    aws("ec2").create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=aws.igw(vpc_id))
    return f"{table}_0.0.0.0/0"


def route_table_association(aws: Aws) -> str:
    vpc_id = aws.vpc()
    table = aws("ec2").create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    answer = aws("ec2").associate_route_table(RouteTableId=table, SubnetId=aws.subnet(vpc_id))
    return str(answer["AssociationId"])


def security_group(aws: Aws) -> str:
    group = aws.security_group(aws.vpc())
    other = aws("ec2").create_security_group(GroupName=aws.name("peer"), Description="peer",
                                             VpcId=aws("ec2").describe_security_groups(
                                                 GroupIds=[group])["SecurityGroups"][0]["VpcId"])["GroupId"]
    aws("ec2").authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "https"},
                      {"CidrIp": "192.168.0.0/16", "Description": "https"}]},
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": other}]}])
    aws("ec2").create_tags(Resources=[group], Tags=[{"Key": "team", "Value": "data"}])
    return group


def security_group_rule(aws: Aws) -> str:
    group = aws.security_group(aws.vpc())
    aws("ec2").authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.1.0.0/16"}, {"CidrIp": "10.2.0.0/16"}]}])
    return f"{group}_ingress_tcp_22_22_10.1.0.0/16_10.2.0.0/16"


def oidc_provider(aws: Aws) -> str:
    answer = aws("iam").create_open_id_connect_provider(
        Url=f"https://oidc.example.com/id/{aws.suffix}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
        Tags=[{"Key": "team", "Value": "data"}])
    return str(answer["OpenIDConnectProviderArn"])


def role(aws: Aws) -> str:
    name = aws.name("svc")
    aws("iam").create_role(RoleName=name, Path="/service/", AssumeRolePolicyDocument=json.dumps(TRUST_EC2),
                           Description="made by hand", MaxSessionDuration=7200,
                           Tags=[{"Key": "team", "Value": "data"}])
    return name


def policy(aws: Aws) -> str:
    answer = aws("iam").create_policy(PolicyName=aws.name("policy"), PolicyDocument=json.dumps(READ_ONLY),
                                      Path="/team/", Description="made by hand",
                                      Tags=[{"Key": "team", "Value": "data"}])
    return str(answer["Policy"]["Arn"])


def role_policy_attachment(aws: Aws) -> str:
    name, _ = aws.role()
    arn = policy(aws)
    aws("iam").attach_role_policy(RoleName=name, PolicyArn=arn)
    return f"{name}/{arn}"


def role_policy(aws: Aws) -> str:
    name, _ = aws.role()
    aws("iam").put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(READ_ONLY))
    return f"{name}:inline"


def cluster(aws: Aws) -> str:
    return aws.cluster()


def node_group(aws: Aws) -> str:
    name = aws.cluster()
    described = aws("eks").describe_cluster(name=name)["cluster"]
    _, node_role = aws.role(prefix="node")
    aws("eks").create_nodegroup(
        clusterName=name, nodegroupName="general", nodeRole=node_role,
        subnets=described["resourcesVpcConfig"]["subnetIds"], instanceTypes=["t3.large"],
        scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 2}, labels={"tier": "web"},
        diskSize=50, capacityType="SPOT", tags={"team": "data"})
    return f"{name}:general"


def bucket(aws: Aws) -> str:
    name = aws.name("bucket")
    s3 = aws("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
        "ID": "expire", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 7}}]})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "tls", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    return name


def table(aws: Aws) -> str:
    name = aws.name("table")
    dynamodb = aws("dynamodb")
    dynamodb.create_table(
        TableName=name, BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 3},
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        Tags=[{"Key": "team", "Value": "data"}])
    dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    return name


def repository(aws: Aws) -> str:
    name = f"team/{aws.name('repo')}"
    aws("ecr").create_repository(repositoryName=name, imageTagMutability="IMMUTABLE",
                                 imageScanningConfiguration={"scanOnPush": True},
                                 tags=[{"Key": "team", "Value": "data"}])
    aws("ecr").put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps({"rules": [{
        "rulePriority": 1, "description": "keep 10", "selection": {
            "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"}}]}))
    return name


def zone(aws: Aws) -> str:
    zone_id = aws.zone()
    aws("route53").change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id,
                                            AddTags=[{"Key": "team", "Value": "data"}])
    return zone_id


def record(aws: Aws) -> str:
    zone_id = aws.zone()
    name = aws("route53").get_hosted_zone(Id=zone_id)["HostedZone"]["Name"].rstrip(".")
    aws("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {
            "Name": f"www.{name}", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "192.0.2.10"}, {"Value": "192.0.2.11"}]}}]})
    return f"{zone_id}/www.{name}/A"


def alias_record(aws: Aws) -> str:
    """Not a type of its own: an alias record, imported as aws:route53:Record."""
    zone_id = aws.zone()
    name = aws("route53").get_hosted_zone(Id=zone_id)["HostedZone"]["Name"].rstrip(".")
    aws("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {
            "Name": f"app.{name}", "Type": "A", "AliasTarget": {
                "DNSName": "my-lb-123.us-east-1.elb.amazonaws.com.", "HostedZoneId": "Z35SXDOTRQ7X7K",
                "EvaluateTargetHealth": True}}}]})
    return f"{zone_id}/app.{name}/A"


def topic(aws: Aws) -> str:
    arn = aws.topic()
    sns = aws("sns")
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Alerts")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "publish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish", "Resource": arn}]}
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    return arn


def subscription(aws: Aws) -> str:
    answer = aws("sns").subscribe(
        TopicArn=aws.topic(), Protocol="https", Endpoint="https://hooks.example.com/alerts",
        ReturnSubscriptionArn=True, Attributes={
            "RawMessageDelivery": "true", "FilterPolicy": json.dumps({"severity": ["high", "critical"]})})
    return str(answer["SubscriptionArn"])


def dashboard(aws: Aws) -> str:
    name = aws.name("dash")
    body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
                         "properties": {"markdown": "hello"}}]}
    aws("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return name


def metric_alarm(aws: Aws) -> str:
    name = aws.name("alarm")
    aws("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": "jobs"}, {"Name": "Env", "Value": "dev"}],
        ExtendedStatistic="p99", Period=300, TreatMissingData="breaching",
        OKActions=[aws.topic()],
        EvaluationPeriods=3, Threshold=600.0, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[aws.topic()], AlarmDescription="jobs are stuck",
        Tags=[{"Key": "team", "Value": "data"}])
    return name


STACK_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env: {Type: String, Default: dev}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${Env}-%s"
Outputs:
  TopicArn:
    Value: !Ref Topic
"""


def stack(aws: Aws) -> str:
    answer = aws("cloudformation").create_stack(
        StackName=aws.name("stack"), TemplateBody=STACK_TEMPLATE % aws.suffix,
        Parameters=[{"ParameterKey": "Env", "ParameterValue": "test"}],
        Tags=[{"Key": "team", "Value": "data"}])
    return str(answer["StackId"])


RECIPES: dict[str, Callable[[Aws], str]] = {
    "aws:ec2:Vpc": vpc,
    "aws:ec2:Subnet": subnet,
    "aws:ec2:InternetGateway": internet_gateway,
    "aws:ec2:RouteTable": route_table,
    "aws:ec2:Route": route,
    "aws:ec2:RouteTableAssociation": route_table_association,
    "aws:ec2:SecurityGroup": security_group,
    "aws:ec2:SecurityGroupRule": security_group_rule,
    "aws:iam:OpenIdConnectProvider": oidc_provider,
    "aws:iam:Role": role,
    "aws:iam:Policy": policy,
    "aws:iam:RolePolicyAttachment": role_policy_attachment,
    "aws:iam:RolePolicy": role_policy,
    "aws:eks:Cluster": cluster,
    "aws:eks:NodeGroup": node_group,
    "aws:s3:Bucket": bucket,
    "aws:dynamodb:Table": table,
    "aws:ecr:Repository": repository,
    "aws:route53:Zone": zone,
    "aws:route53:Record": record,
    "aws:sns:Topic": topic,
    "aws:sns:Subscription": subscription,
    "aws:cloudwatch:Dashboard": dashboard,
    "aws:cloudwatch:MetricAlarm": metric_alarm,
    "aws:cloudformation:Stack": stack,
}

VARIANTS: dict[str, tuple[str, Callable[[Aws], str]]] = {
    "aws:route53:Record[alias]": ("aws:route53:Record", alias_record),
}
"""Further shapes of a type worth a round trip of their own: case id -> (type, recipe)."""

EMULATOR_GAPS: dict[str, str] = {}
"""Cases that cannot round-trip because of a moto gap: case id -> the precise reason.
They run as strict xfails, so a moto upgrade that closes the gap is noticed."""


def cases() -> list[Any]:
    found = [(t, t, RECIPES.get(t)) for t in provider().types()]
    found += [(case, t, recipe) for case, (t, recipe) in VARIANTS.items()]
    params = []
    for case, type_token, recipe in found:
        marks = [pytest.mark.xfail(strict=True, reason=EMULATOR_GAPS[case])] if case in EMULATOR_GAPS else []
        params.append(pytest.param(type_token, recipe, id=case, marks=marks))
    return params


# --- the CLI in a throwaway project ---------------------------------------------------


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
    env["STACKWRIGHT_USER"] = "tester"
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    return done.returncode, done.stdout, done.stderr


def make_project(root: Path, endpoint: str) -> Path:
    root.mkdir()
    (root / "stackwright.yaml").write_text(f"name: {PROJECT}\nmain: __main__.py\n")
    (root / "__main__.py").write_text("")
    (root / "stacks").mkdir()
    config = {"aws": {"region": "us-east-1", "endpoint": endpoint,
                      "credentials": dict(localcloud.LOCAL_CREDENTIALS)}}
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": config}))
    code, out, err = cli(root, "stack", "init", "dev")
    assert code == 0, out + err
    return root


def test_every_catalog_type_has_a_recipe() -> None:
    missing = sorted(set(provider().types()) - set(RECIPES))
    assert not missing, f"add an import recipe for {missing}"


@pytest.mark.parametrize(("type_token", "recipe"), cases())
def test_import_round_trip(type_token: str, recipe: Callable[[Aws], str] | None, aws_endpoint: str,
                           tmp_path: Path) -> None:
    assert recipe is not None, f"no import recipe for {type_token}: add one to RECIPES"
    aws = Aws(aws_endpoint)
    resource_id = recipe(aws)
    root = make_project(tmp_path / PROJECT, aws_endpoint)

    code, out, err = cli(root, "import", "--yes", type_token, "adopted", resource_id)
    assert code == 0, f"import failed ({code}):\n{out}\n{err}"
    assert "Traceback" not in err, err
    module = type_token.split(":")[1]
    assert f"from stackwright.providers.aws import {module}" in out, out
    assert "'adopted'," in out, out
    compile(out, "imported.py", "exec")  # it is Python

    (root / "__main__.py").write_text(out)
    code, preview, err = cli(root, "preview", "--diff")
    assert code == 0, f"preview failed ({code}):\n{preview}\n{err}\nprogram:\n{out}"
    assert "No changes" in preview, f"the imported code does not match what was read:\n{preview}\nprogram:\n{out}"
