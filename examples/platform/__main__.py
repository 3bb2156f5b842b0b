"""The platform: one program for dev (local cloud), staging and production.

Everything that differs between environments is in stacks/<env>.yaml: adding a node
group, a bucket or an availability zone is a config edit, not a code change.
"""

from pydantic import BaseModel

import stackwright as sw
from stackwright.components import EksCluster, Network, NodeGroupSpec, ServiceRole
from stackwright.providers.aws import cloudwatch, dynamodb, ecr, route53, s3, sns

env = sw.get_stack()
config = sw.Config()


class Settings(BaseModel):
    domain: str
    availability_zones: list[str]
    cidr_block: str = "10.0.0.0/16"
    kubernetes_version: str = "1.31"
    node_groups: list[NodeGroupSpec]
    buckets: list[str]
    repositories: list[str]
    alarm_email: str


settings = config.require_object("platform", Settings)
tags = {"env": env, "team": "platform", "managed-by": "stackwright"}

network = Network("main", availability_zones=settings.availability_zones,
                  cidr_block=settings.cidr_block, tags=tags)
cluster = EksCluster("main", subnet_ids=network.private_subnet_ids, node_groups=settings.node_groups,
                     version=settings.kubernetes_version, tags=tags)

orders = dynamodb.Table("orders", name=f"{env}-orders", hash_key="tenant", range_key="order_id",
                        attributes=[{"name": "tenant", "type": "S"}, {"name": "order_id", "type": "S"}],
                        point_in_time_recovery=True, tags=tags)
buckets = {
    name: s3.Bucket(name, bucket=f"{sw.get_project()}-{env}-{name}", versioning=True, encryption="AES256",
                    block_public_access=True, tags=tags,
                    lifecycle_rules=[{"id": "old-versions", "enabled": True, "noncurrent_version_expiration_days": 30}])
    for name in settings.buckets
}
repositories = {name: ecr.Repository(name, name=f"{env}/{name}", scan_on_push=True, tags=tags)
                for name in settings.repositories}

api = ServiceRole("api", cluster=cluster, namespace="shop", service_account="api", tags=tags, statements=[
    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
     "Resource": [orders.arn]},
])
worker = ServiceRole("worker", cluster=cluster, namespace="shop", service_account="worker", tags=tags, statements=[
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": [sw.fmt("{}/*", bucket.arn) for bucket in buckets.values()]},
    {"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [orders.arn]},
])

zone = route53.Zone("zone", name=settings.domain, tags=tags)
route53.Record("api", zone_id=zone.zone_id, name=f"api.{settings.domain}", type="CNAME", ttl=300,
               records=[cluster.endpoint.apply(lambda url: url.removeprefix("https://"))])

alarms = sns.Topic("alarms", name=f"{env}-platform-alarms", tags=tags)
sns.Subscription("oncall", topic_arn=alarms.arn, protocol="email", endpoint=settings.alarm_email)
cloudwatch.MetricAlarm(
    "orders-throttled", name=f"{env}-orders-throttled", namespace="AWS/DynamoDB",
    metric_name="ThrottledRequests", dimensions={"TableName": f"{env}-orders"}, statistic="Sum",
    period=300, evaluation_periods=1, threshold=10, comparison_operator="GreaterThanThreshold",
    alarm_actions=[alarms.arn], tags=tags)
cloudwatch.Dashboard("platform", name=f"{env}-platform", body={"widgets": [{
    "type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
    "properties": {"title": "Orders table", "region": config.get_object("aws", default={}).get("region", "us-east-1"),
                   "metrics": [["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", f"{env}-orders"],
                               ["AWS/DynamoDB", "ThrottledRequests", "TableName", f"{env}-orders"]]},
}]})

sw.export("vpc_id", network.vpc_id)
sw.export("cluster_endpoint", cluster.endpoint)
sw.export("oidc_issuer", cluster.oidc_issuer)
sw.export("oidc_provider_arn", cluster.oidc_provider_arn)
sw.export("api_role_arn", api.arn)
sw.export("worker_role_arn", worker.arn)
sw.export("buckets", {name: b.bucket for name, b in buckets.items()})
sw.export("repositories", {name: r.repository_url for name, r in repositories.items()})
sw.export("name_servers", zone.name_servers)
