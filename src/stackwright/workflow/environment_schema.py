"""The project file's schema with its ``environments:`` checked in full against
``Environment``. Imported only to check a project file not checked before (it loads
pydantic)."""

from __future__ import annotations

from stackwright.program.project_schema import ProjectFile, strict_model
from stackwright.workflow.environments import Environment

EnvironmentSettings = strict_model(Environment, exclude=("name",))
"""An environment as the project file writes it: its name is the key above it."""


class ProjectRules(ProjectFile):
    environments: dict[str, EnvironmentSettings | None] | None = None  # type: ignore[valid-type]
