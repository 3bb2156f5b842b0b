"""Dependencies declared by name instead of by ``Output``: a resource exports a name
(a CloudFormation ``Export``...), another imports it. Providers tell which names
(``ResourceProvider.links``); this module turns them into edges of the desired graph,
so such resources are created after, and deleted before, what they import from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
        return f"{_shown(self.importer)} imports {self.name!r} exported by {_shown(self.exporter)}"


def _shown(node: str) -> str:
    """A resource by its name; a stack (``project/stack``) as it is."""
    return urn_name(node) if "::" in node else node


def link_edges(desired: DesiredGraph, providers: ProviderLookup) -> list[LinkEdge]:
    """Every import of a name another resource of the graph exports.

    Raises ``PlanError`` when two resources export the same name."""
    exporters: dict[str, str] = {}
    imports: dict[str, frozenset[str]] = {}
    linking = _linking_handlers(desired, providers)
    for urn, resource in desired.resources.items():
        handler = linking.get(resource.type_token)
        if handler is None:
            continue
        links = handler.links(resolve_value(resource.inputs, _unknown))
        for name in sorted(links.exports):
            if exporters.setdefault(name, urn) != urn:
                raise PlanError(f"{urn_name(exporters[name])} and {urn_name(urn)} both export {name!r}",
                                resource=urn, file=resource.decl_file, line=resource.decl_line,
                                hint="export names must be unique; rename one of them")
        if links.imports:
            imports[urn] = links.imports
    return [LinkEdge(urn, exporters[name], name) for urn, names in imports.items() for name in sorted(names)
            if exporters.get(name, urn) != urn]


def _linking_handlers(desired: DesiredGraph, providers: ProviderLookup) -> dict[str, ResourceProvider]:
    """The resource providers, by type, that implement ``links``: the others cost nothing."""
    types = {resource.type_token for resource in desired.resources.values()}
    handlers = {t: providers.resource(t) for t in types}
    return {t: h for t, h in handlers.items() if type(h).links is not ResourceProvider.links}


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


def stack_links(resources: Iterable[tuple[str, Mapping[str, Any]]], providers: ProviderLookup) -> Links:
    """Every name one stack's resources, given as ``(type token, inputs)`` (from its
    recorded state, or a desired graph's resolved inputs), export and import."""
    exports: set[str] = set()
    imports: set[str] = set()
    for type_token, inputs in resources:
        handler = providers.resource(type_token)
        if type(handler).links is not ResourceProvider.links:
            found = handler.links(inputs)
            exports |= found.exports
            imports |= found.imports
    return Links(frozenset(exports), frozenset(imports - exports))


def stack_edges(links: Mapping[str, Links]) -> list[LinkEdge]:
    """For stacks of a workspace (by name), each import of a name another stack
    exports: the importing stack goes after the exporting one. Pure; the workspace's
    stack order adds these edges to the ones ``depends_on`` declares."""
    exporters = {name: stack for stack, found in sorted(links.items()) for name in sorted(found.exports)}
    return [LinkEdge(stack, exporters[name], name) for stack, found in sorted(links.items())
            for name in sorted(found.imports) if exporters.get(name, stack) != stack]


def _unknown(resource: Resource, prop: str) -> Any:
    return UNKNOWN
