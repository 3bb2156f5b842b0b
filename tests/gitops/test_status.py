"""`stackwright gitops status` against the real local cluster: after `up` everything is
Synced and Healthy; an edit made outside (a ConfigMap value, a Secret's data) and a
deleted object make their objects and namespaces OutOfSync, and the command exit 2."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from gitops_project import GitopsProject, age_identity
from kube_api import KubeApi

pytestmark = pytest.mark.k8s

TENANTS = [{"name": "st-alpha", "password": "alpha-pw"}, {"name": "st-beta", "password": "beta-pw"}]


def rows(out: str) -> dict[str, list[str]]:
    """Table rows by their first cells (``dev Deployment st-alpha/...``, ``dev st-alpha``)."""
    found = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[0] == "dev":
            key = " ".join(cells[:3]) if cells[1][0].isupper() else " ".join(cells[:2])
            found[key] = cells
    return found


def test_status_reports_sync_and_health_per_object_and_per_tenant(local_cluster: Any, tmp_path: Path) -> None:
    recipient, _ = age_identity(tmp_path)
    project = GitopsProject(tmp_path / "repo", recipient)
    project.stack("dev", TENANTS, values_files=[], k8s={"kubeconfig": str(local_cluster.kubeconfig)})
    project.ok("up", "--yes")

    out = project.ok("gitops", "status")
    table = rows(out)
    assert table["dev Deployment st-alpha/st-alpha-web-app"][3:5] == ["Synced", "Healthy"]
    assert table["dev st-alpha"][2:5] == ["7", "Synced", "Healthy"]
    assert table["dev _cluster"][2:5] == ["2", "Synced", "Healthy"]
    assert "16 of 16 object(s) synced." in out

    kube = KubeApi(Path(local_cluster.kubeconfig))
    path = "/api/v1/namespaces/st-alpha/configmaps/st-alpha-web-app"
    config_map = kube.ok("GET", path)
    config_map["data"]["LOG_LEVEL"] = "debug"
    kube.ok("PUT", path, config_map)
    secret_path = "/api/v1/namespaces/st-alpha/secrets/db"
    secret = kube.ok("GET", secret_path)
    secret["data"]["password"] = base64.b64encode(b"changed-by-hand").decode()
    kube.ok("PUT", secret_path, secret)
    kube.ok("DELETE", "/api/v1/namespaces/st-beta/services/st-beta-web-app")

    done = project.run("gitops", "status")
    assert done.returncode == 2, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["dev ConfigMap st-alpha/st-alpha-web-app"][3] == "OutOfSync"
    assert "dev ConfigMap st-alpha/st-alpha-web-app: ~ data.LOG_LEVEL: \"debug\" -> \"info\"" in done.stdout
    assert table["dev Secret st-alpha/db"][3] == "OutOfSync"
    assert "dev Secret st-alpha/db: ~ data.password: (secret value differs)" in done.stdout
    assert "alpha-pw" not in done.stdout and "changed-by-hand" not in done.stdout
    assert table["dev Service st-beta/st-beta-web-app"][3:5] == ["OutOfSync", "Missing"]
    assert table["dev Deployment st-alpha/st-alpha-web-app"][3] == "Synced"
    assert table["dev st-alpha"][3:5] == ["OutOfSync", "Healthy"]
    assert table["dev st-beta"][3:5] == ["OutOfSync", "Missing"]
    assert table["dev _cluster"][3] == "Synced"
    assert "13 of 16 object(s) synced." in done.stdout


def test_an_object_of_a_kind_the_cluster_does_not_serve_is_missing(local_cluster: Any, tmp_path: Path) -> None:
    recipient, _ = age_identity(tmp_path)
    project = GitopsProject(tmp_path / "repo", recipient)
    (project.root / "__main__.py").write_text('''
from stackwright.providers import k8s
k8s.Object("w", manifest={"apiVersion": "example.com/v1", "kind": "Widget",
                          "metadata": {"name": "w", "namespace": "default"}})
''')
    project.stack("dev", [], k8s={"kubeconfig": str(local_cluster.kubeconfig)})
    done = project.run("gitops", "status")
    assert done.returncode == 2, done.stdout + done.stderr
    row = rows(done.stdout)["dev Widget.example.com default/w"]
    assert row[3:5] == ["OutOfSync", "Missing"] and "serves no kind Widget" in done.stdout
