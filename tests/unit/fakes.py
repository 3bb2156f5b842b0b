"""An in-memory provider and state store stand-ins for planner and engine tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import stackwright as sw
from stackwright.errors import ProviderError
from stackwright.providers.protocol import Created, OperationContext, ReadResult, ResourceProvider


class Thing(sw.Resource, type="fake:Thing"):
    label: str = ""
    zone: str = "a"
    ref: str = ""
    arn: sw.Output[str]


class ThingProvider(ResourceProvider):
    type_token = "fake:Thing"
    resource_class = Thing
    replace_on = frozenset({"zone"})

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.fail: dict[str, int] = {}
        """name → how many times create fails with a retryable error (-1: always, permanently)."""
        self.lock = threading.Lock()
        self.count = 0
        self.fail_update: set[str] = set()
        """Names whose updates fail permanently."""
        self.refuse_in_use = False
        """Refuse to delete an object another one refers to, as many clouds do."""
        self.before_create: Callable[[str], None] = lambda name: None
        """Called on the worker thread as a create starts, outside the lock."""

    def _maybe_fail(self, name: str) -> None:
        left = self.fail.get(name, 0)
        if left == -1:
            raise ProviderError(f"{name} is broken")
        if left > 0:
            self.fail[name] = left - 1
            raise ProviderError.transient("Throttling: Rate exceeded")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        self.before_create(ctx.name)
        with self.lock:
            self.calls["create"] += 1
            self._maybe_fail(ctx.name)
            self.count += 1
            oid = f"{ctx.name}-{self.count}"
            self.objects[oid] = dict(inputs)
            self.log.append(("create", ctx.name))
        return Created(oid, {"arn": f"arn:{oid}"})

    def read(self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> ReadResult | None:
        with self.lock:
            self.calls["read"] += 1
            if id is None or id not in self.objects:
                return None
            return ReadResult(id, dict(self.objects[id]), {"arn": f"arn:{id}"})

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        with self.lock:
            self.calls["update"] += 1
            if ctx.name in self.fail_update:
                raise ProviderError(f"{ctx.name} cannot be updated")
            self.objects[id] = dict(new_inputs)
            self.log.append(("update", ctx.name))
        return {}

    def delete(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
               outputs: Mapping[str, Any]) -> None:
        with self.lock:
            self.calls["delete"] += 1
            users = [o for o, inputs in self.objects.items() if inputs.get("ref") == f"arn:{id}"]
            if self.refuse_in_use and users:
                raise ProviderError(f"{id} is in use by {', '.join(users)}")
            self.objects.pop(id, None)
            self.log.append(("delete", ctx.name))


class FakeProviders:
    def __init__(self) -> None:
        self.thing = ThingProvider()

    def resource(self, type_token: str) -> ResourceProvider:
        assert type_token == "fake:Thing"
        return self.thing

    def versions(self) -> dict[str, str]:
        return {"fake": "1"}
