"""The k8s object handler against the local API server over HTTPS: server-side apply
(create, update, conflict, force), dry run, health waits, drift, import reads, delete."""

from __future__ import annotations

from typing import Any

import pytest
from kube import Kube, config_map, ctx_for, handler

from stackwright.errors import ProviderError
from stackwright.providers.k8s.manifests import MANAGER, URN_ANNOTATION

pytestmark = pytest.mark.k8s


@pytest.fixture
def kube(local_cluster: Any) -> Kube:
    return Kube(local_cluster.kubeconfig)


@pytest.fixture
def objects(local_cluster: Any) -> Any:
    return handler(local_cluster.kubeconfig)


def test_create_and_update_with_server_side_apply(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = config_map(ns, "settings", {"a": "1", "b": "2"})
    c = ctx_for(manifest)
    created = objects.create(c, objects.check({"manifest": manifest}))
    assert created.id == f"{ns}/settings"
    path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    live = kube.ok("GET", path)
    assert live["data"] == {"a": "1", "b": "2"}
    assert live["metadata"]["annotations"][URN_ANNOTATION] == c.urn
    assert kube.managers(path) == {MANAGER: "Apply"}
    assert created.outputs["uid"] == live["metadata"]["uid"]

    # A field left out of the manifest is no longer ours: apply removes it.
    smaller = config_map(ns, "settings", {"a": "3"})
    objects.update(c, created.id, {"manifest": manifest}, created.outputs, objects.check({"manifest": smaller}))
    assert kube.ok("GET", path)["data"] == {"a": "3"}


def test_a_conflict_names_the_field_and_the_other_manager_and_force_takes_it_over(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = config_map(ns, "shared", {"a": "1"})
    c = ctx_for(manifest)
    created = objects.create(c, objects.check({"manifest": manifest}))
    path = f"/api/v1/namespaces/{ns}/configmaps/shared"
    code, _ = kube.apply_as("ops-team", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "shared"}, "data": {"a": "by-ops"}}, force=True)
    assert code == 200

    wanted = config_map(ns, "shared", {"a": "2"})
    with pytest.raises(ProviderError) as caught:
        objects.update(c, created.id, {"manifest": manifest}, created.outputs, objects.check({"manifest": wanted}))
    message = caught.value.message
    assert ".data.a" in message and "ops-team" in message and "force=True" in message
    assert not caught.value.retryable
    assert kube.ok("GET", path)["data"] == {"a": "by-ops"}, "a refused apply changes nothing"

    objects.update(c, created.id, {"manifest": manifest}, created.outputs,
                   objects.check({"manifest": wanted, "force": True}))
    assert kube.ok("GET", path)["data"] == {"a": "2"}


def test_create_refuses_an_object_someone_else_made(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    kube.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "theirs"}, "data": {"x": "1"}})
    manifest = config_map(ns, "theirs", {"x": "2"})
    with pytest.raises(ProviderError, match="already exists.*stackwright import k8s:core/v1:ConfigMap"):
        objects.create(ctx_for(manifest), objects.check({"manifest": manifest}))
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/theirs")["data"] == {"x": "1"}


