"""The local Kubernetes cluster: the real command, a real API server over HTTPS."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kube_api import KubeApi
from local_cluster import require_kube_tools
from support import cli_command, cli_env

from stackwright.providers.k8s import localcluster
from stackwright.providers.k8s.localcluster import FAKE_NODE, LocalCluster

pytestmark = pytest.mark.k8s
REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_command(), "local-cluster", *args], capture_output=True,
                          text=True, timeout=300, env=env or cli_env())


def namespace(api: KubeApi) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


def run_pod(api: KubeApi, ns: str, name: str) -> dict[str, Any]:
    """Create a Pod and wait until kwok reports it Running."""
    api.ok("POST", f"/api/v1/namespaces/{ns}/pods", {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}})
    return dict(api.wait_for(f"/api/v1/namespaces/{ns}/pods/{name}",
                             lambda p: p.get("status", {}).get("phase") == "Running"))


def test_start_status_stop_from_the_command_line(tmp_path: Path) -> None:
    require_kube_tools()
    folder = str(tmp_path / "cluster")
    started = run("start", "--state-dir", folder)
    assert started.returncode == 0, started.stderr
    config = Path(re.findall(r"kubeconfig: (\S+)\n", started.stdout)[0])
    assert f"k8s: {{kubeconfig: {config}}}" in started.stdout
    api = KubeApi(config)
    names = [ns["metadata"]["name"] for ns in api.ok("GET", "/api/v1/namespaces")["items"]]
    assert {"default", "kube-system"} <= set(names)
    api.ok("POST", "/api/v1/namespaces/default/configmaps",
           {"metadata": {"name": "kept"}, "data": {"answer": "42"}})

    again = run("start", "--state-dir", folder)
    assert again.returncode == 0 and again.stdout.startswith("Already running.")
    assert run("status", "--state-dir", folder).returncode == 0

    stopped = run("stop", "--state-dir", folder)
    assert stopped.stdout.strip() == "Local cluster stopped."
    assert run("status", "--state-dir", folder).returncode == 3
    with pytest.raises(OSError):
        api.call("GET", "/readyz")

    restarted = run("start", "--state-dir", folder)
    assert restarted.returncode == 0, restarted.stderr
    api = KubeApi(config)
    assert api.ok("GET", "/api/v1/namespaces/default/configmaps/kept")["data"] == {"answer": "42"}
    run_pod(api, "default", "after-restart")
    assert run("stop", "--state-dir", folder).returncode == 0
    assert run("stop", "--state-dir", folder).stdout.strip() == "The local cluster was not running."


def test_rbac_decides_what_a_service_account_may_do(local_cluster: LocalCluster) -> None:
    admin = KubeApi(local_cluster.kubeconfig)
    ns = namespace(admin)
    admin.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "reader"}})
    token = admin.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/reader/token",
                     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    reader = KubeApi(local_cluster.kubeconfig, token=token["status"]["token"])
    code, answer = reader.call("GET", f"/api/v1/namespaces/{ns}/secrets")
    assert code == 403, answer
    assert f"system:serviceaccount:{ns}:reader" in answer["message"]

    rbac = "/apis/rbac.authorization.k8s.io/v1"
    admin.ok("POST", f"{rbac}/namespaces/{ns}/roles", {
        "metadata": {"name": "read-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]})
    admin.ok("POST", f"{rbac}/namespaces/{ns}/rolebindings", {
        "metadata": {"name": "reader-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    reader.wait_for(f"/api/v1/namespaces/{ns}/secrets", lambda listing: listing["kind"] == "SecretList")
    assert reader.call("GET", "/api/v1/namespaces/default/secrets")[0] == 403


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    found = [c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else None


def test_a_pod_is_scheduled_on_the_fake_node_and_runs(local_cluster: LocalCluster) -> None:
    api = KubeApi(local_cluster.kubeconfig)
    ns = namespace(api)
    pod = run_pod(api, ns, "web")
    assert pod["spec"]["nodeName"] == FAKE_NODE
    assert _condition(pod, "Ready") == "True"


def test_a_deployment_rolls_out_and_becomes_available(local_cluster: LocalCluster) -> None:
    api = KubeApi(local_cluster.kubeconfig)
    ns = namespace(api)
    labels = {"app": "api"}
    api.ok("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "metadata": {"name": "api"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "api", "image": "example/api:1"}]}}}})
    deployment = api.wait_for(f"/apis/apps/v1/namespaces/{ns}/deployments/api",
                              lambda d: _condition(d, "Available") == "True"
                              and d["status"].get("availableReplicas") == 2)
    assert deployment["status"]["updatedReplicas"] == 2
    pods = api.ok("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dapi")["items"]
    assert sorted(p["status"]["phase"] for p in pods) == ["Running", "Running"]


def test_kind_without_a_docker_engine_fails_in_one_line(tmp_path: Path) -> None:
    env = {**cli_env(), "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    done = run("start", "--kind", "--state-dir", str(tmp_path / "kind"), env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --kind needs"), done.stderr


def test_start_without_binaries_names_them(tmp_path: Path) -> None:
    env = {**cli_env(), "STACKWRIGHT_CACHE": str(tmp_path / "empty-cache")}
    done = run("start", "--state-dir", str(tmp_path / "cluster"), env=env)
    assert done.returncode == 1
    assert "etcd, kube-apiserver not built" in done.stderr
    assert "make kube-tools" in done.stderr


def test_the_pinned_versions_are_the_ones_the_build_uses() -> None:
    server = (REPO / "tools" / "kube" / "server" / "go.mod").read_text()
    kwok = (REPO / "tools" / "kube" / "kwok" / "go.mod").read_text()
    assert re.search(rf"^\s*k8s.io/kubernetes {localcluster.KUBE_VERSION}\b", server, re.M)
    assert re.search(rf"^\s*sigs.k8s.io/kwok {localcluster.KWOK_VERSION}\b", kwok, re.M)
    staging = re.findall(r"^\s*(k8s.io/\S+) => (k8s.io/\S+) (v\S+)$", server, re.M)
    published = "v0" + localcluster.KUBE_VERSION[2:]
    assert len(staging) > 20
    assert all(module == same and version == published for module, same, version in staging)
