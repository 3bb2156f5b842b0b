"""Setup shared by the AWS provider tests; the emulator itself is ``tests/aws_emulator.py``.

Fixtures: ``handlers(type_token)`` is a resource provider as the engine gets it, and
``boto(service)`` a boto3 client of our own, to check what a handler did without
trusting it. Helpers, imported with ``from aws.conftest import ...``: ``ctx``,
``unique``, ``assert_round_trip``, ``tag_map`` and ``emulator_client``.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from stackwright.providers.aws import localcloud, provider
from stackwright.providers.aws.base import AwsClients, AwsResource
from stackwright.providers.protocol import OperationContext


def ctx(type_token: str, name: str = "main", token: str = "tok-1") -> OperationContext:
    return OperationContext(urn=f"dev::t::{type_token}::{name}", name=name, token=token)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_round_trip(h: AwsResource, c: OperationContext, id: str, inputs: dict[str, Any]) -> None:
    """read reports exactly the declared inputs, in the Resource class's shape."""
    live = h.read(c, id, inputs, {})
    assert live is not None and live.id == id
    assert dict(live.inputs) == inputs
    assert h.diff(inputs, {}, live.inputs).changed == ()
    assert h.resource_class is not None
    assert set(live.inputs) == set(h.resource_class.input_specs())


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {t["Key"]: t["Value"] for t in tags}


def emulator_client(endpoint: str, service: str) -> Any:
    """A boto3 client against the emulator (or a proxy in front of it) at ``endpoint``."""
    creds = localcloud.LOCAL_CREDENTIALS
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["access_key_id"],
                        aws_secret_access_key=creds["secret_access_key"])


def make_handler(config: dict[str, Any], type_token: str) -> AwsResource:
    """The handler as the engine gets it; direct when sibling service modules are missing."""
    try:
        p = provider()
        p.configure(config)
        return p.resource(type_token)
    except ModuleNotFoundError:  # another engineer's service module is not written yet
        module = importlib.import_module(f"stackwright.providers.aws.{type_token.split(':')[1]}")
        cls = next(c for c in module.RESOURCE_PROVIDERS if c.type_token == type_token)
        return cls(AwsClients(config))


@pytest.fixture
def handlers(aws_config: dict[str, Any]) -> Callable[[str], AwsResource]:
    """``handlers(type_token)``: the handler as the engine gets it."""
    return lambda type_token: make_handler(aws_config, type_token)


@pytest.fixture
def boto(aws_config: dict[str, Any]) -> Callable[[str], Any]:
    """``boto(service)``: a boto3 client of our own against the emulator."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = emulator_client(str(aws_config["endpoint_url"]), service)
        return clients[service]

    return client
