"""Helm charts applied to a real local API server through the real `stackwright` command:
charts from a path, an HTTP repository and an OCI registry; values from outputs; an
unchanged release previews without a helm call; a changed values file is an
object-level diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helm_servers import EXAMPLE_CHART, HelmCalls, Server
from kube_api import KubeApi
from support import VersionedProject

PROGRAM = '''
import stackwright as sw
from stackwright.providers import k8s, random
from stackwright.providers.k8s import helm

config = sw.Config()
cluster = k8s.Provider("cluster", kubeconfig=config.require_str("kubeconfig"))
ns = config.require_str("namespace")
namespace = k8s.Object("ns", manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                       opts=sw.ResourceOptions(provider=cluster))
values = {}
if config.get_bool("from_output", default=False):
    release_id = random.Id("release-id", byte_length=4)
    values = {"settings": {"RELEASE_ID": release_id.hex}}
    sw.export("release_id", release_id.hex)
source = config.require_object("source", dict)
chart = helm.Chart("web", namespace=ns, values_files=config.get_object("values_files", default=[]),
                   values=values, opts=sw.ResourceOptions(provider=cluster, depends_on=[namespace]), **source)
'''


class Project(VersionedProject):
    """A project whose stack config is given whole; ``run`` and ``ok`` drive the real command."""

    def __init__(self, root: Path, kubeconfig: str, namespace: str, source: dict[str, Any], **config: Any) -> None:
        self.root, self.stack, self.timeout = root, "dev", 300.0
        root.mkdir()
        (root / "stackwright.yaml").write_text("name: apps\nmain: __main__.py\n")
        (root / "__main__.py").write_text(PROGRAM)
        self.configure(kubeconfig=kubeconfig, namespace=namespace, source=source, **config)
        self.ok("stack", "init", "dev")

    def configure(self, **config: Any) -> None:
        (self.root / "stacks").mkdir(exist_ok=True)
        (self.root / "stacks" / "dev.yaml").write_text(json.dumps({"config": config}))



def live(kubeconfig: str, namespace: str) -> dict[str, Any]:
    """The namespace's Deployments, ConfigMaps' data and Service names, read from the server."""
    kube = KubeApi(Path(kubeconfig))

    def items(path: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = kube.ok("GET", path)["items"]
        return found

    return {
        "deployments": {d["metadata"]["name"]: d for d in items(f"/apis/apps/v1/namespaces/{namespace}/deployments")},
        "configmaps": {m["metadata"]["name"]: m.get("data") for m in items(f"/api/v1/namespaces/{namespace}/configmaps")
                       if m["metadata"]["name"] != "kube-root-ca.crt"},
        "services": {s["metadata"]["name"] for s in items(f"/api/v1/namespaces/{namespace}/services")},
    }


def test_chart_from_a_path_applies_and_an_unchanged_release_needs_no_helm(
        local_cluster: Any, helm_calls: HelmCalls, tmp_path: Path) -> None:
    kubeconfig = str(local_cluster.kubeconfig)
    project = Project(tmp_path / "apps", kubeconfig, "path-ns", {"path": str(EXAMPLE_CHART)},
                      values_files=["values.yaml"])
    (project.root / "values.yaml").write_text("autoscaling: {enabled: false}\nreplicas: 1\n")
    out = project.ok("up", "--yes")
    assert "k8s:apps/v1:Deployment path-ns/web-app" in out
    objects = live(kubeconfig, "path-ns")
    assert objects["deployments"]["web-app"]["spec"]["replicas"] == 1
    assert objects["services"] == {"web-app"} and "web-app" in objects["configmaps"]

    calls = helm_calls.count("template")
    assert "No changes" in project.ok("preview")
    assert helm_calls.count("template") == calls

    (project.root / "values.yaml").write_text("autoscaling: {enabled: false}\nreplicas: 3\ningress: {enabled: false}\n")
    diff = project.ok("preview", "--diff")
    assert "1 to update" in diff and "1 to delete" in diff and "replicas" in diff
    assert "k8s:networking.k8s.io/v1:Ingress path-ns/web-app" in diff
    project.ok("up", "--yes")
    assert live(kubeconfig, "path-ns")["deployments"]["web-app"]["spec"]["replicas"] == 3


def test_values_from_an_output_reach_the_live_object(local_cluster: Any, helm_binary: str, tmp_path: Path) -> None:
    kubeconfig = str(local_cluster.kubeconfig)
    project = Project(tmp_path / "apps", kubeconfig, "output-ns", {"path": str(EXAMPLE_CHART)}, from_output=True)
    preview = project.ok("preview", "--diff")
    assert "known after apply" in preview
    project.ok("up", "--yes")
    release_id = json.loads(project.ok("outputs", "--json"))["release_id"]
    assert live(kubeconfig, "output-ns")["configmaps"]["web-app"]["RELEASE_ID"] == release_id


def test_chart_from_an_http_repository(local_cluster: Any, helm_binary: str, chart_repo: Server, tmp_path: Path) -> None:
    kubeconfig = str(local_cluster.kubeconfig)
    project = Project(tmp_path / "apps", kubeconfig, "repo-ns",
                      {"chart": "app", "repo": chart_repo.url, "version": "0.4.0"})
    project.ok("up", "--yes")
    labels = live(kubeconfig, "repo-ns")["deployments"]["web-app"]["metadata"]["labels"]
    assert labels["helm.sh/chart"] == "app-0.4.0"


def test_chart_from_an_oci_registry(local_cluster: Any, helm_binary: str, oci_registry: Server, tmp_path: Path) -> None:
    kubeconfig = str(local_cluster.kubeconfig)
    project = Project(tmp_path / "apps", kubeconfig, "oci-ns",
                      {"chart": f"{oci_registry.url}/app", "version": "0.3.0", "plain_http": True})
    project.ok("up", "--yes")
    assert live(kubeconfig, "oci-ns")["deployments"]["web-app"]["metadata"]["labels"]["helm.sh/chart"] == "app-0.3.0"
    project.ok("destroy", "--yes")
    assert live(kubeconfig, "oci-ns")["deployments"] == {}


def test_a_render_error_changes_nothing_and_names_chart_and_values_file(
        local_cluster: Any, helm_binary: str, tmp_path: Path) -> None:
    project = Project(tmp_path / "apps", str(local_cluster.kubeconfig), "broken-ns",
                      {"path": str(EXAMPLE_CHART)}, values_files=["values/prod.yaml"])
    (project.root / "values").mkdir()
    (project.root / "values" / "prod.yaml").write_text("autoscaling: null\n")
    done = project.run("up", "--yes")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "values/prod.yaml" in done.stderr and "'web'" in done.stderr and "autoscaling" in done.stderr
    assert KubeApi(Path(local_cluster.kubeconfig)).call("GET", "/api/v1/namespaces/broken-ns")[0] == 404
