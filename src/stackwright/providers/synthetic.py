"""The ``synthetic`` provider: an in-memory cloud for benchmarks and engine tests.

Its config section sets per-call ``latency`` (seconds), ``fail_rate`` and
``throttle_rate`` (probabilities, 0..1) and an optional ``seed``, so a test can
measure the engine's parallelism and exercise its retry and failure paths without a
real cloud. Objects live in the provider instance only: a new process starts empty.
``call_log`` names a file that gets one JSON line per call that succeeded (operation,
URN, token, object id and outputs, process id), appended in one write, so that several
processes can share it and a test can count what the pretend cloud really did. It is
also where a process finds an object another (killed) process created: reading an
interrupted create by its token, as a real provider would look it up by name.
"""

from __future__ import annotations

import collections
import json
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackwright.dataclass_methods import Compared, FrozenCompared, frozen_record
from stackwright.errors import ConfigError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.protocol import Created, OperationContext, ReadResult, ResourceProvider
from stackwright.providers.registry import SimpleProvider

__all__ = ["SyntheticProvider", "Thing", "ThingProvider", "provider"]

VERSION = "0.1.0"
THROTTLE_MESSAGE = "Throttling: Rate exceeded"


class Thing(Resource, type="synthetic:Thing"):
    """A cloud object that costs nothing: ``label`` replaces, ``size``/``ref`` update."""

    size: int = 0
    label: str = ""
    ref: str = ""
    value: Output[str]


# Their methods are written, not generated (see stackwright.dataclass_methods); they
# behave as the ``@dataclass`` they are declared.


@frozen_record
class Faults(FrozenCompared):
    """How slow and how unreliable the pretend cloud is."""

    latency: float = 0.0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    seed: int | None = None
    call_log: str | None = None

    def __init__(self, latency: float = 0.0, fail_rate: float = 0.0, throttle_rate: float = 0.0,
                 seed: int | None = None, call_log: str | None = None) -> None:
        object.__setattr__(self, "latency", latency)
        object.__setattr__(self, "fail_rate", fail_rate)
        object.__setattr__(self, "throttle_rate", throttle_rate)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "call_log", call_log)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Faults:
        seed = config.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError(f"synthetic.seed must be an integer, got {seed!r}")
        call_log = config.get("call_log")
        if call_log is not None and not isinstance(call_log, str):
            raise ConfigError(f"synthetic.call_log must be a file path, got {call_log!r}")
        return cls(
            latency=_number(config, "latency", upper=None),
            fail_rate=_number(config, "fail_rate", upper=1.0),
            throttle_rate=_number(config, "throttle_rate", upper=1.0),
            seed=seed, call_log=call_log,
        )


def _number(config: Mapping[str, Any], key: str, upper: float | None) -> float:
    value = config.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
            or (upper is not None and value > upper):
        bound = f"between 0 and {upper:g}" if upper is not None else "a number of seconds >= 0"
        raise ConfigError(f"synthetic.{key} must be {bound}, got {value!r}")
    return float(value)


@dataclass(init=False, repr=False, eq=False)
class LiveThing(Compared):
    """One object in the pretend cloud."""

    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, urn: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> None:
        self.urn = urn
        self.inputs = inputs
        self.outputs = {} if outputs is None else outputs


class ThingProvider(ResourceProvider):
    """Keeps live objects in a dict; every public call may sleep, throttle or fail.

    The engine calls from a thread pool, so the dict, the counter and the random
    generator are only touched under ``_lock``; sleeping happens outside it so
    concurrent calls overlap as they would against a real API.
    """

    type_token = "synthetic:Thing"
    resource_class = Thing
    replace_on = frozenset({"label"})
    computed_on_update = frozenset({"value"})

    def __init__(self) -> None:
        self.objects: dict[str, LiveThing] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.faults = Faults()
        self._rng = random.Random()
        self._lock = threading.Lock()

    def configure(self, config: Mapping[str, Any]) -> None:
        faults = Faults.from_config(config)
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        """Keyed by the token, so a retried create finds its first attempt's object."""
        self._call("create")
        id = f"thing-{ctx.token}"
        with self._lock:
            live = self.objects.get(id)
            if live is None:
                live = LiveThing(ctx.urn, dict(inputs), {"value": _value(ctx, inputs)})
                self.objects[id] = live
        self._log("create", ctx, id, live.outputs)
        return Created(id=id, outputs=dict(live.outputs))

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        self._call("read")
        if id is None:
            return self._logged_create(ctx, inputs)
        with self._lock:
            live = self.objects.get(id)
            if live is None:
                return None
            return ReadResult(id=id, inputs=dict(live.inputs), outputs=dict(live.outputs))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """Upserts, so a state written by another process can still be updated."""
        self._call("update")
        with self._lock:
            live = LiveThing(ctx.urn, dict(new_inputs), {"value": _value(ctx, new_inputs)})
            self.objects[id] = live
        self._log("update", ctx, id, live.outputs)
        return dict(live.outputs)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        self._call("delete")
        with self._lock:
            self.objects.pop(id, None)
        self._log("delete", ctx, id, {})

    def _logged_create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> ReadResult | None:
        """The object an earlier process created with this token, if the log has it."""
        if self.faults.call_log is None or not os.path.exists(self.faults.call_log):
            return None
        with open(self.faults.call_log, encoding="utf-8") as log:
            found = [json.loads(line) for line in log if ctx.token in line]
        for entry in found:
            if entry["op"] == "create" and entry["token"] == ctx.token:
                with self._lock:
                    self.objects[entry["id"]] = LiveThing(ctx.urn, dict(inputs), entry["outputs"])
                return ReadResult(id=entry["id"], inputs=dict(inputs), outputs=entry["outputs"])
        return None

    def _log(self, operation: str, ctx: OperationContext, id: str, outputs: Mapping[str, Any]) -> None:
        """One line per call that succeeded, in one ``write`` (appends from several
        processes do not interleave)."""
        if self.faults.call_log is None:
            return
        line = json.dumps({"op": operation, "urn": ctx.urn, "token": ctx.token, "id": id,
                           "outputs": dict(outputs), "pid": os.getpid()}) + "\n"
        fd = os.open(self.faults.call_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def _call(self, operation: str) -> None:
        """Count the call, wait out the latency, then maybe throttle or fail."""
        with self._lock:
            self.calls[operation] += 1
            faults = self.faults
            throttled = faults.throttle_rate > 0 and self._rng.random() < faults.throttle_rate
            failed = not throttled and faults.fail_rate > 0 and self._rng.random() < faults.fail_rate
        if faults.latency:
            time.sleep(faults.latency)
        if throttled:
            raise ProviderError.transient(THROTTLE_MESSAGE)
        if failed:
            raise ProviderError(f"synthetic {operation} failed (fail_rate={faults.fail_rate:g})")


def _value(ctx: OperationContext, inputs: Mapping[str, Any]) -> str:
    """Depends on name, label and size, so an update of ``size`` visibly changes it."""
    return f"{ctx.name}:{inputs.get('label', '')}:{inputs.get('size', 0)}"


class SyntheticProvider(SimpleProvider):
    """Passes its config section to the Thing provider and exposes its counters."""

    def __init__(self, things: ThingProvider | None = None) -> None:
        self.things = things or ThingProvider()
        super().__init__("synthetic", VERSION, [self.things])

    def configure(self, config: Mapping[str, Any]) -> None:
        super().configure(config)
        self.things.configure(config)

    @property
    def calls(self) -> collections.Counter[str]:
        return self.things.calls


def provider() -> SimpleProvider:
    return SyntheticProvider()
