"""import: adopt an object created outside Stackwright and print the code that declares it."""

from __future__ import annotations

import pprint
from dataclasses import dataclass
from typing import Any

from stackwright.engine.events import EventSink
from stackwright.errors import ProjectError, StateError, about
from stackwright.model.resource import InputSpec, make_urn
from stackwright.model.values import Secret, wrap_secret_keys
from stackwright.operations.session import StackSession, stack_lock
from stackwright.providers.protocol import OperationContext, ResourceProvider
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


@dataclass
class ImportResult:
    urn: str
    code: str
    checkpoint: int | None


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
    inputs = dict(live.inputs)
    outputs = wrap_secret_keys({**inputs, **live.outputs}, handler.secret_keys(inputs))
    return ImportCandidate(urn, type_token, live.id, inputs, outputs, declaration_code(handler, name, inputs))


def record_import(session: StackSession, candidate: ImportCandidate, sink: EventSink | None = None) -> ImportResult:
    """Record the object as read, protected: until the program declares it, a plan
    that would delete it (every plan, as the program does not declare it yet) is
    refused instead. Once declared, the program's own ``protect`` wins, recorded as an
    option-only change."""
    with stack_lock(session, "import", sink):
        _refuse_managed(session, candidate.urn)
        writer = session.store.begin(session.stack, "import", session.who)
        writer.record_resource(
            ResourceState(urn=candidate.urn, type=candidate.type, id=candidate.id, inputs=candidate.inputs,
                          outputs=candidate.outputs, protect=True, external=True),
            Change(candidate.urn, candidate.type, "import"))
        checkpoint = writer.finish("succeeded", None)
    return ImportResult(candidate.urn, candidate.code, checkpoint.number if checkpoint else None)


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
