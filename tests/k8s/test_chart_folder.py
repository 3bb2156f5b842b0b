"""``helm.ChartFolder``: the example app catalog (examples/catalog, three apps on one
library chart) deployed to the local API server through the real command; adding or
deleting a folder adds or removes exactly that app's namespace and release."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from helm_servers import REPO_ROOT
from kube_api import KubeApi
from support import VersionedProject

CATALOG = REPO_ROOT / "examples" / "catalog"


class Catalog(VersionedProject):
    """A copy of examples/catalog whose app folders get a unique suffix (the cluster is
    shared by the session's tests)."""

    def __init__(self, root: Path, kubeconfig: str) -> None:
        self.root, self.stack, self.timeout = root, "dev", 300.0
        shutil.copytree(CATALOG, root, ignore=shutil.ignore_patterns(".stackwright"))
        self.suffix = uuid.uuid4().hex[:5]
        for app in ("web", "api", "worker"):
            (root / "charts" / app).rename(root / "charts" / self.app(app))
        (root / "stacks" / "dev.yaml").write_text(json.dumps({"config": {"kubeconfig": kubeconfig}}))
        self.ok("stack", "init", "dev")

    def app(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    def planned(self) -> dict[tuple[str, str], str]:
        """(type, path) → operation of every changing step of the preview."""
        plan = json.loads(self.ok("preview", "--format", "json"))
        return {(step["type"], step["urn"].rsplit("::", 1)[1]): step["op"]
                for step in plan["steps"] if step["op"] != "same"}


def test_each_folder_is_a_namespace_and_a_release_and_folders_come_and_go(
        local_cluster: Any, helm_binary: str, tmp_path: Path) -> None:
    kube = KubeApi(Path(local_cluster.kubeconfig))
    catalog = Catalog(tmp_path / "catalog", str(local_cluster.kubeconfig))
    web, api, worker = (catalog.app(name) for name in ("web", "api", "worker"))
    catalog.ok("up", "--yes")

    settings = kube.ok("GET", f"/api/v1/namespaces/{api}/configmaps/{api}")["data"]
    assert settings == {"LOG_LEVEL": "debug", "DATABASE_URL": "postgres://api@db.dev.internal/api"}
    deployment = kube.ok("GET", f"/apis/apps/v1/namespaces/{worker}/deployments/{worker}")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["--queue", "orders"]
    assert kube.call("GET", f"/api/v1/namespaces/{worker}/services/{worker}")[0] == 404
    assert kube.ok("GET", f"/api/v1/namespaces/{web}/services/{web}")["spec"]["ports"][0]["port"] == 80
    assert not (catalog.root / "charts" / api / "charts").exists()
    assert not (catalog.root / "charts" / api / "Chart.lock").exists()

    billing = catalog.app("billing")
    shutil.copytree(catalog.root / "charts" / worker, catalog.root / "charts" / billing)
    assert catalog.planned() == {
        ("k8s:core/v1:Namespace", f"apps${billing}"): "create",
        ("k8s:core/v1:ConfigMap", f"apps${billing}${billing}/{billing}"): "create",
        ("k8s:apps/v1:Deployment", f"apps${billing}${billing}/{billing}"): "create"}

    shutil.rmtree(catalog.root / "charts" / web)
    assert catalog.planned() == {
        ("k8s:core/v1:Namespace", f"apps${billing}"): "create",
        ("k8s:core/v1:ConfigMap", f"apps${billing}${billing}/{billing}"): "create",
        ("k8s:apps/v1:Deployment", f"apps${billing}${billing}/{billing}"): "create",
        ("k8s:core/v1:Namespace", f"apps${web}"): "delete",
        ("k8s:core/v1:ConfigMap", f"apps${web}${web}/{web}"): "delete",
        ("k8s:core/v1:Service", f"apps${web}${web}/{web}"): "delete",
        ("k8s:apps/v1:Deployment", f"apps${web}${web}/{web}"): "delete"}
    catalog.ok("up", "--yes")
    assert kube.call("GET", f"/apis/apps/v1/namespaces/{web}/deployments/{web}")[0] == 404
    assert kube.call("GET", f"/apis/apps/v1/namespaces/{billing}/deployments/{billing}")[0] == 200
    assert kube.call("GET", f"/apis/apps/v1/namespaces/{api}/deployments/{api}")[0] == 200
    catalog.ok("destroy", "--yes")


def test_a_dependency_the_library_does_not_satisfy_is_one_error_naming_the_chart(
        helm_binary: str, tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog", "unused")
    chart = catalog.root / "charts" / catalog.app("api") / "Chart.yaml"
    chart.write_text(chart.read_text().replace("version: 0.1.x", "version: 2.0.0"))
    done = catalog.run("preview")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"helm dependency build failed for chart charts/{catalog.app('api')}" in done.stderr
    assert '"platform-lib"' in done.stderr and "2.0.0" in done.stderr
