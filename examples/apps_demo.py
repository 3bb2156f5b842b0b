"""The apps layer of the platform example: a Helm chart on a local Kubernetes cluster.

Called by demo.py with a scratch folder. When the local cluster's binaries are built
(`make kube-tools`), starts a private local cluster, deploys examples/charts/app with the
dev values, changes one value and previews the exact object-level change, applies it,
shows that an unchanged release previews with no changes, and destroys. Otherwise it
previews the rendered objects and says how to get a cluster.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from demo import check, say, sw

HERE = Path(__file__).resolve().parent


def copy_project(work: Path, layer: str = "apps") -> Path:
    """A layer's project (platform/apps, platform/tenants) and the chart it names
    (``../../charts/app``), side by side."""
    root = work / f"{layer}-layer"
    project = root / "platform" / layer
    shutil.copytree(HERE / "platform" / layer, project, ignore=shutil.ignore_patterns(".stackwright"))
    shutil.copytree(HERE / "charts", root / "charts")
    return project


def cluster_tools_missing() -> list[str]:
    try:
        from stackwright.providers.k8s import localcluster
    except ImportError:
        return ["the local-cluster support"]
    return [str(path) for path in localcluster.missing_tools()]


def use_kubeconfig(project: Path, kubeconfig: Path) -> None:
    stack_file = project / "stacks" / "dev.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"]["apps"]["kubeconfig"] = str(kubeconfig)
    stack_file.write_text(yaml.safe_dump(data))


def deploy(project: Path, cluster_dir: Path) -> None:
    on_local_cluster(project, cluster_dir, lambda kubeconfig: (use_kubeconfig(project, kubeconfig), story(project)))


def on_local_cluster(project: Path, cluster_dir: Path, run: Callable[[Path], object]) -> None:
    """``run(kubeconfig)`` with a private local cluster started in ``cluster_dir``."""
    say("Start a private local cluster (etcd + kube-apiserver with RBAC on 127.0.0.1)")
    sw(project, "local-cluster", "start", "--state-dir", str(cluster_dir))
    try:
        run(cluster_dir / "kubeconfig")
    finally:
        sw(project, "local-cluster", "stop", "--state-dir", str(cluster_dir))


def story(project: Path) -> None:
    say("Deploy the app chart with values/common.yaml + values/dev.yaml: every rendered object is a resource")
    text = sw(project, "up", "--yes")
    check("Update succeeded" in text and "k8s:apps/v1:Deployment shop/web-app" in text,
          "the Deployment, Service, Ingress, ServiceAccount and ConfigMap are applied")
    say("Scale the app in values/dev.yaml; the preview shows exactly that field of that object")
    values = project / "values" / "dev.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 2"))
    text = sw(project, "preview", "--diff")
    check("1 to update" in text and "replicas" in text, "one object changes: the Deployment's replicas")
    sw(project, "up", "--yes")
    say("Nothing changed since: the preview renders from the cache (no helm call) and finds no changes")
    check("No changes" in sw(project, "preview"), "no changes")
    say("Destroy the apps layer")
    check("Destroy succeeded" in sw(project, "destroy", "--yes"), "every object is deleted")


def preview_only(project: Path, missing: list[str]) -> None:
    say("No local cluster is built, so preview the objects the chart renders for dev")
    text = sw(project, "preview", "--diff")
    check("k8s:apps/v1:Deployment shop/web-app" in text, "helm rendered the Deployment and the rest")
    print(f"\nTo deploy them to a local cluster ({', '.join(missing)} missing):\n"
          "  make kube-tools                      # builds the cluster binaries once\n"
          "  stackwright local-cluster start      # prints the kubeconfig the dev stack uses\n"
          "  cp -r examples /tmp/examples && cd /tmp/examples/platform/apps\n"
          "  stackwright stack init dev && stackwright up")


def main(work: Path) -> None:
    project = copy_project(work)
    sw(project, "stack", "init", "dev")
    missing = cluster_tools_missing()
    if missing:
        preview_only(project, missing)
    else:
        deploy(project, work / "local-cluster")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
