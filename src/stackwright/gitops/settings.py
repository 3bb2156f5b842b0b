"""The ``gitops:`` section of ``stackwright.yaml``: where the rendered files live in git
and whom Secrets are encrypted for.

    gitops:
      repo_url: https://github.com/acme/platform.git
      revision: main
      path: deploy                  # the folder `gitops render --out` writes, inside the repo
      age_recipients: [age1...]     # an environment's `age_recipients` replaces these
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackwright.errors import ProjectError
from stackwright.program.project import Project

DEFAULT_SERVER = "https://kubernetes.default.svc"


class GitopsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo_url: str | None = None
    """The git repository Argo CD or Flux reads."""
    revision: str = "main"
    path: str | None = None
    """The output folder's path inside the repository; default: found from git."""
    age_recipients: list[str] = Field(default_factory=list)
    destination_server: str = DEFAULT_SERVER
    """Where Argo CD Applications deploy (the cluster Argo CD runs in, by default)."""
    argocd_namespace: str = "argocd"
    argocd_project: str = "default"
    flux_namespace: str = "flux-system"
    flux_source: str = "stackwright"
    """The name of the Flux GitRepository the Kustomizations read."""
    flux_decryption_secret: str = "sops-age"
    """The Secret in ``flux_namespace`` holding the age identity (``age.agekey``)."""
    interval: str = "10m"


def gitops_settings(project: Project) -> GitopsSettings:
    raw = project.settings.get("gitops") or {}
    if not isinstance(raw, Mapping):
        raise ProjectError("`gitops:` must be a mapping", file=str(project.root / "stackwright.yaml"))
    try:
        return GitopsSettings(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProjectError(f"gitops.{where}: {first['msg']}", file=str(project.root / "stackwright.yaml"),
                           hint="see docs/gitops.md for the settings") from None
