"""The AWS provider, built on boto3.

Stack config ``aws: {region: ..., endpoint: local | URL, profile: ...}``; credentials
come from the standard AWS chain. ``endpoint: local`` means the local cloud (moto's
server) started by ``stackwright local-cloud start``; the program layer resolves it to
a URL before the provider is configured (``endpoint_url``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackwright.providers.aws.base import AwsClients, AwsResource

VERSION = "0.1.0"


class AwsProvider:
    name = "aws"
    version = VERSION

    def __init__(self) -> None:
        self._clients = AwsClients({})
        self._resources: dict[str, AwsResource] = {}

    def configure(self, config: Mapping[str, Any]) -> None:
        self._clients = AwsClients(config)
        self._resources = {cls.type_token: cls(self._clients) for cls in _resource_classes()}

    def resource(self, type_token: str) -> AwsResource:
        if not self._resources:
            self.configure({})
        return self._resources[type_token]

    def types(self) -> list[str]:
        return sorted(cls.type_token for cls in _resource_classes())

    @property
    def clients(self) -> AwsClients:
        return self._clients


def _resource_classes() -> list[type[AwsResource]]:
    from stackwright.providers.aws import catalog

    return catalog.resource_providers()


def provider() -> AwsProvider:
    return AwsProvider()
