"""The desired graph: what one program run declared, in the form the planner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackwright.dataclass_methods import Compared
from stackwright.model.output import Leaves
from stackwright.model.resource import Component, Resource


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared.


@dataclass(init=False, repr=False, eq=False)
class DesiredGraph(Compared):
    """What one program run declared: its resources and components, the order they
    wait in, the stack's exports, and the Outputs nothing uses, whose callbacks the
    plan and the apply run still."""

    stack: str
    project: str
    resources: dict[str, Resource]
    """By URN, in declaration order."""
    deps: dict[str, list[str]]
    """For each resource URN, the resource URNs it waits for (components expanded)."""
    components: dict[str, Component] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    stack_reads: dict[Any, str] = field(default_factory=dict)
    """The values read from other stacks, and what each is (``ProgramContext.stack_reads``)."""
    leaves: Leaves = field(default_factory=Leaves, compare=False)

    def __init__(self, stack: str, project: str, resources: dict[str, Resource], deps: dict[str, list[str]],
                 components: dict[str, Component] | None = None, exports: dict[str, Any] | None = None,
                 stack_reads: dict[Any, str] | None = None, leaves: Leaves | None = None) -> None:
        self.stack = stack
        self.project = project
        self.resources = resources
        self.deps = deps
        self.components = {} if components is None else components
        self.exports = {} if exports is None else exports
        self.stack_reads = {} if stack_reads is None else stack_reads
        self.leaves = Leaves() if leaves is None else leaves
