"""Drift made outside Stackwright with another field manager (a `kubectl edit`, a client
patch), put back by the command the refresh points to, and objects adopted by `import`,
against the local API server through the real command.

A non-apply change of a field moves its ownership to the manager that made it, so a
plain server-side apply of the declared value conflicts. The declared state wins for the
fields it restores (as Argo CD and Flux have it): an update takes back, with force,
exactly the fields whose live value is no longer the one Stackwright applied; a conflict
on any other field stays an error unless `force=True`. `import` takes over the fields the
printed code declares, changing no value.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_servers import EXAMPLE_CHART
from k8s.test_helm_apply import Project as HelmProject
from k8s.test_k8s_cli import HEADER, K8sProject, project
from kube import Kube
from support import cli_command, cli_env

pytestmark = pytest.mark.k8s

CLIENT = "OpenAPI-Generator"
"""The field manager of the official Python client's `patch_namespaced_*` calls."""


class Patcher(Kube):
    """Kube plus the calls another client makes: a strategic merge patch (what
    `AppsV1Api().patch_namespaced_deployment` sends) and a create, as a named manager."""

    def send(self, method: str, path: str, body: Any, manager: str, content_type: str) -> Any:
        request = urllib.request.Request(f"{self.server}{path}?fieldManager={manager}",
                                         data=json.dumps(body).encode(), method=method,
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()!r}") from None

    def patch(self, path: str, body: Any, manager: str = CLIENT) -> Any:
        return self.send("PATCH", path, body, manager, "application/strategic-merge-patch+json")

    def create(self, path: str, body: Any, manager: str) -> Any:
        return self.send("POST", path, body, manager, "application/json")

    def owned(self, path: str, manager: str) -> str:
        """The fields ``manager`` owns in the object (its managedFields entries, as JSON)."""
        live = self.ok("GET", path)
        return json.dumps([e.get("fieldsV1") for e in live["metadata"].get("managedFields") or []
                           if e["manager"] == manager])


@pytest.fixture
def kube(local_cluster: Any) -> Patcher:
    return Patcher(local_cluster.kubeconfig)


DEPLOYMENT = HEADER + """\
cfg = sw.Config()
k8s.Deployment("web", force=cfg.get_bool("force", False), spec={
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
        "name": "web", "image": "nginx:1.27"}]}}})
k8s.ConfigMap("settings", force=cfg.get_bool("force", False),
              data={"a": "1", **({"b": "mine"} if cfg.get_bool("b", False) else {})})
"""


def configure(proj: K8sProject, **values: Any) -> None:
    stack_file = proj.root / "stacks" / "dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update(values)
    stack_file.write_text(yaml.safe_dump(document))


def test_a_client_patch_of_a_deployment_is_put_back_by_up(tmp_path: Path, local_cluster: Any, kube: Patcher) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, DEPLOYMENT)
    proj.ok("up", "--yes")
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    kube.patch(path, {"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28"}]}}}})

    out = proj.ok("refresh")
    assert "manifest.spec.replicas: 2 => 3" in out and "`stackwright up` puts the declared values back" in out, out
    out = proj.ok("preview", "--diff")
    assert (f'takes over .spec.replicas, .spec.template.spec.containers[name="web"].image from {CLIENT}: '
            "changed outside Stackwright since its last apply; the declared value wins") in out, out
    assert "~ spec.replicas: 3 -> 2" in out and "refused" not in out, out

    out = proj.ok("up", "--yes")
    assert "1 update" in out, out
    live = kube.ok("GET", path)
    assert live["spec"]["replicas"] == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "f:replicas" not in kube.owned(path, CLIENT) and "f:image" not in kube.owned(path, CLIENT)
    assert "no drift" in proj.ok("refresh")
    assert "No changes." in proj.ok("preview")


def test_a_conflict_on_a_field_stackwright_never_applied_stays_an_error_unless_force(
        tmp_path: Path, local_cluster: Any, kube: Patcher) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, DEPLOYMENT)
    proj.ok("up", "--yes")
    path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    kube.patch(path, {"data": {"a": "patched"}})  # drift of a field Stackwright applied
    kube.apply_as("other", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                                  "data": {"b": "theirs"}})  # a field it never applied
    configure(proj, b=True)

    done = proj.run("up", "--yes")  # planned against the recorded state: it does not restore .data.a
    assert done.returncode == 1 and "conflict: " in done.stderr, done.stderr
    assert ".data.a (managed by OpenAPI-Generator)" in done.stderr and ".data.b (managed by other)" in done.stderr
    assert "hint: .data.a changed outside Stackwright, which this plan did not read" in done.stderr, done.stderr

    assert "data.a" in proj.ok("refresh")  # planned against the live object: .data.a is put back
    refused = proj.run("preview", "--diff")  # the dry run finds the conflict: the preview fails
    assert refused.returncode == 1 and ".data.b (managed by other)" in refused.stderr, refused.stderr
    assert ".data.a" not in refused.stderr, "the drifted field alone would have been taken back"
    done = proj.run("up", "--yes")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "conflict: .data.b (managed by other)" in done.stderr, done.stderr
    assert ".data.a" not in done.stderr, "the drifted field alone would have been taken back"
    assert kube.ok("GET", path)["data"] == {"a": "patched", "b": "theirs"}

    configure(proj, force=True)
    proj.ok("up", "--yes")
    assert kube.ok("GET", path)["data"] == {"a": "1", "b": "mine"}


