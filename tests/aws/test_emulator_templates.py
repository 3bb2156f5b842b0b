"""The local cloud creates what published templates declare, as AWS does (the patches
of ``providers/aws/emulator.py`` that ``local-cloud start`` applies): each template
below is a shape found in aws-samples' startup-kit templates that moto alone fails.

Stacks are made through the handler, as `up` makes them; what the emulator holds is
checked through our own boto3 client.
"""

from __future__ import annotations

from typing import Any

import pytest

from aws.conftest import ctx, unique
from stackwright.providers.aws.cloudformation import StackProvider

pytestmark = pytest.mark.aws

TYPE = "aws:cloudformation:Stack"

CONDITIONAL_EXPORT = """\
Parameters:
  EnableAlarms: {Type: String, Default: false, AllowedValues: [true, false]}
Conditions:
  AlarmsEnabled: !Equals [!Ref EnableAlarms, true]
Resources:
  Queue: {Type: AWS::SQS::Queue}
  AlarmTopic: {Type: AWS::SNS::Topic, Condition: AlarmsEnabled}
Outputs:
  QueueUrl:
    Value: !Ref Queue
    Export: {Name: !Sub '${AWS::StackName}-QueueUrl'}
  AlarmTopicName:
    Condition: AlarmsEnabled
    Value: !GetAtt AlarmTopic.TopicName
    Export: {Name: !Sub '${AWS::StackName}-AlarmTopicName'}
"""

REPEATED_INGRESS = """\
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.7.0.0/16}}
  Front:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: front, VpcId: !Ref Vpc}
  App:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: app
      VpcId: !Ref Vpc
      SecurityGroupIngress:
        - {SourceSecurityGroupId: !Ref Front, IpProtocol: tcp, FromPort: 80, ToPort: 80}
  AppFromFront:
    Type: AWS::EC2::SecurityGroupIngress
    Properties: {GroupId: !Ref App, SourceSecurityGroupId: !Ref Front, IpProtocol: tcp, FromPort: 80, ToPort: 80}
Outputs:
  App: {Value: !Ref App}
"""

UNNAMED_REPOSITORY = """\
Resources:
  EcrDockerRepository: {Type: AWS::ECR::Repository}
Outputs:
  Repository: {Value: !Ref EcrDockerRepository}
"""

LOAD_BALANCER = """\
Parameters:
  SSLCertificateArn: {Type: String, Default: ''}
Conditions:
  IsTlsEnabled: !Not [!Equals [!Ref SSLCertificateArn, '']]
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.8.0.0/16}}
  SubnetA: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.8.1.0/24, AvailabilityZone: us-east-1a}}
  SubnetB: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.8.2.0/24, AvailabilityZone: us-east-1b}}
  Balancer:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Subnets: [!Ref SubnetA, !Ref SubnetB]}
  Targets:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {VpcId: !Ref Vpc, Port: 80, Protocol: HTTP, Matcher: {HttpCode: 200}}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref Balancer
      Port: 80
      Protocol: !If [IsTlsEnabled, HTTPS, HTTP]
      Certificates:
        - CertificateArn: !If [IsTlsEnabled, !Ref SSLCertificateArn, !Ref 'AWS::NoValue']
      DefaultActions: [{Type: forward, TargetGroupArn: !Ref Targets}]
Outputs:
  Targets: {Value: !Ref Targets}
  Listener: {Value: !Ref Listener}
"""


@pytest.fixture
def deploy(handlers: Any) -> Any:
    """``deploy(template)``: the stack's outputs once created; every stack is deleted after."""
    handler = handlers(TYPE)
    assert isinstance(handler, StackProvider)
    made: list[tuple[str, Any, Any]] = []

    def create(template: str) -> dict[str, str]:
        name = unique("tpl")
        inputs = handler.check({"name": name, "template": template})
        created = handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
        made.append((name, created, inputs))
        return dict(created.outputs["outputs"], StackName=name)

    yield create
    for name, created, inputs in reversed(made):
        handler.delete(ctx(TYPE, name), created.id, inputs, created.outputs)


def test_an_output_whose_condition_is_false_is_not_exported(deploy: Any, boto: Any) -> None:
    outputs = deploy(CONDITIONAL_EXPORT)
    names = {e["Name"] for e in boto("cloudformation").list_exports()["Exports"]}
    assert f"{outputs['StackName']}-QueueUrl" in names
    assert f"{outputs['StackName']}-AlarmTopicName" not in names


def test_an_ingress_resource_repeating_its_groups_rule_stands_for_it(deploy: Any, boto: Any) -> None:
    outputs = deploy(REPEATED_INGRESS)
    group = boto("ec2").describe_security_groups(GroupIds=[outputs["App"]])["SecurityGroups"][0]
    assert [(p["FromPort"], len(p["UserIdGroupPairs"])) for p in group["IpPermissions"]] == [(80, 1)]


def test_a_repository_cloudformation_names_is_lower_case(deploy: Any, boto: Any) -> None:
    outputs = deploy(UNNAMED_REPOSITORY)
    name = outputs["Repository"]
    assert name == name.lower() and "ecrdockerrepository" in name
    assert boto("ecr").describe_repositories(repositoryNames=[name])["repositories"]


def test_numeric_matcher_and_empty_certificate_read_as_aws_reads_them(deploy: Any, boto: Any) -> None:
    outputs = deploy(LOAD_BALANCER)
    elb = boto("elbv2")
    group = elb.describe_target_groups(TargetGroupArns=[outputs["Targets"]])["TargetGroups"][0]
    assert group["Matcher"]["HttpCode"] == "200"
    listener = elb.describe_listeners(ListenerArns=[outputs["Listener"]])["Listeners"][0]
    assert listener["Protocol"] == "HTTP" and not listener.get("Certificates")


ROUTED_VPC = """\
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.9.0.0/16}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.9.1.0/24}}
  Routes: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}
  Association:
    Type: AWS::EC2::SubnetRouteTableAssociation
    Properties: {SubnetId: !Ref Subnet, RouteTableId: !Ref Routes}
Outputs:
  Vpc:
    Value: !Ref Vpc
    Export: {Name: !Sub '${AWS::StackName}-Vpc'}
"""


def test_deleting_a_stack_deletes_its_route_tables_and_its_vpc(handlers: Any, boto: Any) -> None:
    handler = handlers(TYPE)
    name = unique("routed")
    inputs = handler.check({"name": name, "template": ROUTED_VPC})
    created = handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
    vpc_id = created.outputs["outputs"]["Vpc"]
    handler.delete(ctx(TYPE, name), created.id, inputs, created.outputs)
    assert not boto("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    assert f"{name}-Vpc" not in {e["Name"] for e in boto("cloudformation").list_exports()["Exports"]}
