"""Kubernetes through the real command against the local API server: one `up` with a
CRD and its custom resources, preview diffs, prune, refresh, import, values from
outputs and provider instances."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kube import Kube, recorded
from support import cli_command, cli_env

from stackwright.model.values import Secret

pytestmark = pytest.mark.k8s


class K8sProject:
    """A project on disk whose stack `dev` points at the local cluster and one namespace."""

    def __init__(self, root: Path, kubeconfig: Path, namespace: str, program: str,
                 k8s_config: bool = True) -> None:
        self.root = root
        root.mkdir()
        (root / "stackwright.yaml").write_text("name: kube\nmain: __main__.py\n")
        (root / "stacks").mkdir()
        section = f"  k8s: {{kubeconfig: {kubeconfig}, namespace: {namespace}}}\n" if k8s_config else ""
        (root / "stacks" / "dev.yaml").write_text(f"config:\n{section}  ns: {namespace}\n")
        self.write(program)
        self.ok("stack", "init", "dev")

    def write(self, program: str) -> None:
        (self.root / "__main__.py").write_text(program)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command(), *args], cwd=self.root, env=cli_env(), text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=300)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"stackwright {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout


@pytest.fixture
def kube(local_cluster: Any) -> Kube:
    return Kube(local_cluster.kubeconfig)


def project(tmp_path: Path, local_cluster: Any, kube: Kube, program: str, **kwargs: Any) -> tuple[K8sProject, str]:
    ns = kube.namespace()
    return K8sProject(tmp_path / "kube", local_cluster.kubeconfig, ns, program, **kwargs), ns


HEADER = """\
import stackwright as sw
from stackwright.providers import k8s, random

ns = sw.Config().require_str("ns")
"""

CRD_PROGRAM = HEADER + """\
k8s.Object("gadget", manifest={"apiVersion": "example.com/v1", "kind": "Gadget",
                               "metadata": {"namespace": ns}, "spec": {"size": 3}})
k8s.CustomResourceDefinition("gadgets.example.com", spec={
    "group": "example.com", "scope": "Namespaced",
    "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer"}}}}}}}]})
"""


def test_a_crd_and_its_custom_resource_in_one_up(tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, CRD_PROGRAM)
    out = proj.ok("up", "--yes")
    assert "2 create" in out, out
    crd = kube.ok("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    gadget = kube.ok("GET", f"/apis/example.com/v1/namespaces/{ns}/gadgets/gadget")
    assert gadget["spec"] == {"size": 3}
    assert "No changes." in proj.ok("preview")
    proj.ok("destroy", "--yes")
    assert kube.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com") is None
    assert kube.call("GET", "/apis/example.com/v1")[0] == 404, "the custom kind is gone with its CRD"


CONFIG_PROGRAM = HEADER + """\
replicas = sw.Config().get_int("replicas", 1)
keep = sw.Config().get_bool("keep", True)
k8s.ConfigMap("settings", data={"replicas": str(replicas), "mode": "live"})
if keep:
    k8s.ConfigMap("extra", data={"x": "1"})
"""


def test_preview_diff_comes_from_a_server_dry_run_and_prune_deletes(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, CONFIG_PROGRAM)
    proj.ok("up", "--yes")
    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  replicas: 3\n  keep: false\n")
    out = proj.ok("preview", "--diff")
    assert "server-side dry run:" in out and '~ data.replicas: "1" -> "3"' in out, out
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/settings")["data"]["replicas"] == "1"

    out = proj.ok("up", "--yes")
    assert "1 update" in out and "1 delete" in out, out
    assert kube.get(f"/api/v1/namespaces/{ns}/configmaps/extra") is None
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/settings")["data"]["replicas"] == "3"

    # An unreachable cluster: the diff against recorded state, and a note saying so.
    text = stack_file.read_text().replace(str(local_cluster.kubeconfig), str(unreachable(tmp_path, local_cluster)))
    stack_file.write_text(text.replace("replicas: 3", "replicas: 4"))
    out = proj.ok("preview", "--diff")
    assert "cluster not reachable" in out and "the diff is against recorded state" in out, out


def unreachable(tmp_path: Path, local_cluster: Any) -> Path:
    """The cluster's kubeconfig pointing at a port nobody listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "unreachable.yaml"
    text = Path(local_cluster.kubeconfig).read_text()
    path.write_text(text.replace(local_cluster.server, f"https://127.0.0.1:{port}"))
    return path


def test_refresh_reports_drift_of_managed_fields(tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, CONFIG_PROGRAM)
    proj.ok("up", "--yes")
    kube.apply_as("kubectl-edit", f"/api/v1/namespaces/{ns}/configmaps/settings",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"x": "y"}},
                   "data": {"mode": "hand-edited"}}, force=True)
    out = proj.ok("refresh")
    assert "settings" in out and "data.mode" in out and "hand-edited" in out, out
    assert "labels" not in out, "a field Stackwright does not manage is not drift"
    assert "extra" not in out, out


