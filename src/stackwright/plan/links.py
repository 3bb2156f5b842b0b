"""Dependencies declared by name instead of by ``Output``: a resource exports a name
(a CloudFormation ``Export``...), another imports it. Providers tell which names
(``ResourceProvider.links``); this module turns them into edges of the desired graph,
so such resources are created after, and deleted before, what they import from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import PlanError
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import resolve_value
from stackwright.model.resource import Resource, urn_name
from stackwright.model.values import UNKNOWN
from stackwright.providers.protocol import Links, ProviderLookup, ResourceProvider


# Every `up` loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True)``.


@frozen_record
class LinkEdge(FrozenCompared):
    """``importer`` waits for ``exporter`` because it imports ``name``."""

    importer: str
    exporter: str
    name: str

    def __init__(self, importer: str, exporter: str, name: str) -> None:
        object.__setattr__(self, "importer", importer)
        object.__setattr__(self, "exporter", exporter)
        object.__setattr__(self, "name", name)

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
    if not linking:  # most programs: no resource type links, no walk over every resource
        return []
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


def declares_links(desired: DesiredGraph, providers: ProviderLookup) -> bool:
    """Whether the program declares a resource of a type that can export or import
    names: without one, its links are none, whatever values it was given."""
    return bool(_linking_handlers(desired, providers))


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


@frozen_record
class StackLinks(FrozenCompared):
    """The names one stack's resources export and import, each with the name of the
    resource (a template's stack) that exports or imports it."""

    exports: Mapping[str, str]
    imports: Mapping[str, str]

    def __init__(self, exports: Mapping[str, str], imports: Mapping[str, str]) -> None:
        object.__setattr__(self, "exports", exports)
        object.__setattr__(self, "imports", imports)

    def __bool__(self) -> bool:
        return bool(self.exports or self.imports)


NO_LINKS = StackLinks({}, {})


def stack_links(resources: Iterable[tuple[str, str, Mapping[str, Any]]],
                providers: ProviderLookup) -> StackLinks:
    """Every name one stack's resources, given as ``(urn, type token, inputs)`` (from
    its recorded state, or its desired graph), export and import; a name the stack
    both exports and imports orders nothing."""
    exports: dict[str, str] = {}
    imports: dict[str, str] = {}
    handlers: dict[str, ResourceProvider | None] = {}
    for urn, type_token, inputs in resources:
        if type_token not in handlers:
            handler = providers.resource(type_token)
            handlers[type_token] = handler if type(handler).links is not ResourceProvider.links else None
        found = handlers[type_token]
        if found is None:
            continue
        links = found.links(inputs)
        exports.update((name, urn_name(urn)) for name in sorted(links.exports))
        imports.update((name, urn_name(urn)) for name in sorted(links.imports))
    return StackLinks(exports, {n: r for n, r in imports.items() if n not in exports})


def desired_links(desired: DesiredGraph, providers: ProviderLookup) -> StackLinks:
    """``stack_links`` of what a program declares, unknown values left out."""
    linking = _linking_handlers(desired, providers)
    return stack_links(((urn, r.type_token, resolve_value(r.inputs, _unknown))
                        for urn, r in desired.resources.items() if r.type_token in linking), providers)


@frozen_record
class StackEdge(FrozenCompared):
    """Stack ``importer`` goes after stack ``exporter``: its resource ``importer_by``
    imports ``name``, which ``exporter_by`` of the other stack exports."""

    importer: str
    exporter: str
    name: str
    importer_by: str
    exporter_by: str

    def __init__(self, importer: str, exporter: str, name: str, importer_by: str, exporter_by: str) -> None:
        object.__setattr__(self, "importer", importer)
        object.__setattr__(self, "exporter", exporter)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "importer_by", importer_by)
        object.__setattr__(self, "exporter_by", exporter_by)

    def explain(self) -> str:
        return (f"{self.importer} ({self.importer_by}) imports {self.name!r} exported by "
                f"{self.exporter} ({self.exporter_by})")


def stack_edges(links: Mapping[str, StackLinks]) -> list[StackEdge]:
    """For stacks of a workspace (by name), each import of a name another stack
    exports: the importing stack goes after every stack exporting it (stacks in
    different accounts or regions may export the same name; ordering after all of
    them is never wrong). Pure; the workspace adds these edges to ``depends_on``."""
    exporters: dict[str, list[tuple[str, str]]] = {}
    for stack, found in sorted(links.items()):
        for name, resource in sorted(found.exports.items()):
            exporters.setdefault(name, []).append((stack, resource))
    return [StackEdge(stack, exporter, name, resource, by)
            for stack, found in sorted(links.items()) for name, resource in sorted(found.imports.items())
            for exporter, by in exporters.get(name, ()) if exporter != stack]


def _unknown(resource: Resource, prop: str) -> Any:
    return UNKNOWN
