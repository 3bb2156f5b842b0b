"""The pure side of the k8s provider: identity, managed-field projection, drift, diffs,
replacement rules, and what programs declare (ordering, provider instances, secrets)."""

from __future__ import annotations

from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import InputError
from stackwright.model.output import Output
from stackwright.providers import k8s, random
from stackwright.providers.k8s import manifests as m
from stackwright.providers.k8s.handlers import KubernetesProvider
from stackwright.testing import declare

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "0.5"}}}]}}},
}


def live_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as an API server returns it: defaults added, CPU normalised, status."""
    live: dict[str, Any] = {**manifest, "status": {"replicas": 2}}
    live["metadata"] = {**manifest["metadata"], "uid": "u-1", "resourceVersion": "7", "managedFields": []}
    container = {**manifest["spec"]["template"]["spec"]["containers"][0], "imagePullPolicy": "IfNotPresent",
                 "resources": {"requests": {"cpu": "500m"}}}
    live["spec"] = {**manifest["spec"], "strategy": {"type": "RollingUpdate"}, "template": {
        **manifest["spec"]["template"], "spec": {"containers": [container], "restartPolicy": "Always"}}}
    return live


def test_type_tokens_round_trip() -> None:
    assert m.type_token("apps/v1", "Deployment") == "k8s:apps/v1:Deployment"
    assert m.type_token("v1", "ConfigMap") == "k8s:core/v1:ConfigMap"
    assert m.parse_token("k8s:core/v1:ConfigMap") == ("v1", "ConfigMap")
    assert m.parse_token("k8s:example.com/v1:Widget") == ("example.com/v1", "Widget")
    with pytest.raises(m.ManifestError, match="not a Kubernetes type"):
        m.parse_token("k8s:Deployment")


def test_projection_keeps_only_declared_fields() -> None:
    projected = m.project(live_of(DEPLOYMENT), DEPLOYMENT)
    assert "status" not in projected and "strategy" not in projected["spec"]
    container = projected["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "500m"}}}


def test_no_drift_when_the_live_object_is_as_applied() -> None:
    """The server's own normalisation (0.5 → 500m) is not drift."""
    applied = m.project(live_of(DEPLOYMENT), DEPLOYMENT)
    assert m.drifted(DEPLOYMENT, applied, m.project(live_of(DEPLOYMENT), DEPLOYMENT)) == DEPLOYMENT


def test_drift_reports_live_values_of_managed_fields_only() -> None:
    applied = m.project(live_of(DEPLOYMENT), DEPLOYMENT)
    edited = live_of(DEPLOYMENT)
    edited["spec"]["replicas"] = 5
    edited["spec"]["paused"] = True  # a field we do not manage
    found = m.drifted(DEPLOYMENT, applied, m.project(edited, DEPLOYMENT))
    assert found["spec"]["replicas"] == 5
    assert "paused" not in found["spec"]
    assert found["spec"]["template"] == DEPLOYMENT["spec"]["template"]


def test_changes_name_each_leaf() -> None:
    old = {"spec": {"replicas": 2, "paused": False}}
    new = {"spec": {"replicas": 3, "minReadySeconds": 5}}
    assert list(m.changes(old, new)) == ["+ spec.minReadySeconds: 5", "- spec.paused: false",
                                         "~ spec.replicas: 2 -> 3"]


def test_importable_drops_status_and_server_metadata() -> None:
    live = live_of(DEPLOYMENT)
    live["metadata"]["annotations"] = {m.URN_ANNOTATION: "x", "team": "a"}
    live["metadata"]["labels"] = {m.MANAGED_BY_LABEL: m.MANAGER}
    found = m.importable(live)
    assert "status" not in found
    assert found["metadata"] == {"name": "web", "namespace": "shop", "annotations": {"team": "a"}}


DIFF_CASES = [
    ("replicas", lambda d: d["spec"].update(replicas=3), (), False),
    ("selector (immutable)", lambda d: d["spec"].update(selector={"matchLabels": {"app": "x"}}),
     ("manifest",), True),
    ("name (a new object)", lambda d: d["metadata"].update(name="web2"), ("manifest",), False),
    ("apiVersion only (same object)", lambda d: d.update(apiVersion="apps/v2"), (), False),
]


