"""import: adopt an object created outside Stackwright and print the code that declares it."""

from __future__ import annotations

import pprint
from dataclasses import dataclass
from typing import Any

from stackwright.engine.events import EventSink
from stackwright.errors import ProjectError, StateError, about
from stackwright.model.resource import InputSpec, make_urn, urn_name, urn_parts
from stackwright.model.values import Secret, reveal, wrap_secret_keys
from stackwright.operations.session import StackSession, stack_lock
from stackwright.providers.protocol import OperationContext, ReadResult, ResourceProvider
from stackwright.state.records import Change, ResourceState


@dataclass(frozen=True)
class ImportCandidate:
    """The object as it was read, and what `import` would record of it: shown to the
    person who confirms before anything is written."""

    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    code: str
    adopts: str = ""
    """What recording it also does to the object (``ResourceProvider.adopts``)."""
    owner: str | None = None
    """The URN the object's own mark says manages it (``ReadResult.owner``)."""


@dataclass
class ImportResult:
    urn: str
    code: str
    checkpoint: int | None
    notes: tuple[str, ...] = ()
    """What adopting the object did (``ResourceProvider.adopt``)."""


def read_import(session: StackSession, type_token: str, name: str, resource_id: str) -> ImportCandidate:
    """Read the existing object; nothing is written, no lock is taken."""
    handler = session.providers.resource(type_token)
    _refuse_unimportable(handler)
    urn = make_urn(session.stack, session.project.name, type_token, name)
    _refuse_managed(session, urn)
    ctx = OperationContext(urn=urn, name=name, token=f"import-{resource_id}")
    with about(urn):
        live = handler.read(ctx, resource_id, {}, {})
    if live is None:
        raise ProjectError(f"no {type_token} with id {resource_id!r} was found",
                           hint="check the id and the stack's region/endpoint")
    _refuse_adopted(session, handler, urn, type_token, live)
    inputs = dict(live.inputs)
    outputs = wrap_secret_keys({**inputs, **live.outputs}, handler.secret_keys(inputs))
    return ImportCandidate(urn, type_token, live.id, inputs, outputs, declaration_code(handler, name, inputs),
                           handler.adopts, live.owner)


def record_import(session: StackSession, candidate: ImportCandidate, sink: EventSink | None = None) -> ImportResult:
    """Record the object as read, protected: until the program declares it, a plan
    that would delete it (every plan, as the program does not declare it yet) is
    refused instead. Once declared, the program's own ``protect`` wins, recorded as an
    option-only change. Before it is recorded, the provider makes the object its own
    (``ResourceProvider.adopt``: for Kubernetes, the fields the printed code declares)."""
    with stack_lock(session, "import", sink):
        _refuse_managed(session, candidate.urn)
        handler = session.providers.resource(candidate.type)
        _refuse_adopted(session, handler, candidate.urn, candidate.type,
                        ReadResult(candidate.id, candidate.inputs, owner=candidate.owner))
        ctx = OperationContext(urn=candidate.urn, name=urn_name(candidate.urn), token=f"import-{candidate.id}")
        with about(candidate.urn):
            notes = tuple(handler.adopt(ctx, candidate.id, reveal(candidate.inputs)))
        writer = session.store.begin(session.stack, "import", session.who)
        writer.record_resource(
            ResourceState(urn=candidate.urn, type=candidate.type, id=candidate.id, inputs=candidate.inputs,
                          outputs=candidate.outputs, protect=True, external=True),
            Change(candidate.urn, candidate.type, "import"))
        checkpoint = writer.finish("succeeded", None)
    return ImportResult(candidate.urn, candidate.code, checkpoint.number if checkpoint else None, notes)


def _refuse_unimportable(handler: ResourceProvider) -> None:
    """The printed code must declare the object as it is: a type that cannot read its
    inputs back from an object is refused before anything is read."""
    if handler.not_importable:
        raise ProjectError(f"{handler.type_token} cannot be imported: {handler.not_importable}",
                           hint="declare a new one in the program instead")


def _refuse_managed(session: StackSession, urn: str) -> None:
    if urn in session.store.snapshot(session.stack).resources:
        raise StateError(f"{urn} is already managed by this stack",
                         hint="pick another NAME, or `stackwright state rm` it first")


def _refuse_adopted(session: StackSession, handler: ResourceProvider, urn: str, type_token: str,
                    live: ReadResult) -> None:
    """An object this stack records already (the same type and id, through the same
    default provider instance), or that its mark says another stack manages, is not
    imported again: two resources would manage one object, and removing either from
    its program would delete it. Lookups (records that never delete) do not count."""
    resources = session.store.snapshot(session.stack).resources
    key = handler.provider_input
    for other, row in resources.items():
        if (other != urn and row.type == type_token and row.id == live.id
                and not (row.external and row.retain_on_delete) and not (key and row.inputs.get(key))):
            raise _managed_already(type_token, live.id, other)
    owner = live.owner
    if owner is None or owner == urn:
        return
    if owner in resources:
        raise _managed_already(type_token, live.id, owner)
    stack, project, _, _ = urn_parts(owner)
    if (stack, project) != (session.stack, session.project.name):
        raise StateError(
            f"{type_token} {live.id} is managed by stack {stack!r} of project {project!r}, as {owner} "
            "(the object says so)",
            hint="change it in that stack; to move it here, `stackwright state rm` it there, remove the mark "
                 "naming it (a Kubernetes object's annotation stackwright.io/urn), then import it")


def _managed_already(type_token: str, resource_id: str, other: str) -> StateError:
    return StateError(
        f"{type_token} {resource_id} is already managed by this stack, as {other}; a second resource "
        "for it would delete it when either is removed",
        hint=f"to give it another name, rename {urn_name(other)} in the program and add "
             f"opts=sw.ResourceOptions(aliases=[{other!r}])")


def declaration_code(handler: ResourceProvider, name: str, inputs: dict[str, Any]) -> str:
    """Python that declares the resource with exactly these inputs (defaults omitted),
    protected as `import` recorded it: pasted as printed, the plan changes nothing;
    removing ``protect=True`` is then an option-only change."""
    cls = handler.resource_class
    if cls is None:
        raise ProjectError(f"{handler.type_token} cannot be imported (no resource class)")
    # A class may name the module programs import it from (a package re-exporting it).
    module = getattr(cls, "import_from", None) or cls.__module__
    package, _, short = module.rpartition(".")
    specs = cls.input_specs()
    args = [f"    {key}={_literal(value)}," for key, value in inputs.items()
            if key in specs and not _is_default(specs[key], value)]
    variable = "".join(c if c.isalnum() else "_" for c in name).lower().strip("_") or "resource"
    return "\n".join(["import stackwright as sw", f"from {package} import {short}", "",
                      f"{variable} = {short}.{cls.__name__}(", f"    {name!r},", *args,
                      "    opts=sw.ResourceOptions(protect=True),", ")"])


def _is_default(spec: InputSpec, value: Any) -> bool:
    return not spec.required and spec.default == value


class _SecretToFill:
    """Stands for a secret value in printed code, which never shows the value."""

    def __repr__(self) -> str:
        return 'sw.secret("FILL IN")'


def _placeholders(value: Any) -> Any:
    if isinstance(value, Secret):
        return _SecretToFill()
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def _literal(value: Any) -> str:
    text = pprint.pformat(_placeholders(value), width=80, sort_dicts=False)
    return text.replace("\n", "\n    ")
