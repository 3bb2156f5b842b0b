"""Policies: rules a plan must satisfy before it may be applied.

Interface used by preview, `plan` and `apply` (the implementation fills in the rules):
``evaluate`` returns every violation; ``blocking`` keeps the mandatory ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwright.plan.plan import Plan
from stackwright.program.project import Project
from stackwright.workflow.environments import Environment


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None = None
    mandatory: bool = True


def evaluate(plan: Plan, project: Project, env: Environment, *, allow_destroy: bool = False) -> list[Violation]:
    """Every violation of the policies that apply to ``env``."""
    return []


def blocking(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.mandatory]