def test_import_takes_over_the_fields_the_printed_code_declares(
        tmp_path: Path, local_cluster: Any, kube: Patcher) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, HEADER)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/handmade"
    kube.create(f"/apis/apps/v1/namespaces/{ns}/deployments", {  # `kubectl create deployment`
        "metadata": {"name": "handmade", "labels": {"app": "handmade"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "handmade"}}, "template": {
            "metadata": {"labels": {"app": "handmade"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}, "kubectl-create")
    before = kube.ok("GET", path)

    done = subprocess.run([*cli_command(), "import", "--yes", "k8s:apps/v1:Deployment", "handmade",
                           f"{ns}/handmade"], cwd=proj.root, env=cli_env(), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "takes over the fields the printed code declares from their field managers" in done.stderr
    assert "took over the fields the code declares from kubectl-create" in done.stderr, done.stderr
    assert "no value changed" in done.stderr
    after = kube.ok("GET", path)
    assert after["spec"] == before["spec"] and after["metadata"]["labels"] == before["metadata"]["labels"]
    assert "f:image" not in kube.owned(path, "kubectl-create")

    code = done.stdout[done.stdout.index("from stackwright.providers import k8s"):]
    proj.write(HEADER + "\n" + code + "\n")
    assert "No changes." in proj.ok("preview")
    proj.write(HEADER + "\n" + code.replace("'nginx:1.27'", "'nginx:1.28'") + "\n")
    out = proj.ok("up", "--yes")
    assert "1 update" in out, out
    assert kube.ok("GET", path)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"


def test_a_patched_value_of_a_helm_rendered_object_is_put_back(
        local_cluster: Any, helm_binary: str, tmp_path: Path) -> None:
    kubeconfig = str(local_cluster.kubeconfig)
    kube = Patcher(Path(kubeconfig))
    release = HelmProject(tmp_path / "apps", kubeconfig, "drift-ns", {"path": str(EXAMPLE_CHART)})
    release.ok("up", "--yes")
    path = "/api/v1/namespaces/drift-ns/configmaps/web-app"
    assert kube.ok("GET", path)["data"]["LOG_LEVEL"] == "info"
    kube.patch(path, {"data": {"LOG_LEVEL": "debug"}})
    assert "LOG_LEVEL" in release.ok("refresh")
    assert f"takes over .data.LOG_LEVEL from {CLIENT}" in release.ok("preview", "--diff")
    assert "1 update" in release.ok("up", "--yes")
    assert kube.ok("GET", path)["data"]["LOG_LEVEL"] == "info"
    release.ok("destroy", "--yes")


def test_a_protected_stack_puts_kubernetes_drift_back_through_an_approved_plan(
        tmp_path: Path, local_cluster: Any, kube: Patcher) -> None:
    from workflow.test_plans_approvals import ssh_key

    proj, ns = project(tmp_path, local_cluster, kube, DEPLOYMENT)
    (proj.root / "stackwright.yaml").write_text(
        "name: kube\nmain: __main__.py\nenvironments:\n  dev: {protected: true, required_approvals: 1}\n")
    key, public = ssh_key(tmp_path / "keys", "bob")
    (proj.root / "allowed_signers").write_text(f'bob namespaces="stackwright-plan" {public}\n')

    def approved_apply(name: str, *plan_args: str) -> str:
        out = proj.ok("plan", "--out", f"../{name}", *plan_args)
        proj.ok("approve", f"../{name}", "--as", "bob", "--key", str(key))
        proj.ok("apply", f"../{name}", "--yes")
        return out

    approved_apply("first.plan")
    path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    kube.patch(path, {"data": {"a": "patched"}})
    out = proj.ok("refresh")
    assert "manifest.data.a" in out and "`stackwright plan --out FILE`" in out, out
    assert "update" in proj.ok("preview")
    out = approved_apply("repair.plan", "--diff")
    assert '~ manifest.data.a: "patched" => "1"' in out and f"takes over .data.a from {CLIENT}" in out, out
    assert kube.ok("GET", path)["data"] == {"a": "1"}
    assert "No changes." in proj.ok("preview")
