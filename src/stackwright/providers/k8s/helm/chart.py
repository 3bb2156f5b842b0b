"""``Chart``: a Helm chart rendered by the real helm binary, each object a child resource.

Rendering starts in a thread pool when the Chart is declared, so the releases of a
program render in parallel (two helm processes per core: part of a helm run is process
start-up and file reads, during which the other keeps the core busy). The children are
declared when the program first asks for them (``chart.resources``) or when it finishes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwright.model import context
from stackwright.model.resource import Component, Resource, ResourceOptions
from stackwright.providers.k8s.helm import objects as rendered
from stackwright.providers.k8s.helm.binary import HelmError, find_helm
from stackwright.providers.k8s.helm.render import RenderRequest, render
from stackwright.providers.k8s.helm.sources import ChartSource, FetchedChart, fetch
from stackwright.providers.k8s.helm.values import (
    PLACEHOLDER, OutputValue, ValuesFile, neutral, read_values_files, substitute, used_indexes,
    with_placeholders,
)

CACHE_DIR = Path(".stackwright") / "cache" / "helm"
"""Relative to the project folder (the working directory of every command)."""
DEFAULT_KUBE_VERSION = "v1.37.2"
"""What ``.Capabilities.KubeVersion`` says when the program does not: the version of the
local cluster. ``helm template`` alone says v1.20.0, which charts that require a recent
Kubernetes (``kubeVersion: >=1.23.0-0`` in podinfo's Chart.yaml) refuse."""


class Chart(Component, type="k8s:helm:Chart"):
    """A Helm release rendered client-side: ``helm template``, then one ``k8s.Object``
    child per rendered object. See docs/helm.md.

    Give the chart as ``path=`` (a local folder), ``chart=`` and ``repo=`` (an HTTP chart
    repository), or ``chart="oci://host/path/name"`` (an OCI registry). ``values_files``
    are merged in order, then ``values`` on top; values may hold Outputs, which the chart
    must use verbatim (they become "known after apply" in the objects that use them).
    ``force=True`` is every object's ``force``: fields other field managers own are
    taken over instead of failing on the conflict.
    """

    def __init__(
        self, name: str, chart: str | None = None, *, version: str | None = None,
        repo: str | None = None, path: str | None = None, values_files: Sequence[str] = (),
        values: Mapping[str, Any] | None = None, namespace: str | None = None,
        skip_hooks: bool = False, lint: bool = False, kube_version: str | None = None,
        api_versions: Sequence[str] = (), plain_http: bool = False, force: bool = False,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.namespace = namespace or "default"
        self.force = force
        self.source = self._source(chart, version, repo, path, plain_http)
        files = tuple(read_values_files(list(values_files)))
        document_a, self._output_values = with_placeholders(dict(values or {}), "a")
        document_b = with_placeholders(dict(values or {}), "b")[0] if self._output_values else None
        release = _Release(name=name, namespace=self.namespace, values_files=files,
                           kube_version=kube_version or DEFAULT_KUBE_VERSION, api_versions=tuple(api_versions),
                           hooks=not skip_hooks, lint=lint, label=f"{name!r} ({self.source.describe()})")
        self._job = _submit(release, self.source, document_a, document_b, cache_dir())
        self._resources: dict[str, Resource] | None = None
        self._lock = threading.Lock()
        context.current().finishers.append(self._materialize)

    @property
    def resources(self) -> dict[str, Resource]:
        """The child objects by ``Kind:namespace/name`` (``Deployment:shop/web-app``)."""
        self._materialize()
        assert self._resources is not None
        return self._resources

    def resource(self, kind: str, name: str, namespace: str | None = None) -> Resource:
        """One rendered object, e.g. ``chart.resource("Service", "web")``."""
        for child in self.resources.values():
            manifest = child.inputs["manifest"]
            meta = manifest["metadata"]
            if manifest["kind"] == kind and meta["name"] == name and (
                    namespace is None or meta.get("namespace") == namespace):
                return child
        raise self.error(f"the chart renders no {kind} named {name!r}",
                         hint=f"it renders: {', '.join(self.resources) or 'nothing'}")

    def _source(self, chart: str | None, version: str | None, repo: str | None,
                path: str | None, plain_http: bool) -> ChartSource:
        if path is not None and (chart or repo):
            raise self.error("give either path= or chart= (with repo= for an HTTP repository), not both",
                             prop="path")
        if path is not None:
            if version is not None:
                raise self.error("version= applies to a chart from a repository or registry, not to path=",
                                 prop="version", hint="the version of a local chart is in its Chart.yaml")
            return ChartSource("path", path, Path(path).name)
        if chart and chart.startswith("oci://"):
            return ChartSource("oci", chart, chart.rstrip("/").rsplit("/", 1)[-1], version, plain_http)
        if chart and repo:
            return ChartSource("repo", repo, chart, version, plain_http)
        raise self.error(
            "the chart's source is missing", prop="chart",
            hint='path="charts/app", chart="app" with repo="https://...", or chart="oci://host/repo/app"',
        )

    def _materialize(self) -> None:
        with self._lock:
            if self._resources is not None:
                return
            self._resources = {}
            try:
                objects, check = self._job.result()
            except HelmError as exc:
                raise self._located(exc) from None
            if self._output_values:
                self._check_verbatim(objects, check)
            self._resources = self._declare(objects)

    def _located(self, exc: HelmError) -> HelmError:
        if exc.file:
            return exc
        return HelmError(exc.message, file=self.decl_file, line=self.decl_line, resource=self.urn,
                         hint=exc.hint)

    def _check_verbatim(self, objects: list[dict[str, Any]], check: list[dict[str, Any]] | None) -> None:
        """Each Output value must appear unchanged in the output: a second render with
        other placeholders must differ only in the placeholders."""
        text, other = json.dumps(objects, sort_keys=True), json.dumps(check, sort_keys=True)
        unused = [v.path for i, v in enumerate(self._output_values) if i not in used_indexes(text)]
        if neutral(text) != neutral(other) or unused:
            paths = unused or [v.path for v in self._output_values]
            raise self.error(
                f"the chart does not use {', '.join(paths)} verbatim, so it cannot be an Output "
                "(a value known only after apply)",
                prop="values",
                hint="Outputs in values must be used as they are (not transformed, tested or "
                "left unused by the templates); pass a plain value instead",
            )

    def _declare(self, objects: list[dict[str, Any]]) -> dict[str, Resource]:
        from stackwright.providers.k8s import Object

        outputs = [v.output for v in self._output_values]
        options = dataclasses.replace(self.resource_options, parent=self, aliases=())
        children: dict[str, Resource] = {}
        for obj in objects:
            obj = rendered.with_namespace(obj, self.namespace)
            key = rendered.resource_key(obj)
            if PLACEHOLDER.search(key):
                raise self.error(f"an Output is used in the name or namespace of {key}", prop="values",
                                 hint="the set of objects must be known when the plan is made")
            if key in children:
                raise self.error(f"the chart renders {key} twice", hint="give each object a unique name")
            manifest = substitute(obj, outputs) if outputs else obj
            child = Object(rendered.child_name(obj), manifest=manifest, force=self.force, opts=options)
            child.decl_file, child.decl_line = self.decl_file, self.decl_line
            children[key] = child
        return children


def cache_dir() -> Path:
    """The project's render cache, found once per program run (``getcwd`` is slow on
    some filesystems, and a program may declare a thousand charts)."""
    extensions = context.current().extensions
    if "helm-cache" not in extensions:
        extensions["helm-cache"] = Path.cwd() / CACHE_DIR
    found: Path = extensions["helm-cache"]
    return found


@dataclass(frozen=True)
class _Release:
    """The render inputs known when the Chart is declared (the chart is fetched later)."""

    name: str
    namespace: str
    values_files: tuple[ValuesFile, ...]
    kube_version: str | None
    api_versions: tuple[str, ...]
    hooks: bool
    lint: bool
    label: str

    def request(self, chart: FetchedChart, values: Mapping[str, Any]) -> RenderRequest:
        return RenderRequest(
            release=self.name, namespace=self.namespace, chart=chart, values_files=self.values_files,
            values=values, kube_version=self.kube_version, api_versions=self.api_versions,
            hooks=self.hooks, lint=self.lint, label=self.label,
        )


Rendered = tuple[list[dict[str, Any]], list[dict[str, Any]] | None]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _submit(release: _Release, source: ChartSource, document: dict[str, Any],
            check_document: dict[str, Any] | None, cache_dir: Path) -> Future[Rendered]:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="helm")
    return _pool.submit(_render_release, release, source, document, check_document, cache_dir)


def _render_release(release: _Release, source: ChartSource, document: dict[str, Any],
                    check_document: dict[str, Any] | None, cache_dir: Path) -> Rendered:
    """Runs in the pool: fetch the chart (once per version), render (once per input)."""
    helm = find_helm(cache_dir)
    chart = fetch(helm, source, cache_dir)
    objects = render(helm, release.request(chart, document), cache_dir)
    check = render(helm, release.request(chart, check_document), cache_dir) if check_document else None
    return objects, check