@pytest.mark.parametrize(("what", "edit", "replaces", "delete_first"), DIFF_CASES, ids=[c[0] for c in DIFF_CASES])
def test_diff(what: str, edit: Any, replaces: tuple[str, ...], delete_first: bool) -> None:
    handler = KubernetesProvider().resource("k8s:apps/v1:Deployment")
    import copy

    new = copy.deepcopy(DEPLOYMENT)
    edit(new)
    result = handler.diff({"manifest": DEPLOYMENT, "force": False}, {}, {"manifest": new, "force": False})
    assert result.changed == ("manifest",)
    assert result.replaces == replaces
    assert result.delete_before_replace is delete_first


def test_a_new_provider_instance_is_an_update_not_a_replacement() -> None:
    handler = KubernetesProvider().resource("k8s:apps/v1:Deployment")
    result = handler.diff({"manifest": DEPLOYMENT, "provider": "a"}, {}, {"manifest": DEPLOYMENT, "provider": "b"})
    assert result.changed == ("provider",) and result.replaces == ()


# --- declaring --------------------------------------------------------------------------


def test_objects_wait_for_their_namespace_and_custom_resources_for_their_crd() -> None:
    def program() -> None:
        # Declared before what they need: the order of declaration does not matter.
        k8s.Object("w", manifest={"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"namespace": "shop"}})
        k8s.ConfigMap("cfg", metadata={"namespace": "shop"}, data={"a": "1"})
        k8s.Namespace("shop")
        k8s.CustomResourceDefinition("widgets.example.com", spec={
            "group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced"})

    graph = declare(program)
    ns, crd = "dev::test::k8s:core/v1:Namespace::shop", \
        "dev::test::k8s:apiextensions.k8s.io/v1:CustomResourceDefinition::widgets.example.com"
    assert graph.deps["dev::test::k8s:core/v1:ConfigMap::cfg"] == [ns]
    assert sorted(graph.deps["dev::test::k8s:example.com/v1:Widget::w"]) == sorted([ns, crd])
    assert graph.deps[ns] == [] and graph.deps[crd] == []


def test_a_provider_instance_is_a_dependency_recorded_by_urn_and_inherited_by_children() -> None:
    def program() -> None:
        eks = k8s.Provider("eks", kubeconfig="apiVersion: v1\nclusters: []\n")
        k8s.ConfigMap("cfg", data={"a": "1"}, opts=sw.ResourceOptions(provider=eks))
        k8s.ConfigGroup("group", objs=[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}],
                        opts=sw.ResourceOptions(provider=eks))

    graph = declare(program)
    eks = "dev::test::k8s:index:Provider::eks"
    for urn in ("dev::test::k8s:core/v1:ConfigMap::cfg", "dev::test::k8s:core/v1:ConfigMap::group$b"):
        assert graph.resources[urn].inputs["provider"] == eks
        assert eks in graph.deps[urn]
    assert isinstance(graph.resources[eks].inputs["kubeconfig"], Output)


def test_typed_declaration_is_the_manifest_an_object_would_get() -> None:
    def program() -> None:
        k8s.RoleBinding("rb", metadata={"namespace": "a"}, subjects=[{"kind": "User", "name": "u"}],
                        role_ref={"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"})

    graph = declare(program)
    manifest = graph.resources["dev::test::k8s:rbac.authorization.k8s.io/v1:RoleBinding::rb"].inputs["manifest"]
    assert manifest == {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": {"name": "rb", "namespace": "a"},
                        "subjects": [{"kind": "User", "name": "u"}],
                        "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"}}


def test_a_typed_kind_rejects_an_unknown_field_at_declaration() -> None:
    with pytest.raises(InputError, match="ConfigMap has no field 'spec'") as caught:
        declare(lambda: k8s.ConfigMap("cfg", spec={}))
    assert caught.value.file is not None and caught.value.file.endswith("test_manifests.py")


def test_a_manifest_without_kind_is_an_error_naming_the_resource() -> None:
    with pytest.raises(InputError, match="needs kind"):
        declare(lambda: k8s.Object("x", manifest={"apiVersion": "v1"}))


