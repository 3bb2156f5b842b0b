"""Helpers for unit-testing Stackwright programs and components without any cloud.

    from stackwright.testing import declare

    graph = declare(lambda: MyComponent("web"), config={"replicas": 2})
    assert graph.resources["dev::test::aws:s3:Bucket::web$assets"].inputs["versioning"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stackwright.model import context
from stackwright.model.context import ConfigSource, ProgramContext
from stackwright.model.desired import DesiredGraph
from stackwright.program.runner import desired_graph


def declare(
    program: Callable[[], Any], *, stack: str = "dev", project: str = "test",
    config: Mapping[str, Any] | None = None,
) -> DesiredGraph:
    """Run ``program`` as a Stackwright program and return what it declared."""
    ctx = ProgramContext(stack=stack, project=project,
                         config=ConfigSource(data=dict(config or {}), file=f"stacks/{stack}.yaml"))
    with context.activate(ctx):
        program()
        ctx.finish()
    return desired_graph(ctx)