def test_an_interrupted_create_is_found_again_only_by_its_own_resource(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = config_map(ns, "mine", {"x": "1"})
    c = ctx_for(manifest, "mine")
    objects.create(c, objects.check({"manifest": manifest}))
    found = objects.read(c, None, {"manifest": manifest}, {})
    assert found is not None and found.id == f"{ns}/mine"
    assert objects.read(ctx_for(manifest, "other"), None, {"manifest": manifest}, {}) is None


def test_an_object_of_a_kind_the_cluster_does_not_serve_reads_as_gone(objects: Any) -> None:
    """An interrupted create of such an object made nothing (recovery forgets it); a
    recorded one went with its CRD (refresh reports it deleted)."""
    manifest = {"apiVersion": "nowhere.example.com/v1", "kind": "Ghost", "metadata": {"name": "g"}}
    c = ctx_for(manifest)
    inputs = objects.check({"manifest": manifest})
    assert objects.read(c, None, inputs, {}) is None
    assert objects.read(c, "g", inputs, {"applied": manifest}) is None
    objects.delete(c, "g", inputs, {})
    with pytest.raises(ProviderError) as caught:
        objects.create(c, inputs)
    assert not caught.value.retryable and "serves no kind Ghost in nowhere.example.com/v1" in caught.value.message


def test_dry_run_explains_the_change_and_changes_nothing(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = config_map(ns, "dry", {"a": "1", "b": "2"})
    c = ctx_for(manifest)
    created = objects.create(c, objects.check({"manifest": manifest}))
    new = config_map(ns, "dry", {"a": "9", "c": "3"})
    notes = objects.explain_update(c, created.id, {"manifest": manifest}, objects.check({"manifest": new}))
    assert notes[0] == "server-side dry run:"
    assert "~ data.a: \"1\" -> \"9\"" in notes and "+ data.c: \"3\"" in notes
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/dry")["data"] == {"a": "1", "b": "2"}


def test_drift_of_managed_fields_is_read_and_other_fields_are_not(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = config_map(ns, "drifty", {"a": "1"}, labels={"team": "web"})
    c = ctx_for(manifest)
    created = objects.create(c, objects.check({"manifest": manifest}))
    inputs = objects.check({"manifest": manifest})
    same = objects.read(c, created.id, inputs, created.outputs)
    assert same is not None and same.inputs["manifest"] == manifest

    path = f"/api/v1/namespaces/{ns}/configmaps/drifty"
    kube.apply_as("kubectl-edit", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "drifty", "labels": {"team": "ops", "extra": "x"}}, "data": {"a": "1", "z": "9"}}, force=True)
    changed = objects.read(c, created.id, inputs, created.outputs)
    assert changed is not None
    assert changed.inputs["manifest"]["metadata"]["labels"] == {"team": "ops"}
    assert changed.inputs["manifest"]["data"] == {"a": "1"}


def test_health_wait_succeeds_when_the_rollout_completes(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = deployment(ns, "web", replicas=2)
    said: list[str] = []
    created = objects.create(ctx_for(manifest, log=said, timeout=120), objects.check({"manifest": manifest}))
    live = kube.ok("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert live["status"].get("availableReplicas") == 2, live["status"]
    assert created.id == f"{ns}/web"
    assert any(line.startswith(f"waiting for Deployment {ns}/web") for line in said), said


def test_health_wait_times_out_naming_the_object_and_what_it_waited_for(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = deployment(ns, "stuck", replicas=1, annotations={"stackwright.io/timeout": "3"},
                          node_selector={"no-such-node": "true"})
    with pytest.raises(ProviderError) as caught:
        objects.create(ctx_for(manifest), objects.check({"manifest": manifest}))
    message = caught.value.message
    assert f"timed out after 3s waiting for Deployment {ns}/stuck" in message
    assert "replicas available" in message or "replicas updated" in message

    skipped = deployment(ns, "unwatched", replicas=1, annotations={"stackwright.io/skip-await": "true"},
                         node_selector={"no-such-node": "true"})
    assert objects.create(ctx_for(skipped), objects.check({"manifest": skipped})).id == f"{ns}/unwatched"


def test_delete_is_foreground_and_waits_until_dependents_are_gone(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    manifest = deployment(ns, "gone", replicas=1)
    c = ctx_for(manifest, timeout=120)
    created = objects.create(c, objects.check({"manifest": manifest}))
    sets = f"/apis/apps/v1/namespaces/{ns}/replicasets"
    assert kube.ok("GET", sets)["items"], "the controller made a ReplicaSet"
    objects.delete(c, created.id, {"manifest": manifest}, created.outputs)
    assert kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/gone") is None
    assert kube.ok("GET", sets)["items"] == [], "foreground: its ReplicaSet went first"
    objects.delete(c, created.id, {"manifest": manifest}, created.outputs)  # already gone is fine


def deployment(ns: str, name: str, replicas: int, annotations: dict[str, str] | None = None,
               node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.local/app:1"}]}
    if node_selector:
        pod["nodeSelector"] = node_selector
    metadata: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def test_a_service_waits_for_a_ready_endpoint_of_its_pods(kube: Kube, objects: Any) -> None:
    ns = kube.namespace()
    said: list[str] = []
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
               "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}
    lonely = {**service, "metadata": {**service["metadata"], "name": "lonely",
                                      "annotations": {"stackwright.io/timeout": "2"}},
              "spec": {**service["spec"], "selector": {"app": "nobody"}}}
    with pytest.raises(ProviderError, match="waiting for endpoints: no ready pod matches the selector"):
        objects.create(ctx_for(lonely, "lonely"), objects.check({"manifest": lonely}))
    objects.create(ctx_for(deployment(ns, "api", replicas=1), "api", timeout=120),
                   objects.check({"manifest": deployment(ns, "api", replicas=1)}))
    created = objects.create(ctx_for(service, "svc", log=said, timeout=120), objects.check({"manifest": service}))
    assert created.id == f"{ns}/api"
