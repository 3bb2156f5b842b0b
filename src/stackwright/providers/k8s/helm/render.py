"""Rendering a chart with ``helm template`` into a list of Kubernetes objects, cached.

A render is a pure function of the chart's content, the values and helm's version, so
it is cached on disk under ``.stackwright/cache/helm/renders/`` by the sha256 of
(chart digest, values digest, helm version, release, namespace, flags): an unchanged
release costs no helm call. Failed renders are never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackwright.providers.k8s.helm.binary import Helm, HelmCallFailed, HelmError, write_atomic
from stackwright.providers.k8s.helm.sources import FetchedChart
from stackwright.providers.k8s.helm.values import ValuesFile, values_digest

CACHE_FORMAT = 1
HOOK_ANNOTATION = "helm.sh/hook"


@dataclass(frozen=True, eq=False)
class RenderRequest:
    """Everything a render depends on. ``label`` only names the chart in errors."""

    release: str
    namespace: str
    chart: FetchedChart
    values_files: tuple[ValuesFile, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    hooks: bool = True
    lint: bool = False
    label: str = ""

    def cache_key(self, helm_version: str) -> str:
        parts = {
            "format": CACHE_FORMAT, "chart": self.chart.digest, "helm": helm_version,
            "values": values_digest(self.values_files, self.values), "release": self.release,
            "namespace": self.namespace, "kube_version": self.kube_version,
            "api_versions": self.api_versions, "hooks": self.hooks, "lint": self.lint,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        files = ", ".join(f.path for f in self.values_files) or "none"
        return f"chart {self.label or self.chart.path} (values files: {files})"


def render(helm: Helm, request: RenderRequest, cache_dir: Path) -> list[dict[str, Any]]:
    """The chart's objects, from the cache or from ``helm template``."""
    cached = cache_dir / "renders" / f"{request.cache_key(helm.version)}.json"
    try:
        objects: list[dict[str, Any]] = json.loads(cached.read_text())
        return objects
    except (OSError, ValueError):
        pass
    objects = _render_with_helm(helm, request)
    write_atomic(cached, json.dumps(objects))
    return objects


def _render_with_helm(helm: Helm, request: RenderRequest) -> list[dict[str, Any]]:
    """The values reach helm on its stdin (``-f -``, last, so they win over the files):
    no temporary file per release."""
    values = json.dumps(request.values)
    values_args = [arg for f in request.values_files for arg in ("-f", f.path)] + ["-f", "-"]
    if request.lint:
        lint = ["lint", request.chart.path, "--namespace", request.namespace, *values_args]
        _call(lambda: helm.run(lint, stdin=values), request, "helm lint")
    args = template_args(request, values_args)
    text = _call(lambda: helm.run(args, stdin=values), request, "helm template")
    return parse_manifests(text, request)


def template_args(request: RenderRequest, values_args: Sequence[str]) -> list[str]:
    args = ["template", request.release, request.chart.path, "--namespace", request.namespace,
            "--include-crds", "--skip-tests", *values_args]
    if not request.hooks:
        args.append("--no-hooks")
    if request.kube_version:
        args += ["--kube-version", request.kube_version]
    for api_version in request.api_versions:
        args += ["--api-versions", api_version]
    return args


def _call(run: Callable[[], str], request: RenderRequest, what: str) -> str:
    try:
        return run()
    except HelmCallFailed as exc:
        raise HelmError(f"{what} failed for {request.describe()}: {exc}",
                        hint="fix the chart or the values; the line above is helm's own message") from None


_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)


def parse_manifests(text: str, request: RenderRequest) -> list[dict[str, Any]]:
    """Objects of ``helm template`` output, empty documents skipped, ``List`` kinds
    expanded; hooks refused (see ``_check_object``)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    objects: list[dict[str, Any]] = []
    for document in _DOCUMENT_SEPARATOR.split(text):
        source_match = _SOURCE.search(document)
        source = source_match.group(1) if source_match else "helm output"
        try:
            obj = yaml.load(document, Loader=loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise HelmError(f"{request.describe()}: {source} renders invalid YAML: {exc}") from None
        if obj is None:
            continue
        for item in obj.get("items", []) if _is_list(obj) else [obj]:
            _check_object(item, source, request)
            objects.append(item)
    return objects


def _is_list(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("kind", "")).endswith("List") and "items" in obj


def _check_object(obj: Any, source: str, request: RenderRequest) -> None:
    if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
        raise HelmError(f"{request.describe()}: {source} renders something that is not a "
                        "Kubernetes object (it needs apiVersion and kind)")
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        raise HelmError(f"{request.describe()}: {source} renders a {obj['kind']} without metadata.name")
    hook = (obj["metadata"].get("annotations") or {}).get(HOOK_ANNOTATION)
    if hook:
        raise HelmError(
            f"{request.describe()}: {source} is a Helm hook ({HOOK_ANNOTATION}: {hook}) on "
            f"{obj['kind']} {obj['metadata']['name']}; Stackwright does not run Helm hooks",
            hint="pass skip_hooks=True to leave the chart's hooks out, or remove the hook "
            "annotation so the object is managed like any other",
        )
