"""Dependencies declared by name instead of by ``Output``: a resource exports a name
(a CloudFormation ``Export``...), another imports it. Providers tell which names
(``ResourceProvider.links``); this module turns them into edges of the desired graph,
so such resources are created after, and deleted before, what they import from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from stackwright.errors import PlanError
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import resolve_value
from stackwright.model.resource import Resource, urn_name
from stackwright.model.values import UNKNOWN
from stackwright.providers.protocol import Links, ProviderLookup, ResourceProvider


@dataclass(frozen=True)
class LinkEdge:
    """``importer`` waits for ``exporter`` because it imports ``name``."""

    importer: str
    exporter: str
    name: str

    def explain(self) -> str:
        return f"{urn_name(self.importer)} imports {self.name!r} exported by {urn_name(self.exporter)}"


def link_edges(desired: DesiredGraph, providers: ProviderLookup) -> list[LinkEdge]:
    """Every import of a name another resource of the graph exports.

    Raises ``PlanError`` when two resources export the same name."""
    exporters: dict[str, str] = {}
    imports: dict[str, frozenset[str]] = {}
    for urn, resource in desired.resources.items():
        links = _links(resource, providers)
        for name in sorted(links.exports):
            if exporters.setdefault(name, urn) != urn:
                raise PlanError(f"{urn_name(exporters[name])} and {urn_name(urn)} both export {name!r}",
                                resource=urn, file=resource.decl_file, line=resource.decl_line,
                                hint="export names must be unique; rename one of them")
        if links.imports:
            imports[urn] = links.imports
    return [LinkEdge(urn, exporters[name], name) for urn, names in imports.items() for name in sorted(names)
            if exporters.get(name, urn) != urn]


def with_links(desired: DesiredGraph, edges: list[LinkEdge]) -> DesiredGraph:
    """The graph with each importer depending on its exporters."""
    if not edges:
        return desired
    deps = {urn: list(ds) for urn, ds in desired.deps.items()}
    for edge in edges:
        wanted = deps.setdefault(edge.importer, [])
        if edge.exporter not in wanted:
            wanted.append(edge.exporter)
    return replace(desired, deps=deps)


def _links(resource: Resource, providers: ProviderLookup) -> Links:
    """What the resource's provider says; providers without ``links`` cost nothing."""
    handler = providers.resource(resource.type_token)
    if type(handler).links is ResourceProvider.links:
        return Links()
    return handler.links(resolve_value(resource.inputs, _unknown))


def _unknown(resource: Resource, prop: str) -> Any:
    return UNKNOWN
