"""`stackwright gitops render` through the real command: one file per object per
environment and namespace, Secrets encrypted with the real sops binary, Argo CD and Flux
objects that validate against the vendored CRD schemas, byte-identical re-renders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from gitops_project import GitopsProject, age_identity, sops_decrypt

CRDS = Path(__file__).parent / "crds"
TENANTS = [{"name": "alpha", "password": "alpha-pw-1"}, {"name": "beta", "password": "beta-pw-2",
                                                          "values": {"settings": {"LOG_LEVEL": "debug"}}}]


@pytest.fixture()
def project(tmp_path: Path) -> GitopsProject:
    recipient, key_file = age_identity(tmp_path)
    project = GitopsProject(tmp_path / "repo", recipient)
    project.key_file = key_file  # type: ignore[attr-defined]
    project.stack("dev", TENANTS, values_files=[])
    project.stack("staging", TENANTS[:1])
    return project


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def crd_schema(name: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / name).read_text())
    found = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema: dict[str, Any] = found[0]["schema"]["openAPIV3Schema"]
    return schema


def test_render_writes_one_file_per_object_per_environment_and_namespace(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    said = project.ok("gitops", "render", "--out", str(out))
    files = tree(out)
    assert {"dev/_cluster/namespace-alpha.yaml", "dev/alpha/secret-db.yaml", "dev/beta/secret-db.yaml", "staging/alpha/secret-db.yaml",
            "argocd/dev/dev-alpha.yaml", "argocd/dev/dev-cluster-scoped.yaml"} <= set(files)
    deployments = sorted(p for p in files if p.startswith("dev/beta/deployment-"))
    assert deployments == ["dev/beta/deployment-beta-web-app.yaml"]
    beta = yaml.safe_load(files["dev/beta/configmap-beta-web-app.yaml"])
    assert beta["data"]["LOG_LEVEL"] == "debug" and beta["metadata"]["namespace"] == "beta"
    assert "24 object(s) of dev, staging" in said and "29 written" in said


def test_no_plain_secret_and_sops_decrypts_it_with_the_age_identity(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--out", str(out))
    text = b"\n".join(tree(out).values())
    assert b"alpha-pw-1" not in text and b"beta-pw-2" not in text
    secret = out / "dev" / "beta" / "secret-db.yaml"
    assert "ENC[AES256_GCM" in secret.read_text()
    plain = yaml.safe_load(sops_decrypt(secret, project.key_file))  # type: ignore[attr-defined]
    assert plain["stringData"] == {"password": "beta-pw-2"} and plain["metadata"]["name"] == "db"


def test_rendering_twice_gives_byte_identical_files_and_removes_gone_objects(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--out", str(out))
    first = tree(out)
    said = project.ok("gitops", "render", "--out", str(out))
    assert tree(out) == first and "0 written" in said
    edited = out / "dev" / "alpha" / "service-alpha-web-app.yaml"
    edited.write_text(edited.read_text().replace("port: 80", "port: 8080"))
    assert "1 written" in project.ok("gitops", "render", "--out", str(out))
    assert tree(out) == first
    project.stack("dev", TENANTS[:1])
    project.ok("gitops", "render", "--out", str(out))
    assert not (out / "dev" / "beta").exists() and not (out / "argocd" / "dev" / "dev-beta.yaml").exists()
    assert tree(out)["dev/alpha/secret-db.yaml"] == first["dev/alpha/secret-db.yaml"]


def test_objects_validate_with_kubernetes_validate(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--out", str(out))
    checked = 0
    for path in sorted(out.glob("dev/*/*.yaml")):
        text = sops_decrypt(path, project.key_file) if "sops:" in path.read_text() else path.read_text()  # type: ignore[attr-defined]
        kubernetes_validate.validate(yaml.safe_load(text), "1.37.0", strict=True)
        checked += 1
    assert checked >= 10


def test_argocd_applications_validate_and_order_namespaces_after_cluster_objects(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--out", str(out), "--format", "argocd")
    schema = crd_schema("argocd-application.yaml", "v1alpha1")
    apps = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((out / "argocd").rglob("*.yaml"))}
    for app in apps.values():
        jsonschema.validate(app, schema)
    waves = {name: int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name, app in apps.items()}
    assert waves["dev-cluster-scoped"] < waves["dev-alpha"] and waves["dev-alpha"] == waves["dev-beta"]
    assert apps["dev-alpha"]["spec"]["source"]["path"] == "deploy/dev/alpha"
    assert apps["dev-alpha"]["spec"]["destination"]["namespace"] == "alpha"


def test_flux_kustomizations_validate_depend_on_cluster_objects_and_decrypt(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--out", str(out), "--format", "flux")
    kustomization = crd_schema("flux-kustomization.yaml", "v1")
    objects = [yaml.safe_load(p.read_text()) for p in sorted((out / "flux").rglob("*.yaml"))]
    for obj in objects:
        if obj["kind"] == "GitRepository":
            jsonschema.validate(obj, crd_schema("flux-gitrepository.yaml", "v1"))
        else:
            jsonschema.validate(obj, kustomization)
    by_name = {o["metadata"]["name"]: o for o in objects}
    alpha = by_name["dev-alpha"]["spec"]
    assert alpha["dependsOn"] == [{"name": "dev-cluster-scoped"}] and alpha["path"] == "./deploy/dev/alpha"
    assert alpha["decryption"]["provider"] == "sops"
    assert "dependsOn" not in by_name["dev-cluster-scoped"]["spec"]
    assert by_name["stackwright"]["spec"]["url"] == "https://git.example.com/acme/deploy.git"


def test_a_secret_value_outside_a_secret_is_refused(project: GitopsProject) -> None:
    (project.root / "__main__.py").write_text('''
import stackwright as sw
from stackwright.providers import k8s
k8s.ConfigMap("leak", metadata={"namespace": "shop"}, data={"pw": sw.Config().require_secret("pw")})
''')
    project.stack("dev", [], pw="hunter2")
    done = project.run("gitops", "render", "--stack", "dev", "--out", str(project.repo / "deploy"))
    assert done.returncode == 1
    assert "ConfigMap shop/leak holds a secret value at data.pw" in done.stderr and "hunter2" not in done.stderr


def test_a_value_known_only_after_apply_stops_the_render_naming_the_object(project: GitopsProject) -> None:
    (project.root / "__main__.py").write_text('''
from stackwright.providers import k8s, random
password = random.Password("pw", length=16)
k8s.Secret("db", metadata={"namespace": "shop"}, string_data={"password": password.result})
''')
    done = project.run("gitops", "render", "--stack", "dev", "--out", str(project.repo / "deploy"))
    assert done.returncode == 1
    assert "k8s:core/v1:Secret::db: the object holds a value that is known only after apply" in done.stderr
    assert "stackwright up" in done.stderr and not (project.repo / "deploy" / "dev").exists()


def test_without_the_cache_a_machine_holding_the_identity_keeps_the_secret_files(project: GitopsProject) -> None:
    out = project.repo / "deploy"
    project.ok("gitops", "render", "--stack", "dev", "--out", str(out))
    first = tree(out)
    cache = project.root / ".stackwright" / "cache" / "gitops" / "sops"
    shutil.rmtree(cache)
    key = {"SOPS_AGE_KEY_FILE": str(project.key_file)}  # type: ignore[attr-defined]
    said = project.ok("gitops", "render", "--stack", "dev", "--out", str(out), env=key)
    assert tree(out) == first and "0 written" in said
    shutil.rmtree(cache)
    project.stack("dev", [TENANTS[0], {**TENANTS[1], "password": "rotated"}])
    project.ok("gitops", "render", "--stack", "dev", "--out", str(out), env=key)
    changed = {p for p, data in tree(out).items() if first.get(p) != data}
    assert changed == {"dev/beta/secret-db.yaml"}


def test_settings_that_are_missing_are_named(tmp_path: Path) -> None:
    project = GitopsProject(tmp_path / "repo", recipient="unused", repo_url=None, age_recipients=[])
    project.stack("dev", TENANTS[:1])
    out = str(project.repo / "deploy")
    done = project.run("gitops", "render", "--out", out)
    assert done.returncode == 1 and "Secret alpha/db is a Secret, and no age recipient is set" in done.stderr
    project.stack("dev", [])
    (project.root / "__main__.py").write_text(
        'from stackwright.providers import k8s\nk8s.ConfigMap("c", metadata={"namespace": "x"}, data={"a": "1"})\n')
    done = project.run("gitops", "render", "--out", out, "--format", "flux")
    assert done.returncode == 1 and "the Flux Kustomizations need the git repository's URL" in done.stderr
    assert "gitops: {repo_url: https://...}" in done.stderr
