"""The objects that tell Argo CD or Flux to apply the rendered folders, in order.

Each folder (one stack's namespace, or its cluster-scoped objects) is one Argo CD
``Application`` or one Flux ``Kustomization``. A folder whose objects wait for objects
of another folder (a Deployment for its Namespace, a release for another's CRD) comes
after it: a later ``argocd.argoproj.io/sync-wave`` for Argo CD (the Applications are
synced as an app of apps), ``spec.dependsOn`` for Flux. The cluster-scoped folder comes
before every namespace of its stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from stackwright.gitops.objects import CLUSTER_FOLDER, GitopsError, RenderedObject
from stackwright.gitops.settings import GitopsSettings
from stackwright.graph import CycleFound, Graph

Format = Literal["argocd", "flux"]
ARGO_API = "argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"


@dataclass(frozen=True)
class Folder:
    stack: str
    name: str
    """A namespace, or ``_cluster``."""
    after: tuple[str, ...]
    """The folders of the same stack it must follow."""
    wave: int
    has_secrets: bool

    @property
    def app_name(self) -> str:
        return f"{self.stack}-{'cluster-scoped' if self.name == CLUSTER_FOLDER else self.name}"


def folders(stack: str, objects: Sequence[RenderedObject]) -> list[Folder]:
    """The stack's folders in dependency order, each with its wave (0 first)."""
    where = {o.urn: o.folder for o in objects}
    names = sorted({o.folder for o in objects})
    after: dict[str, set[str]] = {name: set() for name in names}
    for obj in objects:
        after[obj.folder].update(where[d] for d in obj.deps if where.get(d, obj.folder) != obj.folder)
    if CLUSTER_FOLDER in after:
        for name in names:
            if name != CLUSTER_FOLDER and name not in after[CLUSTER_FOLDER]:
                after[name].add(CLUSTER_FOLDER)
    waves = _waves(stack, after)
    secret_folders = {o.folder for o in objects if o.manifest.get("kind") == "Secret"}
    return [Folder(stack, n, tuple(sorted(after[n])), waves[n], n in secret_folders)
            for n in sorted(names, key=lambda n: (waves[n], n))]


def _waves(stack: str, after: Mapping[str, set[str]]) -> dict[str, int]:
    try:
        order = Graph.from_mapping(after).topological_order()
    except CycleFound as exc:
        raise GitopsError(
            f"stack {stack!r}: the objects of folders {', '.join(map(str, exc.cycle))} wait for each other, "
            "so no folder can be synced first", hint="remove the dependency that points back "
            "(depends_on, or an Output used across namespaces)") from None
    waves: dict[str, int] = {}
    for name in order:
        waves[name] = 1 + max((waves[d] for d in after[name]), default=-1)
    return waves


def controller_objects(fmt: Format, stack_folders: Sequence[Folder], settings: GitopsSettings,
                       repo_path: PurePosixPath) -> dict[str, dict[str, Any]]:
    """File path (under the output folder, ``/``-separated) → object."""
    if not settings.repo_url:
        raise GitopsError(f"the {'Argo CD Applications' if fmt == 'argocd' else 'Flux Kustomizations'} "
                          "need the git repository's URL",
                          hint="set `gitops: {repo_url: https://...}` in stackwright.yaml")
    out: dict[str, dict[str, Any]] = {}
    for folder in stack_folders:
        path = repo_path / folder.stack / folder.name
        made = _application(folder, path, settings) if fmt == "argocd" else _kustomization(folder, path, settings)
        out[f"{fmt}/{folder.stack}/{folder.app_name}.yaml"] = made
    if fmt == "flux":
        out[f"{fmt}/gitrepository.yaml"] = _git_repository(settings)
    return out


def _application(folder: Folder, path: PurePosixPath, s: GitopsSettings) -> dict[str, Any]:
    destination = {"server": s.destination_server}
    if folder.name != CLUSTER_FOLDER:
        destination["namespace"] = folder.name
    return {
        "apiVersion": ARGO_API, "kind": "Application",
        "metadata": {"name": folder.app_name, "namespace": s.argocd_namespace,
                     "annotations": {"argocd.argoproj.io/sync-wave": str(folder.wave)},
                     "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
        "spec": {
            "project": s.argocd_project,
            "source": {"repoURL": s.repo_url, "targetRevision": s.revision, "path": str(path)},
            "destination": destination,
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                           "syncOptions": ["ServerSideApply=true"]},
        },
    }


def _kustomization(folder: Folder, path: PurePosixPath, s: GitopsSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": s.interval, "path": f"./{path}", "prune": True, "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": s.flux_source},
    }
    if folder.after:
        spec["dependsOn"] = [{"name": f"{folder.stack}-{'cluster-scoped' if d == CLUSTER_FOLDER else d}"}
                             for d in folder.after]
    if folder.has_secrets:
        spec["decryption"] = {"provider": "sops", "secretRef": {"name": s.flux_decryption_secret}}
    return {"apiVersion": FLUX_KUSTOMIZE_API, "kind": "Kustomization",
            "metadata": {"name": folder.app_name, "namespace": s.flux_namespace}, "spec": spec}


def _git_repository(s: GitopsSettings) -> dict[str, Any]:
    return {"apiVersion": FLUX_SOURCE_API, "kind": "GitRepository",
            "metadata": {"name": s.flux_source, "namespace": s.flux_namespace},
            "spec": {"interval": s.interval, "url": s.repo_url, "ref": {"branch": s.revision}}}
