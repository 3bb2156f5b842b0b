"""``ChartFolder``: an app catalog, a directory of application charts, one release and
one namespace per folder.

Every sub-folder holding a ``Chart.yaml`` of an application chart becomes a Namespace
named after the folder and a ``Chart`` (release) of the same name in it; library charts
(``type: library``) are skipped, since they render nothing. Values come from the
chart's own ``values.yaml``, then ``values-<environment>.yaml`` in the folder when
present, then ``values[folder]`` from the program. Adding a folder adds its namespace
and release; deleting one removes exactly those objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackwright.model import context
from stackwright.model.resource import Component, ResourceOptions
from stackwright.providers.k8s.helm.binary import find_helm
from stackwright.providers.k8s.helm.chart import Chart, cache_dir
from stackwright.providers.k8s.helm.dependencies import chart_metadata, with_dependencies


class ChartFolder(Component, type="k8s:helm:ChartFolder"):
    """One release per application chart under ``path`` (relative to the project
    folder), each in a namespace named after its folder. ``environment`` (default: the
    stack's name) picks ``values-<environment>.yaml``; ``force`` is every object's.
    See docs/helm.md."""

    def __init__(self, name: str, path: str, *, environment: str | None = None,
                 values: Mapping[str, Mapping[str, Any]] | None = None, skip_hooks: bool = False,
                 force: bool = False, opts: ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        from stackwright.providers.k8s import Namespace

        root = Path(path)
        if not root.is_dir():
            raise self.error(f"chart folder {path} does not exist", prop="path",
                             hint="path= is relative to the project folder")
        environment = environment or context.current().stack
        self.namespaces: dict[str, Any] = {}
        self.releases: dict[str, Chart] = {}
        for folder in application_charts(root):
            app = folder.name
            values_file = folder / f"values-{environment}.yaml"
            namespace = Namespace(app, metadata={"name": app, "labels": {"stackwright.io/catalog": name}},
                                  force=force)
            self.namespaces[app] = namespace
            self.releases[app] = Chart(
                app, path=str(with_dependencies(find_helm(cache_dir()), folder, cache_dir())), namespace=app,
                values_files=[str(values_file)] if values_file.is_file() else [],
                values=dict((values or {}).get(app, {})), skip_hooks=skip_hooks, force=force,
                opts=ResourceOptions(depends_on=[namespace]))


def application_charts(root: Path) -> list[Path]:
    """The sub-folders holding an application chart, by name."""
    return [folder for folder in sorted(root.iterdir())
            if (folder / "Chart.yaml").is_file() and chart_metadata(folder).get("type") != "library"]
