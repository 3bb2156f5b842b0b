"""A private local Kubernetes cluster for any test: the ``local_cluster`` fixture (session scope).

Each pytest-xdist worker starts its own cluster (etcd, kube-apiserver, controller-manager,
scheduler, kwok) in its temporary folder on free 127.0.0.1 ports; it takes seconds. The
fixture yields a ``LocalCluster``: ``.kubeconfig`` (an admin kubeconfig, path) and
``.server`` (the API server's https URL).

Missing binaries are built first (tools/kube/build.sh, under a lock, so concurrent workers
build once). Without Go the tests skip naming what is missing (a failure when CI=true).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwright.providers.k8s import localcluster
from stackwright.providers.k8s.localcluster import LocalCluster

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "kube" / "build.sh"


def require_kube_tools() -> None:
    """Build what is missing; skip naming what still is (tests/conftest.py makes any
    skip a failure when CI=true)."""
    if localcluster.missing_tools():
        subprocess.run([str(BUILD_SCRIPT)], check=True)
    missing = localcluster.missing_tools()
    if missing:
        pytest.skip("local cluster binaries not built (Go missing?): "
                    + ", ".join(str(path) for path in missing) + "; run `make kube-tools`")


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    require_kube_tools()
    state_dir = tmp_path_factory.mktemp("local-cluster")
    cluster = localcluster.start(state_dir)
    try:
        yield cluster
    finally:
        localcluster.stop(state_dir)
