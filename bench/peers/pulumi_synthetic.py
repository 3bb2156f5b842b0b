"""The synthetic graph of bench/programs/synthetic, declared with the Pulumi Python SDK
and run in process under its mocks (`pulumi.runtime.set_mocks`), as Pulumi's own unit
tests run programs: `python pulumi_synthetic.py COUNT`.

The mocks stand in for the engine and every provider, so this is a lower bound for a
Pulumi preview: no engine process, no gRPC to a provider plugin, no state diff. Each
resource's outputs are its inputs plus ``value``, as the synthetic provider returns.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await


class SyntheticMocks(Mocks):
    """Answers every resource with an id and its inputs plus ``value``."""

    def __init__(self) -> None:
        self.created = 0

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created += 1
        return f"{args.name}-id", {**args.inputs, "value": f"{args.name}-value"}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class Thing(pulumi.CustomResource):
    """The synthetic provider's one resource type."""

    value: pulumi.Output[str]

    def __init__(self, name: str, **inputs: Any) -> None:
        super().__init__("synthetic:index:Thing", name, {**inputs, "value": None})


def declare(count: int) -> int:
    """The same shape as bench/programs/synthetic/__main__.py: networks, clusters,
    services, and per service a config object and an alarm, linked through outputs."""
    made = 0

    def thing(name: str, **inputs: Any) -> Thing:
        nonlocal made
        made += 1
        return Thing(name, **inputs)

    while made < count:
        net = thing(f"net-{made}", size=0)
        for _ in range(4):
            if made >= count:
                break
            cluster = thing(f"cluster-{made}", ref=net.value)
            for s in range(40):
                if made + 3 > count:
                    break
                svc = thing(f"svc-{made}", ref=cluster.value, size=s)
                thing(f"cfg-{made}", ref=svc.value, label="cfg")
                thing(f"alarm-{made}", ref=svc.value, label="alarm")
    while made < count:
        thing(f"extra-{made}")
    pulumi.export("count", made)
    return made


def main() -> None:
    count = int(sys.argv[1])
    mocks = SyntheticMocks()
    set_mocks(mocks, project="synthetic", stack="dev", preview=True)
    _sync_await(run_pulumi_func(lambda: declare(count) and None))
    if mocks.created != count:
        raise SystemExit(f"the mocks saw {mocks.created} resources, not {count}")
    print(f"{mocks.created} resources")


if __name__ == "__main__":
    main()
