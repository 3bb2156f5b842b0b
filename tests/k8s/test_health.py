"""Health per kind as a table: live object → healthy / progressing (reason) / degraded."""

from __future__ import annotations

from typing import Any

import pytest

from stackwright.providers.k8s.health import Status, health, service_endpoints


def obj(kind: str, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
        generation: int | None = 2) -> dict[str, Any]:
    metadata = {"name": "x"} if generation is None else {"name": "x", "generation": generation}
    return {"kind": kind, "metadata": metadata, "spec": spec or {}, "status": status or {}}


def cond(kind: str, status: str = "True", **extra: str) -> dict[str, Any]:
    return {"type": kind, "status": status, **extra}


CASES = [
    # (what, live object, expected status, words the reason must contain)
    ("deployment not yet observed", obj("Deployment", {"replicas": 2}, {"observedGeneration": 1}),
     Status.PROGRESSING, "observe the new generation"),
    ("deployment rolling", obj("Deployment", {"replicas": 2},
                               {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1}),
     Status.PROGRESSING, "1 of 2 replicas updated"),
    ("deployment old pods left", obj("Deployment", {"replicas": 2},
                                     {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2}),
     Status.PROGRESSING, "old replicas"),
    ("deployment unavailable", obj("Deployment", {"replicas": 2},
                                   {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                                    "availableReplicas": 1}),
     Status.PROGRESSING, "1 of 2 updated replicas available"),
    ("deployment done", obj("Deployment", {"replicas": 2},
                            {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
     Status.HEALTHY, ""),
    ("deployment stalled", obj("Deployment", {"replicas": 1}, {
        "observedGeneration": 2, "conditions": [cond("Progressing", "False", reason="ProgressDeadlineExceeded")]}),
     Status.DEGRADED, "stalled"),
    ("statefulset not ready", obj("StatefulSet", {"replicas": 3},
                                  {"observedGeneration": 2, "updatedReplicas": 3, "readyReplicas": 2}),
     Status.PROGRESSING, "2 of 3 replicas ready"),
    ("statefulset done", obj("StatefulSet", {"replicas": 1}, {
        "observedGeneration": 2, "updatedReplicas": 1, "readyReplicas": 1,
        "currentRevision": "r2", "updateRevision": "r2"}), Status.HEALTHY, ""),
    ("daemonset partial", obj("DaemonSet", {}, {"observedGeneration": 2, "desiredNumberScheduled": 3,
                                                "updatedNumberScheduled": 3, "numberAvailable": 1}),
     Status.PROGRESSING, "1 of 3 pods available"),
    ("daemonset done", obj("DaemonSet", {}, {"observedGeneration": 2, "desiredNumberScheduled": 3,
                                             "updatedNumberScheduled": 3, "numberAvailable": 3}), Status.HEALTHY, ""),
    ("job running", obj("Job", {"completions": 1}, {"active": 1}), Status.PROGRESSING, "0 of 1 completions"),
    ("job complete", obj("Job", {}, {"conditions": [cond("Complete")]}), Status.HEALTHY, ""),
    ("job failed", obj("Job", {}, {"conditions": [cond("Failed", reason="BackoffLimitExceeded")]}),
     Status.DEGRADED, "BackoffLimitExceeded"),
    ("pvc pending", obj("PersistentVolumeClaim", {}, {"phase": "Pending"}), Status.PROGRESSING, "bound"),
    ("pvc bound", obj("PersistentVolumeClaim", {}, {"phase": "Bound"}), Status.HEALTHY, ""),
    ("pvc lost", obj("PersistentVolumeClaim", {}, {"phase": "Lost"}), Status.DEGRADED, "lost"),
    ("load balancer without address", obj("Service", {"type": "LoadBalancer"}, {}),
     Status.PROGRESSING, "ingress address"),
    ("load balancer with address", obj("Service", {"type": "LoadBalancer"},
                                       {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}), Status.HEALTHY, ""),
    ("crd pending", obj("CustomResourceDefinition", {}, {}), Status.PROGRESSING, "established"),
    ("crd established", obj("CustomResourceDefinition", {}, {"conditions": [cond("Established")]}),
     Status.HEALTHY, ""),
    ("crd names refused", obj("CustomResourceDefinition", {}, {
        "conditions": [cond("NamesAccepted", "False", message="plural taken")]}), Status.DEGRADED, "plural taken"),
    ("a kind without a check", obj("ConfigMap"), Status.HEALTHY, ""),
]


@pytest.mark.parametrize(("what", "live", "status", "words"), CASES, ids=[c[0] for c in CASES])
def test_health(what: str, live: dict[str, Any], status: Status, words: str) -> None:
    found = health(live)
    assert found.status is status, f"{what}: {found}"
    assert words in found.reason


def test_a_service_with_a_selector_waits_for_a_ready_endpoint() -> None:
    service = obj("Service", {"selector": {"app": "web"}})
    assert service_endpoints(service, []).status is Status.PROGRESSING
    not_ready = [{"endpoints": [{"conditions": {"ready": False}}]}]
    assert "no ready pod" in service_endpoints(service, not_ready).reason
    ready = [{"endpoints": [{"conditions": {"ready": True}}]}]
    assert service_endpoints(service, ready).status is Status.HEALTHY
    assert service_endpoints(obj("Service", {}), []).status is Status.HEALTHY