def test_values_from_outputs_keep_their_secrecy_through_planning() -> None:
    """A ConfigMap fed by a password: the nested value stays secret in the plan."""
    from stackwright.model.values import Secret
    from stackwright.plan.planner import make_plan
    from stackwright.providers.registry import ProviderRegistry
    from stackwright.state.records import Snapshot

    def program() -> None:
        password = random.Password("pw", length=12)
        k8s.ConfigMap("cfg", data={"password": password.result, "plain": "x"})
        k8s.ConfigMap("known", data={"token": sw.secret("hunter2"), "plain": "x"})
        k8s.Secret("creds", string_data={"user": "admin"})

    graph = declare(program)
    plan = make_plan(graph, Snapshot("dev", "l", 0, {}, {}), ProviderRegistry())
    steps = {s.urn: s for s in plan.steps}
    creds = steps["dev::test::k8s:core/v1:Secret::creds"].inputs
    assert creds is not None and isinstance(creds["manifest"]["stringData"]["user"], Secret)
    cfg = steps["dev::test::k8s:core/v1:ConfigMap::cfg"].inputs
    assert cfg is not None and cfg["manifest"]["data"]["plain"] == "x"
    known = steps["dev::test::k8s:core/v1:ConfigMap::known"].inputs
    assert known is not None and known["manifest"]["data"] == {"token": Secret("hunter2"), "plain": "x"}


def test_declaring_kubernetes_objects_does_not_load_the_client() -> None:
    """lightkube (and its HTTP stack) load only when a provider call runs."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\nfrom stackwright.providers import k8s\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert [m for m in loaded if m.split(".")[0] in ("lightkube", "httpx2", "boto3", "botocore")] == []


def test_typed_kinds_take_lightkube_models() -> None:
    from lightkube.models.apps_v1 import DeploymentSpec
    from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
    from lightkube.models.meta_v1 import LabelSelector, ObjectMeta

    def program() -> None:
        k8s.Deployment("web", metadata=ObjectMeta(namespace="shop"), spec=DeploymentSpec(
            selector=LabelSelector(matchLabels={"app": "web"}),
            template=PodTemplateSpec(metadata=ObjectMeta(labels={"app": "web"}),
                                     spec=PodSpec(containers=[Container(name="web", image="nginx:1.27")]))))

    manifest = declare(program).resources["dev::test::k8s:apps/v1:Deployment::web"].inputs["manifest"]
    assert manifest["metadata"] == {"name": "web", "namespace": "shop"}
    assert manifest["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:1.27"}]


# --- field paths of conflicts, and handing fields over ------------------------------------


@pytest.mark.parametrize(("path", "found"), [
    (".spec.replicas", 2),
    ('.spec.template.spec.containers[name="web"].image', "nginx:1.27"),
    (".spec.template.spec.containers[0].name", "web"),
    ('.spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]',
     {"containerPort": 80, "protocol": "TCP"}),
    (".metadata.labels.app.kubernetes.io/name", "web"),
    (".metadata.labels.app", "other"),
    ('.metadata.finalizers[="a]b"]', "a]b"),
    (".spec.paused", m.ABSENT),
    ('.spec.template.spec.containers[name="db"].image', m.ABSENT),
    (".spec.template.spec.containers[broken", m.ABSENT),
    (".spec.replicas.deeper", m.ABSENT),
])
def test_a_conflicts_field_path_is_found_in_an_object(path: str, found: Any) -> None:
    """The API server names a conflicting field as `.spec.x[key="v"].y`; a label key
    may hold dots, which the object's own keys tell apart."""
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "web", "app": "other"}, "finalizers": ["a]b"]},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [
               {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}}
    assert m.at_field(obj, path) == found if found is not m.ABSENT else m.at_field(obj, path) is m.ABSENT


def test_a_managers_fields_less_ours_keep_what_only_it_owns() -> None:
    theirs = {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:team": {}}},
              "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                  'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}, "f:args": {}}}}}}}
    ours = {"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}
    assert m.without_fields(theirs, ours) == {
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:args": {}}}}}}}
    assert m.without_fields(ours, ours) == {}