def test_import_adopts_an_object_and_prints_python_that_declares_it(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, HEADER)
    kube.ok("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "metadata": {"name": "legacy", "labels": {"app": "legacy"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "legacy"}}, "template": {
            "metadata": {"labels": {"app": "legacy"}},
            "spec": {"containers": [{"name": "app", "image": "registry.local/legacy:1"}]}}}})
    out = proj.ok("import", "--yes", "k8s:apps/v1:Deployment", "legacy", f"{ns}/legacy")
    assert "from stackwright.providers import k8s" in out and "k8s.Object(" in out, out
    code = out[out.index("from stackwright.providers import k8s"):]
    code = code[: code.index("\n)") + 2]
    proj.write(HEADER + "\n" + code + "\n")
    assert "No changes." in proj.ok("preview"), "the printed code declares exactly what was adopted"
    assert "legacy" in proj.ok("state", "ls")


OUTPUTS_PROGRAM = HEADER + """\
password = random.Password("db", length=24, special=False)
creds = k8s.Secret("db", string_data={"password": password.result})
k8s.ConfigMap("app", data={"secret-uid": creds.uid, "dsn": sw.fmt("postgres://app@db/{}", ns)})
"""


def test_values_from_outputs_and_a_secret_that_stays_secret(tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, OUTPUTS_PROGRAM)
    out = proj.ok("up", "--yes")
    secret = kube.ok("GET", f"/api/v1/namespaces/{ns}/secrets/db")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 24
    app = kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/app")
    assert app["data"] == {"secret-uid": secret["metadata"]["uid"], "dsn": f"postgres://app@db/{ns}"}
    shown = out + proj.ok("state", "show", "dev::kube::k8s:core/v1:Secret::db") + proj.ok("preview", "--diff")
    assert password not in shown
    resources = recorded(proj.root)[0].resources
    manifest = resources["dev::kube::k8s:core/v1:Secret::db"].inputs["manifest"]
    assert manifest["stringData"]["password"] == Secret(password), "recorded as a secret"
    applied = resources["dev::kube::k8s:core/v1:Secret::db"].outputs["applied"]
    assert applied["stringData"]["password"] == Secret(password)
    assert applied["metadata"] == {"name": "db"} and applied["kind"] == "Secret", "what names it stays plain"


NAMES_PROGRAM = HEADER + """\
token = k8s.Secret("token", metadata={"namespace": ns}, string_data={"token": "hunter2"})
info = k8s.ConfigMap("info", data={"kind": "Secret", "version": "v1"}, opts=sw.ResourceOptions(depends_on=[token]))
sw.export("info_namespace", info.namespace)
if sw.Config().get_bool("bad", False):
    k8s.ConfigMap("bad", metadata={"name": "Bad_Name"}, data={"a": "1"})
"""


def test_only_a_secrets_values_are_secret_not_its_kind_namespace_or_name(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, NAMES_PROGRAM)
    proj.ok("up", "--yes")
    assert f"info_namespace: {ns}" in proj.ok("outputs")
    shown = proj.ok("state", "show", "dev::kube::k8s:core/v1:ConfigMap::info")
    assert '"apiVersion": "v1"' in shown and f'namespace: "{ns}"' in shown and '"kind": "Secret"' in shown, shown
    shown = proj.ok("state", "show", "dev::kube::k8s:core/v1:Secret::token")
    assert "hunter2" not in shown and '"name": "token"' in shown, shown

    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  bad: true\n")
    done = proj.run("up", "--yes")
    assert done.returncode == 1
    assert f"apply ConfigMap {ns}/Bad_Name" in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_manifest_the_schema_refuses_fails_at_once(tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, HEADER + """\
k8s.Deployment("bad", spec={"replica": 2, "selector": {"matchLabels": {"a": "b"}},
    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}})
""")
    done = proj.run("up", "--yes")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and ".spec.replica: field not declared in schema" in out, out
    assert "retry" not in out and "interrupted" not in out, out


TYPO_PROGRAM = HEADER + """\
k8s.ConfigMap("ok", data={"a": "1"})
if sw.Config().get_bool("typo", True):
    k8s.Object("typo", manifest={"apiVersion": "example.com/v1", "kind": "Bakcup", "spec": {}})
"""


def test_an_unknown_kind_fails_its_create_at_once_and_leaves_nothing_pending(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, TYPO_PROGRAM)
    done = proj.run("up", "--yes")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "the cluster serves no kind Bakcup in example.com/v1" in out, out
    assert "retry" not in out and "interrupted" not in out, out
    assert "0 resources" in proj.ok("state", "ls"), "the server-side dry run refused it before anything was applied"
    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  typo: false\n")
    assert "1 create" in proj.ok("up", "--yes")


GADGET_PROGRAM = HEADER + """\
k8s.CustomResourceDefinition("widgets.gone.example.com", spec={
    "group": "gone.example.com", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgets"},
    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]})
k8s.Object("w1", manifest={"apiVersion": "gone.example.com/v1", "kind": "Widget", "spec": {"x": 1}})
"""


