"""Environments: the review rules a stack lives under, from ``stackwright.yaml``.

    environments:
      dev: {}
      staging:
        pause: {platform.node_groups[*].desired_size: 0}
      production:
        protected: true
        required_approvals: 1
        allow_emergency: false
        allow_self_approval: false
        approvers: [alice@example.com, "group:sre"]
        gate: staging
        policies: {required-tags: mandatory, no-public-bucket: mandatory}
        required_tags: [team, env]
    groups:
      sre: [bob@example.com, carol@example.com]

A stack's environment is ``environment:`` in its stack file, else the stack's name, so
``dev-alex`` can declare ``environment: dev`` and share dev's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackwright.errors import ProjectError
from stackwright.program.project import Project, stack_settings

Enforcement = Literal["mandatory", "advisory", "off"]


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    protected: bool = False
    required_approvals: int = 0
    allow_self_approval: bool | None = None
    """Default: false in protected environments, true elsewhere."""
    approvers: list[str] = Field(default_factory=list)
    """Identities or ``group:NAME`` entries; empty means anyone but the author."""
    github_approvals: bool = False
    """In a protected environment, also count ``/approve`` comments that the GitHub
    Actions workflow recorded (see docs/trust.md for what that trusts)."""
    web_approvals: bool = False
    """Count approvals made in the web view (`stackwright serve`) by the identity its
    trusted reverse proxy names (see docs/web.md and docs/trust.md)."""
    gate: str | None = None
    """Another environment whose latest successful apply must have used the same program."""
    policies: dict[str, Enforcement] = Field(default_factory=dict)
    """Enforcement per policy name (built-in or user); unlisted ones keep their default."""
    required_tags: list[str] = Field(default_factory=list)
    """Tag keys every taggable resource must carry (checked by ``required-tags``)."""
    pause: dict[str, Any] = Field(default_factory=dict)
    """Config paths and the values that scale the environment to zero."""
    age_recipients: list[str] | None = None
    """Whom `gitops render` encrypts this environment's Secrets for, instead of
    ``gitops.age_recipients`` (so production's open only with production's key)."""
    allow_emergency: bool = False
    """In a protected environment, let ``--emergency "reason"`` change a stack without an
    approved plan (the audit log records who, why and the plan)."""

    @property
    def self_approval_allowed(self) -> bool:
        if self.allow_self_approval is not None:
            return self.allow_self_approval
        return not self.protected

    @property
    def approvals_needed(self) -> int:
        return max(self.required_approvals, 1 if self.protected else 0)


def environment_name(project: Project, stack: str) -> str:
    value = stack_settings(project, stack).get("environment")
    return value if isinstance(value, str) and value else stack


def environment_for(project: Project, stack: str) -> Environment:
    """The rules for ``stack``; an environment the project file does not list has none."""
    name = environment_name(project, stack)
    section = project.settings.get("environments") or {}
    if not isinstance(section, Mapping):
        raise ProjectError("`environments:` must be a mapping of names to settings",
                           file=str(project.root / "stackwright.yaml"))
    raw = section.get(name) or {}
    try:
        return Environment(name=name, **raw)
    except (ValidationError, TypeError) as exc:
        raise ProjectError(f"environment {name!r}: {exc}".splitlines()[0],
                           file=str(project.root / "stackwright.yaml"),
                           hint="see the `environments:` section of the README") from None


def groups(project: Project) -> dict[str, list[str]]:
    raw = project.settings.get("groups") or {}
    return {str(k): [str(m) for m in v] for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def may_approve(project: Project, env: Environment, who: str) -> bool:
    """True when ``who`` is listed among the approvers directly or through a group."""
    if not env.approvers:
        return True
    members = groups(project)
    for entry in env.approvers:
        if entry == who or (entry.startswith("group:") and who in members.get(entry[6:], [])):
            return True
    return False
