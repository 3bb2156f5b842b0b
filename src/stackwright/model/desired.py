"""The desired graph: what one program run declared, in the form the planner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackwright.model.resource import Component, Resource


@dataclass
class DesiredGraph:
    stack: str
    project: str
    resources: dict[str, Resource]
    """By URN, in declaration order."""
    deps: dict[str, list[str]]
    """For each resource URN, the resource URNs it waits for (components expanded)."""
    components: dict[str, Component] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
