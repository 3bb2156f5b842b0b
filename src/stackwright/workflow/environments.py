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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackwright.dataclass_methods import Compared
from stackwright.program.project import PROJECT_FILE, Project, stack_settings
from stackwright.program.project_files import SCHEMA_SOURCE, Schema, check, records_folder, shown_path

Enforcement = Literal["mandatory", "advisory", "off"]


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared.


@dataclass(init=False, repr=False, eq=False)
class Environment(Compared):
    """One environment's rules. The project file is checked against these fields (see
    ``environment_schema``) before an ``Environment`` is made from it."""

    name: str = ""
    protected: bool = False
    required_approvals: int = 0
    allow_self_approval: bool | None = None
    """Default: false in protected environments, true elsewhere."""
    approvers: list[str] = field(default_factory=list)
    """Identities or ``group:NAME`` entries; empty means anyone but the author."""
    github_approvals: bool = False
    """In a protected environment, also count ``/approve`` comments that the GitHub
    Actions workflow recorded (see docs/trust.md for what that trusts)."""
    web_approvals: bool = False
    """Count approvals made in the web view (`stackwright serve`) by the identity its
    trusted reverse proxy names (see docs/web.md and docs/trust.md)."""
    gate: str | None = None
    """Another environment whose latest successful apply must have used the same program."""
    policies: dict[str, Enforcement] = field(default_factory=dict)
    """Enforcement per policy name (built-in or user); unlisted ones keep their default."""
    required_tags: list[str] = field(default_factory=list)
    """Tag keys every taggable resource must carry (checked by ``required-tags``)."""
    pause: dict[str, Any] = field(default_factory=dict)
    """Config paths and the values that scale the environment to zero."""
    age_recipients: list[str] | None = None
    """Whom `gitops render` encrypts this environment's Secrets for, instead of
    ``gitops.age_recipients`` (so production's open only with production's key)."""
    allow_emergency: bool = False
    """In a protected environment, let ``--emergency "reason"`` change a stack without an
    approved plan (the audit log records who, why and the plan)."""

    def __init__(self, name: str = "", protected: bool = False, required_approvals: int = 0,
                 allow_self_approval: bool | None = None, approvers: list[str] | None = None,
                 github_approvals: bool = False, web_approvals: bool = False, gate: str | None = None,
                 policies: dict[str, Enforcement] | None = None, required_tags: list[str] | None = None,
                 pause: dict[str, Any] | None = None, age_recipients: list[str] | None = None,
                 allow_emergency: bool = False) -> None:
        self.name = name
        self.protected = protected
        self.required_approvals = required_approvals
        self.allow_self_approval = allow_self_approval
        self.approvers = [] if approvers is None else approvers
        self.github_approvals = github_approvals
        self.web_approvals = web_approvals
        self.gate = gate
        self.policies = {} if policies is None else policies
        self.required_tags = [] if required_tags is None else required_tags
        self.pause = {} if pause is None else pause
        self.age_recipients = age_recipients
        self.allow_emergency = allow_emergency

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
    check_environments(project)
    raw = (project.settings.get("environments") or {}).get(name) or {}
    return Environment(name=name, **raw)


def _rules_model() -> Any:
    from stackwright.workflow.environment_schema import ProjectRules

    return ProjectRules


RULES_SCHEMA = Schema("project-rules", _rules_model,
                      (SCHEMA_SOURCE, __file__, str(Path(__file__).with_name("environment_schema.py"))),
                      fields_of=(Environment,))


def check_environments(project: Project) -> None:
    """Check the project file's ``environments:`` and ``groups:`` against ``Environment``
    (the program layer that loaded the file checked only that they are mappings)."""
    path = project.root / PROJECT_FILE
    check(project.settings, path.read_bytes(), shown_path(path), RULES_SCHEMA,
          records_folder(project.root))


def groups(project: Project) -> dict[str, list[str]]:
    check_environments(project)
    return dict(project.settings.get("groups") or {})


def may_approve(project: Project, env: Environment, who: str) -> bool:
    """True when ``who`` is listed among the approvers directly or through a group."""
    if not env.approvers:
        return True
    members = groups(project)
    for entry in env.approvers:
        if entry == who or (entry.startswith("group:") and who in members.get(entry[6:], [])):
            return True
    return False
