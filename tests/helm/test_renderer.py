"""helm-render stands in for `helm template` only if it prints the same bytes: each case
renders one request both ways, with the flags Stackwright gives `helm template`."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helm_servers import EXAMPLE_CHART

from stackwright.providers.k8s.helm.binary import HelmCallFailed, HelmError, error_line
from stackwright.providers.k8s.helm.render import RenderRequest, renderer_request, template_args
from stackwright.providers.k8s.helm.renderer import Renderer, renderer_path
from stackwright.providers.k8s.helm.sources import FetchedChart
from stackwright.providers.k8s.helm.values import ValuesFile

CAPABILITIES_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
    "crds/widget.yaml": """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          names: {kind: Widget, plural: widgets}
          scope: Namespaced
          versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
    """,
    "templates/cm.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-caps
          namespace: {{ .Release.Namespace }}
        data:
          kube: {{ .Capabilities.KubeVersion.Version | quote }}
          helm: {{ .Capabilities.HelmVersion.Version | quote }}
          go: {{ .Capabilities.HelmVersion.GoVersion | quote }}
          widgets: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}
          size: {{ .Values.size | quote }}
          {{- range $k, $v := .Values.extra }}
          {{ $k }}: {{ $v | quote }}
          {{- end }}
    """,
    "templates/hooks.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-setup
          annotations: {"helm.sh/hook": pre-install}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: {{ .Release.Name }}-test
          annotations: {"helm.sh/hook": test}
        spec: {containers: [{name: t, image: busybox}]}
    """,
    "values.yaml": "size: small\nextra: {a: '1'}\n",
}


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    path = renderer_path()
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is missing: run `make helm` (a skip fails under CI=true)")
    started = Renderer(path)
    yield started
    started.close()


def write_chart(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return str(root)


def request(chart: str, values: dict[str, Any], values_files: tuple[str, ...] = (), **options: Any) -> RenderRequest:
    return RenderRequest(release=options.pop("release", "web"), namespace="shop", chart=FetchedChart(chart, "-"),
                         values_files=tuple(ValuesFile(f, "-") for f in values_files), values=values, **options)


def helm_template(helm: str, req: RenderRequest) -> tuple[str, str]:
    """stdout and helm's error line of `helm template`, as render.py runs it."""
    values_args = [arg for f in req.values_files for arg in ("-f", f.path)] + ["-f", "-"]
    done = subprocess.run([helm, *template_args(req, values_args)], input=json.dumps(req.values),
                          capture_output=True, text=True)
    return done.stdout, error_line(done.stderr) if done.returncode else ""


def rendered(renderer: Renderer, req: RenderRequest) -> tuple[str, str]:
    try:
        return renderer.render(renderer_request(req, json.dumps(req.values))), ""
    except HelmCallFailed as exc:
        return "", exc.message


def test_the_example_chart_with_values_files_and_values(helm_binary: str, renderer: Renderer,
                                                        tmp_path: Path) -> None:
    files = [write_chart(tmp_path, {"common.yaml": "replicas: 2\nsettings: {A: x, B: y}\n"}) + "/common.yaml",
             write_chart(tmp_path, {"dev.yaml": "settings: {B: z}\nautoscaling: {enabled: false}\n"}) + "/dev.yaml"]
    req = request(str(EXAMPLE_CHART), {"replicas": 3, "image": {"tag": "1.26"}, "settings": {"C": 1.5}},
                  tuple(files), kube_version="v1.37.2")
    out, error = rendered(renderer, req)
    assert (out, error) == helm_template(helm_binary, req)
    assert "replicas: 3" in out and "nginx:1.26" in out and "HorizontalPodAutoscaler" not in out


def test_a_packaged_chart_as_pulled_from_a_repository(helm_binary: str, renderer: Renderer, tmp_path: Path) -> None:
    done = subprocess.run([helm_binary, "package", str(EXAMPLE_CHART), "--destination", str(tmp_path)],
                          check=True, capture_output=True, text=True)
    archive = done.stdout.strip().rsplit(": ", 1)[-1]
    req = request(archive, {"ingress": {"host": "shop.example.com"}}, kube_version="v1.37.2")
    out, error = rendered(renderer, req)
    assert (out, error) == helm_template(helm_binary, req)
    assert "shop.example.com" in out and "app.example.com" not in out


@pytest.mark.parametrize("hooks", [True, False])
def test_crds_capabilities_and_hooks_as_helm_template_prints_them(helm_binary: str, renderer: Renderer,
                                                                   tmp_path: Path, hooks: bool) -> None:
    chart = write_chart(tmp_path / "caps", CAPABILITIES_CHART)
    req = request(chart, {"extra": {"b": "2"}}, kube_version="v1.31.4", api_versions=("example.com/v1",),
                  hooks=hooks)
    out, error = rendered(renderer, req)
    assert (out, error) == helm_template(helm_binary, req)
    assert "widgets.example.com" in out and 'kube: "v1.31.4"' in out and 'widgets: "true"' in out
    assert 'helm: "v3.22.0"' in out
    assert ("web-setup" in out) is hooks and "web-test" not in out


@pytest.mark.parametrize("case", ["template fails", "library chart", "bad kube version", "missing values file"])
def test_a_refused_render_gives_helms_own_error_line(helm_binary: str, renderer: Renderer, tmp_path: Path,
                                                     case: str) -> None:
    files: dict[str, str] = {"Chart.yaml": "apiVersion: v2\nname: bad\nversion: 0.1.0\n",
                             "templates/cm.yaml": '{{ fail "the size is required" }}\n'}
    options: dict[str, Any] = {}
    values_files: tuple[str, ...] = ()
    if case == "library chart":
        files["Chart.yaml"] += "type: library\n"
    if case == "bad kube version":
        options["kube_version"] = "one-point-thirty"
    if case == "missing values file":
        values_files = (str(tmp_path / "absent.yaml"),)
    req = request(write_chart(tmp_path / "bad", files), {}, values_files, **options)
    out, error = rendered(renderer, req)
    assert out == "" and error
    assert error == helm_template(helm_binary, req)[1]


def test_concurrent_requests_each_get_their_own_release(renderer: Renderer) -> None:
    def one(i: int) -> str:
        values = {"replicas": i, "autoscaling": {"enabled": False}}
        return renderer.render(renderer_request(request(str(EXAMPLE_CHART), values, release=f"r{i}"),
                                                json.dumps(values)))

    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(one, range(24)))
    for i, out in enumerate(outputs):
        assert f"name: r{i}-app" in out and f"replicas: {i}\n" in out


def test_a_renderer_that_dies_is_an_error_saying_how_to_rebuild_it(tmp_path: Path) -> None:
    broken = tmp_path / "helm-render"
    broken.write_text("#!/bin/sh\necho 'Error: exec format error' >&2\nexit 3\n")
    broken.chmod(0o755)
    renderer = Renderer(broken)
    try:
        with pytest.raises(HelmError) as caught:
            renderer.render(renderer_request(request(str(EXAMPLE_CHART), {}), "{}"))
    finally:
        renderer.close()
    assert "helm-render exited (3): exec format error" in caught.value.message
    assert caught.value.hint and "make helm" in caught.value.hint
