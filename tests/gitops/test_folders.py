"""Folder order for the controllers, as pure functions: waves follow the objects'
dependencies across namespaces, the cluster-scoped folder comes first, and folders
that wait for each other both ways are refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from stackwright.gitops.controllers import folders
from stackwright.gitops.objects import GitopsError, RenderedObject


def obj(urn: str, kind: str, name: str, namespace: str | None, deps: tuple[str, ...] = ()) -> RenderedObject:
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return RenderedObject("dev", urn, {"apiVersion": "v1", "kind": kind, "metadata": metadata}, deps, None)


def test_waves_follow_dependencies_across_namespaces() -> None:
    objects = [obj("ns-db", "Namespace", "db", None), obj("db", "Service", "pg", "db"),
               obj("app", "ConfigMap", "web", "shop", deps=("db",)), obj("other", "ConfigMap", "x", "tools")]
    found = {f.name: f for f in folders("dev", objects)}
    assert [found[n].wave for n in ("_cluster", "db", "tools", "shop")] == [0, 1, 1, 2]
    assert found["shop"].after == ("_cluster", "db") and found["db"].after == ("_cluster",)
    assert found["shop"].app_name == "dev-shop" and found["_cluster"].app_name == "dev-cluster-scoped"


def test_folders_waiting_for_each_other_are_refused() -> None:
    objects = [obj("a", "ConfigMap", "a", "left", deps=("b",)), obj("b", "ConfigMap", "b", "right", deps=("a",))]
    with pytest.raises(GitopsError, match="folders .*left.*right.* wait for each other"):
        folders("dev", objects)
