"""helm.Chart as a program declares it: the real helm binary renders the chart and every
object becomes a child resource. No cluster here (see tests/k8s/test_helm_apply.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from helm_servers import EXAMPLE_CHART, HelmCalls, Server

import stackwright as sw
from stackwright.errors import StackwrightError
from stackwright.model.output import Output
from stackwright.model.values import UNKNOWN, Secret
from stackwright.providers import random
from stackwright.providers.k8s import helm
from stackwright.testing import declare

CHART = str(EXAMPLE_CHART)
APP_OBJECTS = {"ServiceAccount:shop/web-app", "ConfigMap:shop/web-app", "Service:shop/web-app",
               "Deployment:shop/web-app", "Ingress:shop/web-app",
               "HorizontalPodAutoscaler:shop/web-app"}


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def manifests(program: Any) -> dict[str, dict[str, Any]]:
    graph = declare(program)
    return {f"{r.inputs['manifest']['kind']}:{r.resource_name}": r.inputs["manifest"] for r in graph.resources.values()}


def write(path: str, text: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(textwrap.dedent(text))
    return path


def make_chart(root: Path, name: str, version: str = "1.0.0", **templates: str) -> str:
    """A chart folder with the given templates (``cm="..."`` → templates/cm.yaml)."""
    write(str(root / name / "Chart.yaml"), f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    for template, text in templates.items():
        write(str(root / name / "templates" / f"{template}.yaml"), text)
    return str(root / name)


def test_every_rendered_object_is_a_child_in_the_release_namespace(helm_binary: str) -> None:
    objects = manifests(lambda: helm.Chart("web", path=CHART, namespace="shop"))
    assert set(objects) == APP_OBJECTS
    assert {o["metadata"]["namespace"] for o in objects.values()} == {"shop"}
    assert objects["Deployment:shop/web-app"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27.0"


def test_values_files_merge_in_order_then_values(helm_binary: str) -> None:
    common = write("values/common.yaml", """
        image: {tag: "1.25"}
        autoscaling: {enabled: false}
        replicas: 2
        settings: {LOG_LEVEL: warn, REGION: eu}
    """)
    staging = write("values/staging.yaml", """
        replicas: 3
        settings: {LOG_LEVEL: debug}
    """)
    objects = manifests(lambda: helm.Chart("web", path=CHART, namespace="shop", values_files=[common, staging],
                                           values={"image": {"tag": "1.26"}}))
    deployment = objects["Deployment:shop/web-app"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert objects["ConfigMap:shop/web-app"]["data"] == {"LOG_LEVEL": "debug", "REGION": "eu"}
    assert "HorizontalPodAutoscaler:shop/web-app" not in objects


def test_an_unchanged_release_costs_no_helm_call(helm_calls: HelmCalls) -> None:
    values = write("values/dev.yaml", "replicas: 2\n")

    def program() -> None:
        helm.Chart("web", path=CHART, namespace="shop", values_files=[values])

    first = manifests(program)
    assert helm_calls.count("template") == 1
    assert manifests(program) == first
    assert helm_calls.count("template") == 1 and helm_calls.count("version") == 1
    write("values/dev.yaml", "replicas: 4\n")
    manifests(program)
    assert helm_calls.count("template") == 2


def test_outputs_in_values_become_outputs_in_the_objects(helm_binary: str) -> None:
    def program() -> None:
        suffix = random.Id("suffix", byte_length=4)
        helm.Chart("web", path=CHART, namespace="shop", values={
            "ingress": {"host": suffix.hex.apply(lambda h: f"{h}.example.com")},
            "serviceAccount": {"annotations": {"role": suffix.hex}},
        })

    graph = declare(program)
    ingress = next(r for r in graph.resources.values() if r.type_token == "k8s:networking.k8s.io/v1:Ingress")
    host = ingress.inputs["manifest"]["spec"]["rules"][0]["host"]
    assert isinstance(host, Output)
    assert any(urn.endswith("::random:Id::suffix") for urn in graph.deps[ingress.urn])
    known = lambda resource, prop: "c0ffee"  # noqa: E731 - a lookup, as the planner gives
    assert host.resolve(known) == "c0ffee.example.com"
    assert host.resolve(lambda resource, prop: UNKNOWN) is UNKNOWN
    account = next(r for r in graph.resources.values() if r.type_token == "k8s:core/v1:ServiceAccount")
    assert account.inputs["manifest"]["metadata"]["annotations"]["role"].resolve(known) == "c0ffee"


def test_an_output_the_chart_transforms_is_refused(helm_binary: str) -> None:
    def program() -> None:
        suffix = random.Id("suffix", byte_length=4)
        helm.Chart("web", path=CHART, namespace="shop", values={"ingress": {"enabled": suffix.hex}})

    with pytest.raises(StackwrightError, match=r"does not use values.ingress.enabled verbatim"):
        declare(program)


def test_secrets_in_rendered_secret_objects_are_masked(helm_binary: str, tmp_path: Path) -> None:
    chart = make_chart(tmp_path, "creds", secret="""
        apiVersion: v1
        kind: Secret
        metadata: {name: creds}
        stringData: {password: {{ .Values.password | quote }}}
    """)
    objects = manifests(lambda: helm.Chart("db", path=chart, namespace="data", values={"password": "hunter2"}))
    password = objects["Secret:data/creds"]["stringData"]["password"]
    assert isinstance(password, Output) and password.resolve(lambda r, p: None) == Secret("hunter2")


def test_a_template_error_is_a_plan_error_naming_chart_and_values_file(helm_binary: str, tmp_path: Path) -> None:
    chart = make_chart(tmp_path, "broken", cm="""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: x}
        data: {size: {{ required "size is required" .Values.size | quote }}}
    """)
    values = write("values/prod.yaml", "other: 1\n")
    with pytest.raises(StackwrightError) as caught:
        declare(lambda: helm.Chart("db", path=chart, values_files=[values]))
    text = str(caught.value)
    assert "broken" in text and "values/prod.yaml" in text and "size is required" in text
    assert "test_chart.py" in text


def test_a_broken_values_file_is_named_with_its_line(helm_binary: str) -> None:
    values = write("values/dev.yaml", "replicas: 2\nimage: [unclosed\n")
    with pytest.raises(StackwrightError) as caught:
        declare(lambda: helm.Chart("web", path=CHART, values_files=[values]))
    assert caught.value.file == values and caught.value.line is not None
    assert "not valid YAML" in str(caught.value)


def test_hooks_are_refused_by_name_or_left_out_on_request(helm_binary: str, tmp_path: Path) -> None:
    chart = make_chart(tmp_path, "hooked", cm="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n", job="""
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: migrate
          annotations: {"helm.sh/hook": pre-install}
        spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
    """)
    with pytest.raises(StackwrightError, match=r"hook \(helm.sh/hook: pre-install\) on Job migrate") as caught:
        declare(lambda: helm.Chart("db", path=chart, namespace="data"))
    assert "skip_hooks=True" in str(caught.value)
    assert set(manifests(lambda: helm.Chart("db", path=chart, namespace="data", skip_hooks=True))) == {
        "ConfigMap:data/plain"}


def test_a_missing_helm_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STACKWRIGHT_HELM", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackwrightError, match="helm binary was not found") as caught:
        declare(lambda: helm.Chart("web", path=CHART))
    assert caught.value.hint and "make helm" in caught.value.hint and "STACKWRIGHT_HELM" in caught.value.hint


def test_chart_from_an_http_repository_is_pulled_once(helm_calls: HelmCalls, chart_repo: Server) -> None:
    def program() -> None:
        helm.Chart("web", chart="app", repo=chart_repo.url, version="0.4.0", namespace="shop")

    objects = manifests(program)
    assert objects["Deployment:shop/web-app"]["metadata"]["labels"]["helm.sh/chart"] == "app-0.4.0"
    assert manifests(program) == objects
    assert helm_calls.count("pull") == 1 and helm_calls.count("template") == 1


def test_chart_from_an_oci_registry(helm_binary: str, oci_registry: Server) -> None:
    objects = manifests(lambda: helm.Chart("web", chart=f"{oci_registry.url}/app", version="0.3.0",
                                           namespace="shop", plain_http=True))
    assert set(objects) == APP_OBJECTS


def test_an_unknown_chart_version_is_a_plan_error(helm_binary: str, chart_repo: Server) -> None:
    with pytest.raises(StackwrightError, match=r"could not fetch chart app from .* 9.9.9"):
        declare(lambda: helm.Chart("web", chart="app", repo=chart_repo.url, version="9.9.9"))


def test_lint_errors_are_plan_errors_when_lint_is_asked_for(helm_binary: str, tmp_path: Path) -> None:
    chart = make_chart(tmp_path, "sloppy", "1.0", cm="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert set(manifests(lambda: helm.Chart("a", path=chart, namespace="n"))) == {"ConfigMap:n/x"}
    with pytest.raises(StackwrightError, match=r"helm lint failed for chart 'b' .*version should be of type string"):
        declare(lambda: helm.Chart("b", path=chart, lint=True))


def test_the_program_can_use_one_rendered_object(helm_binary: str) -> None:
    def program() -> None:
        web = helm.Chart("web", path=CHART, namespace="shop")
        assert set(web.resources) == APP_OBJECTS
        service = web.resource("Service", "web-app")
        random.Id("after-service", byte_length=2, opts=sw.ResourceOptions(depends_on=[service]))

    graph = declare(program)
    after = next(urn for urn in graph.resources if urn.endswith("::random:Id::after-service"))
    assert [urn for urn in graph.deps[after] if "k8s:core/v1:Service" in urn]


def test_force_on_a_chart_a_folder_or_a_tenant_is_every_objects_force(helm_binary: str, tmp_path: Path) -> None:
    """`force=True` on a component that renders objects is each object's `force`: fields
    other field managers own are taken over instead of failing on the conflict."""
    from stackwright.components import Tenant

    make_chart(tmp_path / "catalog", "api", cm="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n")

    def program(force: bool) -> None:
        helm.Chart("web", path=CHART, namespace="shop", force=force)
        helm.ChartFolder("apps", path=str(tmp_path / "catalog"), force=force)
        Tenant({"name": "acme"}, chart=CHART, force=force)

    for force in (True, False):
        objects = [r for r in declare(lambda: program(force)).resources.values() if "manifest" in r.inputs]
        kinds = {r.inputs["manifest"]["kind"] for r in objects}
        assert {"Deployment", "Namespace", "ConfigMap", "NetworkPolicy", "RoleBinding"} <= kinds, kinds
        assert {r.inputs["force"] for r in objects} == {force}
