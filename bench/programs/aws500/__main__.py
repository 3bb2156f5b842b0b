"""A synthetic AWS estate for benchmarks: `per_kind` each of S3 buckets, SNS topics, IAM
roles, DynamoDB tables and security groups, the groups in one VPC (5 x 100 + 1 = 501
resources with the default). Written the way a real program declares such things:
tags everywhere, a least-privilege trust policy, one ingress rule per group."""

import stackwright as sw
from stackwright.providers.aws import dynamodb, ec2, iam, s3, sns

config = sw.Config()
per_kind = config.get_int("per_kind", 100)
prefix = config.require_str("prefix")
tags = {"env": sw.get_stack(), "suite": "aws500"}
trust = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

vpc = ec2.Vpc("vpc", cidr_block="10.50.0.0/16", tags={**tags, "Name": prefix})

for i in range(per_kind):
    n = f"{i:03d}"
    s3.Bucket(f"bucket-{n}", bucket=f"{prefix}-bucket-{n}", tags=tags)
    sns.Topic(f"topic-{n}", name=f"{prefix}-topic-{n}", tags=tags)
    iam.Role(f"role-{n}", name=f"{prefix}-role-{n}", assume_role_policy=trust, tags=tags)
    dynamodb.Table(f"table-{n}", name=f"{prefix}-table-{n}", hash_key="id",
                   attributes=[{"name": "id", "type": "S"}], tags=tags)
    ec2.SecurityGroup(f"sg-{n}", name=f"{prefix}-sg-{n}", vpc_id=vpc.id, tags=tags,
                      ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443,
                                "cidr_blocks": [f"10.{i // 250}.{i % 250}.0/24"]}])

sw.export("vpc_id", vpc.id)
