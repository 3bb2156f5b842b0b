"""`gitops status`: the live cluster against the rendered objects, as Argo CD reports it.

Per object, *sync* says whether the cluster holds what the rendering says: the object
is sent as a server-side-apply **dry run** and the fields the manifest declares are
compared between the dry run's result and the live object, so the server's defaults
and normalisation (``0.5`` CPU stored as ``500m``) never read as a difference, and
fields other managers own are not looked at. *Health* is the provider's per-kind check
(Deployment rollout, Job completion...), or ``Missing``. A namespace (a tenant) is
synced when all its objects are, and as healthy as its least healthy object.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from stackwright.errors import ProviderError
from stackwright.gitops.objects import RenderedObject
from stackwright.model.values import reveal
from stackwright.providers.k8s import health as checks
from stackwright.providers.k8s.client import Connection, Settings, connect
from stackwright.providers.k8s.manifests import changes, owner_urn, project, with_ownership


class Sync(str, Enum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"


class Health(str, Enum):
    """Argo CD's names, best first: a group is as healthy as its worst member."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"


PARALLEL = 16
"""Objects read and dry-run at once: the calls wait on the API server, not on us."""
HEALTH_OF = {checks.Status.HEALTHY: Health.HEALTHY, checks.Status.PROGRESSING: Health.PROGRESSING,
             checks.Status.DEGRADED: Health.DEGRADED}
ORDER = list(Health)


@dataclass(frozen=True)
class ObjectStatus:
    obj: RenderedObject
    sync: Sync
    health: Health
    reason: str = ""
    """What waits or fails (the health check's reason)."""
    differences: tuple[str, ...] = ()
    """``~ spec.replicas: 3 -> 2`` (live, then what a sync would make it) per differing
    field; a Secret's values are never shown."""


@dataclass(frozen=True)
class GroupStatus:
    stack: str
    namespace: str
    objects: int
    sync: Sync
    health: Health


def object_status(conn: Connection, obj: RenderedObject) -> ObjectStatus:
    ident = obj.ident
    try:
        conn.kind(ident.api_version, ident.kind)
    except ProviderError as exc:
        return ObjectStatus(obj, Sync.OUT_OF_SYNC, Health.MISSING, exc.message)
    live = conn.get(ident)
    if live is None:
        return ObjectStatus(obj, Sync.OUT_OF_SYNC, Health.MISSING, "not in the cluster")
    manifest = _as_stored(reveal(obj.manifest))
    owner = owner_urn(live)
    body = with_ownership(manifest, owner, ident.namespace) if owner else manifest
    found = checks.health(live)
    try:
        dry = conn.apply(ident, body, force=True, dry_run=True)
    except ProviderError as exc:
        return ObjectStatus(obj, Sync.OUT_OF_SYNC, HEALTH_OF[found.status], f"the dry run failed: {exc.message}")
    lines = tuple(changes(project(live, manifest), project(dry, manifest)))
    if obj.manifest.get("kind") == "Secret":
        lines = tuple(line.split(":", 1)[0] + ": (secret value differs)" for line in lines)
    return ObjectStatus(obj, Sync.OUT_OF_SYNC if lines else Sync.SYNCED, HEALTH_OF[found.status],
                        found.reason, lines)


def _as_stored(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Secret's ``stringData`` is write-only: the server stores it base64-encoded in
    ``data``, which is what the live object can be compared on."""
    if manifest.get("kind") != "Secret" or not isinstance(manifest.get("stringData"), Mapping):
        return manifest
    encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in manifest["stringData"].items()}
    stored = {k: v for k, v in manifest.items() if k != "stringData"}
    stored["data"] = {**(manifest.get("data") or {}), **encoded}
    return stored


def statuses(objects: Sequence[RenderedObject], connect_to: Callable[[Settings], Connection] = connect,
             parallel: int = PARALLEL) -> list[ObjectStatus]:
    """Every object's status, in the objects' order; one connection per cluster the
    objects go to, ``parallel`` objects read at once."""
    connections: dict[tuple[tuple[str, Any], ...], Connection] = {}
    for obj in objects:
        if obj.cluster not in connections:
            connections[obj.cluster] = connect_to(Settings.of(reveal(dict(obj.cluster))))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="gitops-status") as pool:
        return list(pool.map(lambda obj: object_status(connections[obj.cluster], obj), objects))


def by_namespace(found: Sequence[ObjectStatus]) -> list[GroupStatus]:
    groups: dict[tuple[str, str], list[ObjectStatus]] = {}
    for status in found:
        groups.setdefault((status.obj.stack, status.obj.folder), []).append(status)
    return [GroupStatus(stack, namespace, len(members),
                        Sync.SYNCED if all(m.sync is Sync.SYNCED for m in members) else Sync.OUT_OF_SYNC,
                        max((m.health for m in members), key=ORDER.index))
            for (stack, namespace), members in sorted(groups.items())]
