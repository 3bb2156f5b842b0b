"""Health of a live Kubernetes object, per kind: a pure function of the object.

``Healthy`` ends the wait after an apply, ``Progressing`` keeps it going (its reason
is what the progress display shows), ``Degraded`` fails the step at once: waiting
longer would not help (a failed Job, a claim whose class does not exist...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Status(str, Enum):
    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"


@dataclass(frozen=True)
class Health:
    status: Status
    reason: str = ""


HEALTHY = Health(Status.HEALTHY)


def progressing(reason: str) -> Health:
    return Health(Status.PROGRESSING, reason)


def degraded(reason: str) -> Health:
    return Health(Status.DEGRADED, reason)


def health(live: Mapping[str, Any]) -> Health:
    """How far the object is from serving what was applied. Kinds without a check
    are healthy once the API server has stored them."""
    check = CHECKS.get(str(live.get("kind", "")))
    return check(live) if check is not None else HEALTHY


def _status(live: Mapping[str, Any]) -> Mapping[str, Any]:
    status = live.get("status")
    return status if isinstance(status, Mapping) else {}


def _spec(live: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = live.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _generation_seen(live: Mapping[str, Any]) -> bool:
    generation = (live.get("metadata") or {}).get("generation")
    observed = _status(live).get("observedGeneration")
    return generation is None or (isinstance(observed, int) and observed >= generation)


def _condition(live: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in _status(live).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _is_true(live: Mapping[str, Any], kind: str) -> bool:
    condition = _condition(live, kind)
    return condition is not None and condition.get("status") == "True"


def deployment(live: Mapping[str, Any]) -> Health:
    if not _generation_seen(live):
        return progressing("waiting for the controller to observe the new generation")
    progress = _condition(live, "Progressing")
    if progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
        return degraded(f"rollout stalled: {progress.get('message', 'progress deadline exceeded')}")
    wanted = _spec(live).get("replicas", 1)
    status = _status(live)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated < wanted:
        return progressing(f"{updated} of {wanted} replicas updated")
    if total > updated:
        return progressing(f"{total - updated} old replicas pending termination")
    if available < wanted:
        return progressing(f"{available} of {wanted} updated replicas available")
    return HEALTHY


def stateful_set(live: Mapping[str, Any]) -> Health:
    if not _generation_seen(live):
        return progressing("waiting for the controller to observe the new generation")
    wanted = _spec(live).get("replicas", 1)
    status = _status(live)
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    strategy = (_spec(live).get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate" and updated < wanted:
        return progressing(f"{updated} of {wanted} replicas updated")
    if ready < wanted:
        return progressing(f"{ready} of {wanted} replicas ready")
    if strategy == "RollingUpdate" and status.get("currentRevision") != status.get("updateRevision"):
        return progressing("waiting for the update revision to become current")
    return HEALTHY


def daemon_set(live: Mapping[str, Any]) -> Health:
    if not _generation_seen(live):
        return progressing("waiting for the controller to observe the new generation")
    status = _status(live)
    wanted = status.get("desiredNumberScheduled", 0)
    updated, available = status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0)
    if updated < wanted:
        return progressing(f"{updated} of {wanted} pods updated")
    if available < wanted:
        return progressing(f"{available} of {wanted} pods available")
    return HEALTHY


def job(live: Mapping[str, Any]) -> Health:
    failed = _condition(live, "Failed")
    if failed is not None and failed.get("status") == "True":
        return degraded(f"job failed: {failed.get('reason', '')} {failed.get('message', '')}".strip())
    if _is_true(live, "Complete"):
        return HEALTHY
    status = _status(live)
    wanted = _spec(live).get("completions", 1)
    return progressing(f"{status.get('succeeded', 0)} of {wanted} completions, {status.get('active', 0)} active")


def persistent_volume_claim(live: Mapping[str, Any]) -> Health:
    phase = _status(live).get("phase")
    if phase == "Bound":
        return HEALTHY
    if phase == "Lost":
        return degraded("the claim lost its volume")
    return progressing(f"waiting for the claim to be bound (phase {phase or 'unknown'})")


def service(live: Mapping[str, Any]) -> Health:
    """A LoadBalancer needs an ingress address; endpoints are checked by the caller,
    which reads them from another object (``service_endpoints``)."""
    spec = _spec(live)
    if spec.get("type") == "LoadBalancer":
        ingress = (_status(live).get("loadBalancer") or {}).get("ingress") or []
        if not ingress:
            return progressing("waiting for the load balancer's ingress address")
    return HEALTHY


def service_endpoints(live: Mapping[str, Any], slices: Sequence[Mapping[str, Any]]) -> Health:
    """A Service with a selector is healthy once some EndpointSlice lists a ready
    address; one without a selector (or of type ExternalName) needs none."""
    spec = _spec(live)
    if not spec.get("selector") or spec.get("type") == "ExternalName":
        return service(live)
    ready = [
        endpoint for s in slices for endpoint in s.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready", True) is not False
    ]
    if not ready:
        return progressing("waiting for endpoints: no ready pod matches the selector")
    return service(live)


def custom_resource_definition(live: Mapping[str, Any]) -> Health:
    if _is_true(live, "Established"):
        return HEALTHY
    if (condition := _condition(live, "NamesAccepted")) is not None and condition.get("status") == "False":
        return degraded(f"names not accepted: {condition.get('message', '')}")
    return progressing("waiting for the CustomResourceDefinition to be established")


CHECKS: dict[str, Callable[[Mapping[str, Any]], Health]] = {
    "Deployment": deployment,
    "StatefulSet": stateful_set,
    "DaemonSet": daemon_set,
    "Job": job,
    "PersistentVolumeClaim": persistent_volume_claim,
    "Service": service,
    "CustomResourceDefinition": custom_resource_definition,
}
