"""What the k8s provider stops before it does harm, through the real command against the
local API server: a namespace deleted with objects the program keeps in it, an import
of an object another resource manages, creates and updates the server's dry run
refuses, and a kubeconfig that cannot be used."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kube import Kube
from test_k8s_cli import HEADER, K8sProject, project

pytestmark = pytest.mark.k8s


@pytest.fixture
def kube(local_cluster: Any) -> Kube:
    return Kube(local_cluster.kubeconfig)


def configure(proj: K8sProject, **values: str) -> None:
    """The stack config as the project made it, plus ``values``."""
    stack_file = proj.root / "stacks" / "dev.yaml"
    base = stack_file.read_text().split("  # test values\n")[0]
    stack_file.write_text(base + "  # test values\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()))


def failed(proj: K8sProject, *args: str) -> str:
    done = proj.run(*args)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out
    return out


SHOP_PROGRAM = HEADER + """\
shop = sw.Config().require_str("shop")
parts = sw.Config().get_str("parts", "namespace secret web").split()
protect = sw.Config().get_bool("protect", False)
if "namespace" in parts:
    k8s.Namespace("shop", metadata={"name": shop})
if "secret" in parts:
    k8s.Secret("db", metadata={"namespace": shop}, string_data={"password": "pw"},
               opts=sw.ResourceOptions(protect=protect))
if "web" in parts:
    k8s.Deployment("web", metadata={"namespace": shop}, spec={
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}})
"""


def test_a_namespace_goes_only_with_what_the_stack_keeps_in_it(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, _ = project(tmp_path, local_cluster, kube, SHOP_PROGRAM)
    shop = f"shop-{uuid.uuid4().hex[:8]}"
    configure(proj, shop=shop)
    proj.ok("up", "--yes")
    secret, deployment = f"/api/v1/namespaces/{shop}/secrets/db", f"/apis/apps/v1/namespaces/{shop}/deployments/web"

    # The namespace alone leaves the program: its delete would destroy what is kept in it.
    configure(proj, shop=shop, parts='"secret web"')
    for command in (("preview",), ("up", "--yes")):
        out = failed(proj, *command)
        assert ("dev::kube::k8s:core/v1:Namespace::shop: the plan deletes it, which destroys what this stack "
                "keeps in it: db (k8s:core/v1:Secret), web (k8s:apps/v1:Deployment)") in out, out
        assert "or keep shop" in out, out
    assert kube.get(f"/api/v1/namespaces/{shop}") is not None and kube.get(secret) is not None

    # Protected, the Secret stops the plan that would delete it with its namespace.
    configure(proj, shop=shop, protect="true")
    proj.ok("up", "--yes")
    configure(proj, shop=shop, protect="true", parts="none")
    out = failed(proj, "preview")
    assert "dev::kube::k8s:core/v1:Secret::db: resource is protected; the plan would delete it" in out, out

    # Everything leaves: what lives in the namespace is deleted first, then the namespace.
    configure(proj, shop=shop)
    proj.ok("up", "--yes")
    configure(proj, shop=shop, parts="none")
    out = proj.ok("up", "--yes")
    assert "3 delete" in out, out
    lines = [line for line in out.splitlines() if line.strip().startswith("delete ")]
    assert "Namespace shop" in lines[-1], lines
    assert kube.get(secret) is None and kube.get(deployment) is None
    assert kube.get(f"/api/v1/namespaces/{shop}") is None
    assert "0 resources" in proj.ok("state", "ls")


CHECKED_PROGRAM = HEADER + """\
bad = sw.Config().get_str("bad", "")
k8s.ConfigMap("fine", data={"a": "1"})
deployment = {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}
if bad == "kind":
    k8s.Object("odd", manifest={"apiVersion": "v1", "kind": "ConfigMapp", "data": {"a": "1"}})
if bad == "name":
    k8s.ConfigMap("odd", metadata={"name": "Bad_Name"}, data={"a": "1"})
if bad == "replicas":
    k8s.Deployment("odd", spec={**deployment, "replicas": "two"})
if bad == "field":
    k8s.Deployment("odd", spec={**{k: v for k, v in deployment.items() if k != "selector"},
                                "selectr": deployment["selector"]})
"""


@pytest.mark.parametrize("bad, token, said", [
    ("kind", "k8s:core/v1:ConfigMapp", "the cluster serves no kind ConfigMapp in v1"),
    ("name", "k8s:core/v1:ConfigMap", 'metadata.name: Invalid value: "Bad_Name"'),
    ("replicas", "k8s:apps/v1:Deployment", ".spec.replicas: expected numeric (int or float), got string"),
    ("field", "k8s:apps/v1:Deployment", ".spec.selectr: field not declared in schema"),
])
def test_a_create_the_server_would_refuse_fails_the_preview_and_up_applies_nothing(
        tmp_path: Path, local_cluster: Any, kube: Kube, bad: str, token: str, said: str) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, CHECKED_PROGRAM)
    configure(proj, bad=bad)
    for command in (("preview",), ("up", "--yes")):
        out = failed(proj, *command)
        assert f"error: dev::kube::{token}::odd: server-side dry run refused it: " in out and said in out, out
    assert kube.get(f"/api/v1/namespaces/{ns}/configmaps/fine") is None, "up applied nothing"
    assert "0 resources" in proj.ok("state", "ls")


NEEDS_PROGRAM = HEADER + """\
space, group = sw.Config().require_str("space"), sw.Config().require_str("group")
k8s.ConfigMap("early", metadata={"namespace": space}, data={"a": "1"})
k8s.Namespace("space", metadata={"name": space})
k8s.Object("w", manifest={"apiVersion": f"{group}/v1", "kind": "Limited",
                          "spec": {"size": sw.Config().get_int("size", 3)}})
