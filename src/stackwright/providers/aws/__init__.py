"""The AWS provider, built on boto3.

Stack config ``aws: {region: ..., endpoint: local | URL, profile: ...}``; credentials
come from the standard AWS chain. ``endpoint: local`` means this user's local cloud
(``localcloud``), wherever it was started from; an endpoint on the loopback interface
(``http://127.0.0.1:N``, ``http://localhost:N``) is an emulator too and gets its dummy
credentials unless the config gives others (``stackwright.emulator_endpoints``: the S3
state store follows the same rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from stackwright.emulator_endpoints import EMULATOR_CREDENTIALS, is_emulator
from stackwright.errors import ProjectError
from stackwright.providers.aws.base import AwsClients, AwsResource
from stackwright.providers.protocol import InputRule

VERSION = "0.1.0"


class AwsProvider:
    name = "aws"
    version = VERSION

    def __init__(self) -> None:
        self._clients = AwsClients({})
        self._resources: dict[str, AwsResource] = {}

    def configure(self, config: Mapping[str, Any]) -> None:
        self._clients = AwsClients(client_settings(config))
        self._resources = {cls.type_token: cls(self._clients) for cls in _resource_classes()}

    def resource(self, type_token: str) -> AwsResource:
        if not self._resources:
            self.configure({})
        return self._resources[type_token]

    def types(self) -> list[str]:
        return sorted(cls.type_token for cls in _resource_classes())

    @property
    def policy_rules(self) -> tuple[InputRule, ...]:
        from stackwright.providers.aws.policies import RULES

        return RULES

    @property
    def clients(self) -> AwsClients:
        return self._clients


def client_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The stack's ``aws:`` section with ``endpoint`` turned into ``endpoint_url`` (and
    the emulator's credentials where the endpoint is one)."""
    settings = dict(config)
    endpoint = settings.get("endpoint")
    if endpoint == "local":
        settings["endpoint_url"] = _local_cloud_url()
    elif isinstance(endpoint, str):
        settings["endpoint_url"] = endpoint
    if is_emulator(settings.get("endpoint_url")) and not settings.get("profile"):
        settings.setdefault("credentials", dict(EMULATOR_CREDENTIALS))
    return settings


def _local_cloud_url() -> str:
    from stackwright.providers.aws import localcloud

    cloud = localcloud.status()
    if cloud is None:
        raise ProjectError(
            "this stack uses the local cloud (aws.endpoint: local), which is not running",
            hint="start it with `stackwright local-cloud start` (from any folder)",
        )
    return cloud.url


def _resource_classes() -> list[type[AwsResource]]:
    from stackwright.providers.aws import catalog

    return catalog.resource_providers()


def provider() -> AwsProvider:
    return AwsProvider()
