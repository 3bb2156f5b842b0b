"""Two CloudFormation templates that export and import, shared by the planning tests
(no cloud) and the emulator tests: ``network`` exports its VPC under
``<stack name>-VpcId``; ``app`` imports it from the network stack its parameter names."""

NETWORK = """\
Parameters:
  EnvName: {Type: String, AllowedValues: [dev, staging, production]}
  Cidr: {Type: String, Default: 10.0.0.0/16, AllowedPattern: '\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+'}
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: !Ref Cidr}
Outputs:
  VpcId:
    Value: !Ref Vpc
    Export: {Name: !Sub '${AWS::StackName}-VpcId'}
  Env:
    Value: !Ref EnvName
    Export:
      Name: !Join [':', [!Ref AWS::StackName, !Ref EnvName]]
"""
APP = """\
Parameters:
  NetworkStack: {Type: String}
Resources:
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: app
      VpcId: !ImportValue
        Fn::Sub: '${NetworkStack}-VpcId'
Outputs:
  GroupId:
    Value: !Ref Group
    Export: {Name: !Sub '${AWS::StackName}-GroupId'}
"""
