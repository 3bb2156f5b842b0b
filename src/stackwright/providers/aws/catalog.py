"""Every AWS resource provider: each service module lists its own in
``RESOURCE_PROVIDERS``; this module gathers them."""

from __future__ import annotations

import importlib

from stackwright.providers.aws.base import AwsResource

SERVICE_MODULES = (
    "ec2", "iam", "eks", "s3", "dynamodb", "ecr", "route53", "sns", "cloudwatch",
    "cloudformation",
)


def resource_providers() -> list[type[AwsResource]]:
    found: list[type[AwsResource]] = []
    for name in SERVICE_MODULES:
        module = importlib.import_module(f"stackwright.providers.aws.{name}")
        found.extend(module.RESOURCE_PROVIDERS)
    return found