if sw.Config().get_bool("crd", True):
    k8s.CustomResourceDefinition(f"limiteds.{group}", spec={
        "group": group, "scope": "Cluster", "names": {"kind": "Limited", "plural": "limiteds"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": {
                "size": {"type": "integer", "maximum": 10}}}}}}}]})
"""


def test_what_a_dry_run_cannot_judge_yet_is_said_and_an_update_it_refuses_fails(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, _ = project(tmp_path, local_cluster, kube, NEEDS_PROGRAM)
    space, group = f"space-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}.example.com"
    configure(proj, space=space, group=group)
    out = proj.ok("preview")
    assert (f"no server-side dry run: namespace {space} does not exist on the server yet "
            "(this plan first creates k8s:core/v1:Namespace space)") in out, out
    assert (f"no server-side dry run: the cluster serves no kind Limited in {group}/v1 (this plan first "
            f"creates k8s:apiextensions.k8s.io/v1:CustomResourceDefinition limiteds.{group})") in out, out
    assert out.count("server-side dry run: accepted") == 2, out  # the namespace and the CRD
    proj.ok("up", "--yes")

    # An update the server refuses (over the CRD's maximum) fails the preview and the up.
    configure(proj, space=space, group=group, size="30")
    for command in (("preview",), ("up", "--yes")):
        out = failed(proj, *command)
        assert f"error: dev::kube::k8s:{group}/v1:Limited::w: server-side dry run refused it: " in out, out
        assert "spec.size" in out and "less than or equal to 10" in out, out
    assert kube.ok("GET", f"/apis/{group}/v1/limiteds/w")["spec"] == {"size": 3}

    # The CRD leaves while its custom resource stays: refused, it would go with it.
    configure(proj, space=space, group=group, crd="false")
    out = failed(proj, "preview")
    assert f"destroys what this stack keeps in it: w (k8s:{group}/v1:Limited)" in out, out
    configure(proj, space=space, group=group)
    proj.ok("destroy", "--yes")


def test_import_refuses_an_object_a_resource_already_manages(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, HEADER + 'k8s.ConfigMap("c", data={"a": "1"})\n')
    proj.ok("up", "--yes")
    for given in (f"{ns}/c", "c"):
        out = failed(proj, "import", "--yes", "k8s:core/v1:ConfigMap", "c2", given)
        assert (f"k8s:core/v1:ConfigMap {ns}/c is already managed by this stack, as "
                "dev::kube::k8s:core/v1:ConfigMap::c") in out, out
        assert "aliases=['dev::kube::k8s:core/v1:ConfigMap::c']" in out, out
    assert "ConfigMap::c2" not in proj.ok("state", "ls")

    stacks = proj.root / "stacks"
    (stacks / "prod.yaml").write_text((stacks / "dev.yaml").read_text())
    proj.ok("stack", "init", "prod")
    out = failed(proj, "import", "--yes", "--stack", "prod", "k8s:core/v1:ConfigMap", "c", f"{ns}/c")
    assert (f"k8s:core/v1:ConfigMap {ns}/c is managed by stack 'dev' of project 'kube', as "
            "dev::kube::k8s:core/v1:ConfigMap::c") in out, out


def test_a_kubeconfig_that_cannot_be_used_is_one_configuration_error(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    """`up` and `refresh` fail on it in one line; a preview, useful without access to
    the cluster, says in one line why there was no dry run."""
    proj, _ = project(tmp_path, local_cluster, kube, HEADER + 'k8s.ConfigMap("c", data={"a": "1"})\n')
    proj.ok("up", "--yes")
    proj.write(HEADER + 'k8s.ConfigMap("c", data={"a": "2"})\nk8s.ConfigMap("d", data={"a": "2"})\n')
    stack_file = proj.root / "stacks" / "dev.yaml"
    good = stack_file.read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text("not: [a kubeconfig\n")
    stack_file.write_text(good.replace(str(local_cluster.kubeconfig), str(broken)))
    said = (f"kubeconfig {broken} is not valid YAML (line 2, column 1): expected ',' or ']', but got "
            "'<stream end>', while parsing a flow sequence started at line 1, column 6")
    for command in (("up", "--yes"), ("refresh",)):
        out = failed(proj, *command)
        assert said in out and "<unicode string>" not in out and "dry run" not in out, out
        assert out.count(said) == 1, out
    assert "hint: set `k8s: {kubeconfig: PATH}`" in failed(proj, "up", "--yes")
    out = proj.ok("preview")
    assert f"no dry run: {said}" in out and "<unicode string>" not in out and "refused" not in out, out
    assert out.count(said) == 2, "one line for each object"

    missing = tmp_path / "missing.yaml"
    stack_file.write_text(good.replace(str(local_cluster.kubeconfig), str(missing)))
    out = failed(proj, "up", "--yes")
    assert f"error: cannot read the kubeconfig {missing}: No such file or directory" in out, out
    out = proj.ok("preview")
    assert f"no dry run: cannot read the kubeconfig {missing}: No such file or directory" in out, out
    assert "refused" not in out, out
