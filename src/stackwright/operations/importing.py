"""import: adopt an object created outside Stackwright and print the code that declares it."""

from __future__ import annotations

import pprint
from dataclasses import dataclass
from typing import Any

from stackwright.errors import ProjectError, StateError, about
from stackwright.model.resource import InputSpec, make_urn
from stackwright.model.values import Secret, masked, wrap_secret_keys
from stackwright.operations.session import StackSession, stack_lock
from stackwright.providers.protocol import OperationContext, ResourceProvider
from stackwright.state.records import Change, ResourceState


@dataclass
class ImportResult:
    urn: str
    code: str
    checkpoint: int | None


def import_resource(session: StackSession, type_token: str, name: str, resource_id: str) -> ImportResult:
    handler = session.providers.resource(type_token)
    urn = make_urn(session.stack, session.project.name, type_token, name)
    with stack_lock(session, "import"):
        if urn in session.store.snapshot(session.stack).resources:
            raise StateError(f"{urn} is already managed by this stack",
                             hint="pick another NAME, or `stackwright state rm` it first")
        ctx = OperationContext(urn=urn, name=name, token=f"import-{resource_id}")
        with about(urn):
            live = handler.read(ctx, resource_id, {}, {})
        if live is None:
            raise ProjectError(f"no {type_token} with id {resource_id!r} was found",
                               hint="check the id and the stack's region/endpoint")
        inputs = dict(live.inputs)
        outputs = wrap_secret_keys({**inputs, **live.outputs}, handler.secret_outputs)
        writer = session.store.begin(session.stack, "import", session.who)
        writer.record_resource(
            ResourceState(urn=urn, type=type_token, id=live.id, inputs=inputs, outputs=outputs,
                          external=True),
            Change(urn, type_token, "import"))
        checkpoint = writer.finish("succeeded", None)
    return ImportResult(urn, declaration_code(handler, name, inputs), checkpoint.number if checkpoint else None)


def declaration_code(handler: ResourceProvider, name: str, inputs: dict[str, Any]) -> str:
    """Python that declares the resource with exactly these inputs (defaults omitted)."""
    cls = handler.resource_class
    if cls is None:
        raise ProjectError(f"{handler.type_token} cannot be imported (no resource class)")
    module = cls.__module__
    package, _, short = module.rpartition(".")
    specs = cls.input_specs()
    args = [f"    {key}={_literal(value)}," for key, value in inputs.items()
            if key in specs and not _is_default(specs[key], value)]
    variable = "".join(c if c.isalnum() else "_" for c in name).lower().strip("_") or "resource"
    return "\n".join([f"from {package} import {short}", "",
                      f"{variable} = {short}.{cls.__name__}(", f"    {name!r},", *args, ")"])


def _is_default(spec: InputSpec, value: Any) -> bool:
    return not spec.required and spec.default == value


def _literal(value: Any) -> str:
    if isinstance(value, Secret):
        return f"sw.secret({pprint.pformat(masked(value))})  # fill in the secret"
    text = pprint.pformat(value, width=80, sort_dicts=False)
    return text.replace("\n", "\n    ")
