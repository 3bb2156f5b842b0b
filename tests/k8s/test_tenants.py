"""The ``Tenant`` component against the real local API server (RBAC on) and the local
AWS emulator, through the real `stackwright` command: one config entry makes a tenant,
service accounts are isolated (SubjectAccessReview and reads with their own tokens),
removing an entry deletes exactly that tenant, and one tenant is changed alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helm_servers import EXAMPLE_CHART
from kube_api import KubeApi
from support import VersionedProject

from stackwright.providers.aws import localcloud

PROGRAM = '''
import stackwright as sw
from stackwright.components import ClusterOidc, Tenant, TenantSpec
from stackwright.providers import k8s

config = sw.Config()
cluster = k8s.Provider("cluster", kubeconfig=config.require_str("kubeconfig"))
oidc = None
if config.get_bool("irsa", default=False):
    oidc = ClusterOidc("arn:aws:iam::123456789012:oidc-provider/oidc.example.com", "https://oidc.example.com")
for spec in config.get_object("tenants", list[TenantSpec], default=[]):
    Tenant(spec, chart=config.require_str("chart"), cluster=oidc,
           values={"autoscaling": {"enabled": False}, "settings": {"ENV": "test"}},
           opts=sw.ResourceOptions(provider=cluster))
'''


class Project(VersionedProject):
    def __init__(self, root: Path, **config: Any) -> None:
        self.root, self.stack, self.timeout = root, "dev", 300.0
        root.mkdir()
        (root / "stackwright.yaml").write_text("name: tenants\nmain: __main__.py\n")
        (root / "__main__.py").write_text(PROGRAM)
        self.config = {"chart": str(EXAMPLE_CHART), **config}
        self.configure()
        self.ok("stack", "init", "dev")

    def configure(self, **changes: Any) -> None:
        self.config.update(changes)
        (self.root / "stacks").mkdir(exist_ok=True)
        (self.root / "stacks" / "dev.yaml").write_text(json.dumps({"config": self.config}))


def names(count: int) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"{letter}-{suffix}" for letter in "abc"[:count]]


def can(admin: KubeApi, namespace: str, verb: str, in_namespace: str) -> bool:
    """SubjectAccessReview: may tenant ``namespace``'s service account do ``verb`` on
    Secrets in ``in_namespace``?"""
    review = admin.ok("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": f"system:serviceaccount:{namespace}:{namespace}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
            "resourceAttributes": {"namespace": in_namespace, "verb": verb, "resource": "secrets"}}})
    return bool(review["status"]["allowed"])


def as_tenant(admin: KubeApi, kubeconfig: Path, namespace: str) -> KubeApi:
    token = admin.ok("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{namespace}/token",
                     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    return KubeApi(kubeconfig, token=token["status"]["token"])


def planned(project: Project, *args: str) -> dict[str, str]:
    """URN → operation of every step of the preview that changes something."""
    plan = json.loads(project.ok("preview", "--format", "json", *args))
    return {step["urn"]: step["op"] for step in plan["steps"] if step["op"] != "same"}


def path(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


def test_tenants_are_isolated_and_one_entry_adds_or_removes_exactly_one(
        local_cluster: Any, aws_endpoint: str, helm_binary: str, tmp_path: Path) -> None:
    a, b, c = names(3)
    kubeconfig = Path(local_cluster.kubeconfig)
    admin = KubeApi(kubeconfig)
    project = Project(tmp_path / "tenants", kubeconfig=str(kubeconfig), irsa=True,
                      aws={"region": "us-east-1", "endpoint": aws_endpoint},
                      tenants=[{"name": a, "values": {"settings": {"CUSTOMER": "alpha"}}},
                               {"name": b, "size": "medium", "quota": {"pods": "5"},
                                "allow": [{"cidr": "10.9.0.0/16", "ports": [5432]}],
                                "aws_statements": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                    "Resource": ["arn:aws:s3:::bucket-b/*"]}]}])
    project.ok("up", "--yes")

    account = admin.ok("GET", f"/api/v1/namespaces/{a}/serviceaccounts/{a}")
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    iam = localcloud_client(aws_endpoint)
    trust = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["StringEquals"]["oidc.example.com:sub"] == f"system:serviceaccount:{a}:{a}"
    assert admin.ok("GET", f"/apis/apps/v1/namespaces/{a}/deployments/{a}-app")["spec"]["template"]["spec"][
        "serviceAccountName"] == a
    assert admin.ok("GET", f"/api/v1/namespaces/{a}/configmaps/{a}-app")["data"] == {
        "LOG_LEVEL": "info", "ENV": "test", "CUSTOMER": "alpha"}
    assert admin.ok("GET", f"/api/v1/namespaces/{b}/resourcequotas/tenant")["spec"]["hard"]["pods"] == "5"
    assert admin.ok("GET", f"/api/v1/namespaces/{b}/resourcequotas/tenant")["spec"]["hard"]["requests.cpu"] == "4"
    allow = admin.ok("GET", f"/apis/networking.k8s.io/v1/namespaces/{b}/networkpolicies/allow")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5432}]} in allow["egress"]
    deny = admin.ok("GET", f"/apis/networking.k8s.io/v1/namespaces/{a}/networkpolicies/default-deny")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    assert admin.ok("GET", f"/apis/policy/v1/namespaces/{a}/poddisruptionbudgets/{a}")["spec"]["maxUnavailable"] == 1

    for tenant in (a, b):
        admin.ok("POST", f"/api/v1/namespaces/{tenant}/secrets", {"metadata": {"name": "db"},
                                                                  "stringData": {"password": tenant}})
    assert can(admin, a, "get", a) and can(admin, a, "list", a)
    assert not can(admin, a, "get", b) and not can(admin, a, "list", b) and not can(admin, b, "get", a)
    reader = as_tenant(admin, kubeconfig, a)
    assert reader.call("GET", f"/api/v1/namespaces/{a}/secrets/db")[0] == 200
    assert reader.call("GET", f"/api/v1/namespaces/{b}/secrets/db")[0] == 403
    assert reader.call("GET", "/api/v1/secrets")[0] == 403

    project.configure(tenants=[*project.config["tenants"], {"name": c}])
    added = planned(project)  # nine objects, the release's four, an IAM role without policy
    assert len(added) == 9 + 4 + 1 and set(added.values()) == {"create"}, added
    assert {path(urn).split("$")[0] for urn in added} == {c}

    project.configure(tenants=[t for t in project.config["tenants"] if t["name"] != c])
    project.configure(tenants=[t for t in project.config["tenants"] if t["name"] != b])
    removed = planned(project)
    assert set(removed.values()) == {"delete"} and {path(urn).split("$")[0] for urn in removed} == {b}, removed
    assert len(removed) == 9 + 4 + 3, removed  # its objects, its release's, its role with policy
    project.ok("up", "--yes")
    assert admin.call("GET", f"/api/v1/namespaces/{b}")[0] in (404, 200)
    assert admin.call("GET", f"/apis/apps/v1/namespaces/{b}/deployments/{b}-app")[0] == 404
    assert admin.call("GET", f"/apis/apps/v1/namespaces/{a}/deployments/{a}-app")[0] == 200
    assert iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]["Arn"] == role_arn
    project.ok("destroy", "--yes")


def localcloud_client(endpoint: str) -> Any:
    import boto3

    creds = localcloud.LOCAL_CREDENTIALS
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"])


@pytest.fixture
def requests_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``METHOD path`` of every request the k8s provider's client sends in this process."""
    import httpx2

    seen: list[str] = []
    send = httpx2.Client.send

    def counting(self: Any, request: Any, **kwargs: Any) -> Any:
        seen.append(f"{request.method} {request.url.path}")
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx2.Client, "send", counting)
    yield seen


def test_one_tenant_changes_alone(local_cluster: Any, helm_binary: str, tmp_path: Path,
                                  requests_seen: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from stackwright.cli.main import cli

    a, b, c = names(3)
    project = Project(tmp_path / "tenants", kubeconfig=str(local_cluster.kubeconfig),
                      tenants=[{"name": t, "values": {"replicas": 1}} for t in (a, b, c)])
    project.ok("up", "--yes")
    project.configure(tenants=[{"name": t, "values": {"replicas": 2 if t != c else 1}} for t in (a, b, c)])

    deployment = "dev::tenants::k8s:apps/v1:Deployment::{0}${0}${0}/{0}-app"
    assert planned(project, "--target", f"tenant:{a}") == {deployment.format(a): "update"}
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("STACKWRIGHT_USER", "tester")
    requests_seen.clear()
    result = CliRunner().invoke(cli, ["up", "--yes", "--target", f"tenant:{a}"])
    assert result.exit_code == 0, result.output
    assert requests_seen and all(f"/namespaces/{a}/" in path for path in requests_seen), requests_seen

    assert planned(project) == {deployment.format(b): "update"}
    project.ok("destroy", "--yes")
