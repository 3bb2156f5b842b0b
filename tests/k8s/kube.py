"""What the k8s provider tests need besides the local cluster: a second client that is
not Stackwright's (the standard library over HTTPS, ``kube_api.KubeApi``) to look at
what the provider did and to act as another field manager, and handler helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kube_api import KubeApi

from stackwright.providers.k8s.handlers import KubernetesProvider, ObjectProvider
from stackwright.providers.k8s.manifests import type_token
from stackwright.providers.protocol import OperationContext


class Kube(KubeApi):
    """KubeApi plus server-side apply as another field manager."""

    def apply_as(self, manager: str, path: str, body: dict[str, Any], force: bool = False) -> tuple[int, Any]:
        query = f"?fieldManager={manager}" + ("&force=true" if force else "")
        request = urllib.request.Request(self.server + path + query, data=json.dumps(body).encode(), method="PATCH",
                                         headers={"Content-Type": "application/apply-patch+yaml"})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """A 404 of a whole API group is plain text, not a Status object."""
        try:
            return super().call(method, path, body)
        except json.JSONDecodeError:
            return 404, {}

    def get(self, path: str) -> Any | None:
        code, answer = self.call("GET", path)
        assert code in (200, 404), f"GET {path}: HTTP {code}: {answer}"
        return answer if code == 200 else None

    def namespace(self) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        return name

    def managers(self, path: str) -> dict[str, str]:
        """Field manager → operation, from the live object's managedFields."""
        live = self.ok("GET", path)
        return {f["manager"]: f["operation"] for f in live["metadata"].get("managedFields") or []}


def recorded(root: Path, stack: str = "dev") -> Any:
    """The stack's state as the command sees it (secrets opened with the stack's key)."""
    from stackwright.operations.session import open_store
    from stackwright.program.project import load_project

    with open_store(load_project(root), stack) as store:
        return store.snapshot(stack), store.read_lock(stack)


def handler(kubeconfig: Path) -> ObjectProvider:
    provider = KubernetesProvider()
    provider.configure({"kubeconfig": str(kubeconfig)})
    return provider.objects


def ctx_for(manifest: dict[str, Any], name: str = "main", timeout: float = 60.0,
            log: list[str] | None = None) -> OperationContext:
    token = type_token(manifest["apiVersion"], manifest["kind"])
    return OperationContext(urn=f"dev::t::{token}::{name}", name=name, token=f"tok-{uuid.uuid4().hex[:6]}",
                            timeout=timeout, log=(log.append if log is not None else lambda m: None))


def config_map(namespace: str, name: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **metadata}, "data": data}