def test_a_custom_resource_whose_crd_was_deleted_is_reported_deleted_and_made_again(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, _ = project(tmp_path, local_cluster, kube, GADGET_PROGRAM)
    proj.ok("up", "--yes")
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.gone.example.com"
    kube.ok("DELETE", crd)
    _wait_gone(kube, crd)
    out = proj.ok("refresh", "--yes")
    assert "Widget w1  deleted outside Stackwright" in out, out
    assert "CustomResourceDefinition widgets.gone.example.com  deleted outside Stackwright" in out, out
    assert "2 create" in proj.ok("up", "--yes")
    assert kube.ok("GET", "/apis/gone.example.com/v1/widgets/w1")["spec"] == {"x": 1}
    proj.ok("destroy", "--yes")


def _wait_gone(kube: Kube, path: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while kube.get(path) is not None:
        assert time.monotonic() < deadline, f"{path} still there"
        time.sleep(0.2)


STUCK_PROGRAM = HEADER + """\
if sw.Config().get_bool("stuck", True):
    k8s.Deployment("stuck", metadata={"annotations": {"stackwright.io/timeout": "2"}}, spec={
        "replicas": 1, "selector": {"matchLabels": {"app": "stuck"}},
        "template": {"metadata": {"labels": {"app": "stuck"}}, "spec": {"nodeSelector": {"no-such": "node"},
            "containers": [{"name": "c", "image": "x"}]}}})
"""


def test_a_create_that_never_becomes_healthy_is_recorded_and_deleted_when_dropped(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, STUCK_PROGRAM)
    done = proj.run("up", "--yes")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and f"timed out after 2s waiting for Deployment {ns}/stuck" in out, out
    assert f"{ns}/stuck" in proj.ok("state", "ls"), "the object exists, so it is recorded"
    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  stuck: false\n")
    assert "1 delete" in proj.ok("up", "--yes")
    assert kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/stuck") is None


STRING_DATA_PROGRAM = HEADER + """\
k8s.Secret("db", string_data={"password": sw.Config().get_str("password", "declared-pw")})
k8s.ConfigMap("cfg", metadata={"labels": {"team": "a"}} if sw.Config().get_bool("labels", True) else {},
              data={"a": "1", "b": "2"} if sw.Config().get_bool("b", True) else {"a": "1"})
"""


def test_drift_of_a_secrets_string_data_is_reported_and_put_back(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, STRING_DATA_PROGRAM)
    proj.ok("up", "--yes")
    path = f"/api/v1/namespaces/{ns}/secrets/db"
    kube.apply_as("kubectl-edit", path, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                                         "data": {"password": base64.b64encode(b"HACKED").decode()}}, force=True)
    out = proj.ok("refresh")
    assert "stringData.password" in out and "HACKED" not in out, out
    assert "1 update" in proj.ok("up", "--refresh", "--yes")
    assert base64.b64decode(kube.ok("GET", path)["data"]["password"]) == b"declared-pw"


def test_the_dry_run_shows_removed_fields_and_string_data_changes(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, STRING_DATA_PROGRAM)
    proj.ok("up", "--yes")
    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  labels: false\n  b: false\n  password: changed-pw\n")
    out = proj.ok("preview", "--diff")
    assert '- data.b: "2"' in out and '- metadata.labels.team: "a"' in out, out
    assert "~ stringData.password: [secret]" in out and "changed-pw" not in out, out
    assert "no change to the live object" not in out, out


PROVIDER_PROGRAM = HEADER + """\
from pathlib import Path

kubeconfig = Path(sw.Config().require_str("kubeconfig_file")).read_text()
cluster = k8s.Provider("local", kubeconfig=kubeconfig + sw.Config().get_str("comment", ""), namespace=ns)
k8s.ConfigMap("one", data={"a": "1"}, opts=sw.ResourceOptions(provider=cluster))
k8s.ConfigGroup("more", yaml=["apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: two}\\ndata: {b: '2'}\\n"],
                opts=sw.ResourceOptions(provider=cluster))
"""


def test_a_provider_instance_from_values_and_a_changed_credential(
        tmp_path: Path, local_cluster: Any, kube: Kube) -> None:
    proj, ns = project(tmp_path, local_cluster, kube, PROVIDER_PROGRAM, k8s_config=False)
    stack_file = proj.root / "stacks" / "dev.yaml"
    stack_file.write_text(stack_file.read_text() + f"  kubeconfig_file: {local_cluster.kubeconfig}\n")
    proj.ok("up", "--yes")
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/one")["data"] == {"a": "1"}
    assert kube.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/two")["data"] == {"b": "2"}

    stack_file.write_text(stack_file.read_text() + "  comment: \"\\n# rotated\\n\"\n")
    out = proj.ok("preview")
    assert "1 to update" in out or "1 update" in out, out
    assert "replace" not in out, out
    out = proj.ok("up", "--yes")
    assert "1 update" in out, out
    proj.ok("destroy", "--yes")
    assert kube.get(f"/api/v1/namespaces/{ns}/configmaps/two") is None
