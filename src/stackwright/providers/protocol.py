"""The provider protocol: the only thing the engine knows about providers.

A *provider* (``local``, ``random``, ``aws``) is a package of *resource providers*,
one per resource type. Each resource provider answers six questions: is this input
valid (``check``), what changed (``diff``), and create/read/update/delete; it may also
say which names its inputs export and import (``links``, which order resources like
``depends_on``), which objects an object holds (``containment``: deleting a Kubernetes
namespace deletes what is in it), and what the cloud would say of a create or update
(``explain_create``, ``explain_update``: a server-side dry run). A provider may bring
policy rules (``InputRule``) and handles its own config section (what
``aws.endpoint: local`` means is the AWS provider's business).

Contracts every implementation keeps:

* ``create`` receives ``ctx.token``, unique per pending operation and stable across
  retries of that operation. Use it as the idempotency token where the API offers one,
  so a retried create never makes two objects.
* ``read(ctx, None, inputs, outputs)`` (no id) must find an object that a create with
  these inputs and ``ctx.urn`` may have made before a crash, or return ``None``. The
  engine calls it to resolve pending creates instead of creating a duplicate.
* ``read`` returns ``None`` when the object no longer exists.
* ``read(ctx, id, {}, {})`` (nothing recorded: ``import``) returns the inputs the object
  has, as a program would declare them, so that the code ``import`` prints declares it
  as it is. A type whose inputs cannot be told from its object says why in
  ``not_importable``, and ``import`` refuses it without reading.
* Errors are raised as ``ProviderError``; ``retryable=True`` for throttling and
  transient faults. Anything else raised is treated as permanent.
* Recorded outputs are the resolved inputs overlaid with what the provider returns, so
  a provider only returns what the cloud computed (ids, ARNs, timestamps).
* A resource provider that accepts provider instances (``ResourceOptions.provider``)
  names, in ``provider_input``, the input holding the instance's URN; every call then
  gets the instance's recorded outputs in ``ctx.provider_config`` (empty for the
  default instance, which is configured from the stack config by ``configure``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import field
from typing import Any, ClassVar, Literal, Protocol

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import ProviderError
from stackwright.model.resource import Resource
from stackwright.model.values import is_secret

__all__ = [
    "Containment", "Created", "DiffResult", "DryRunBlocked", "InputRule", "Links", "OperationContext", "Provider",
    "ProviderError", "ReadResult", "ResourceProvider", "ProviderLookup", "OutputsOf", "instance_config",
]


def _no_log(message: str) -> None:
    return None


# The classes below are loaded by every command: their methods are written, not
# generated (see stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True)``.


@frozen_record
class DiffResult(FrozenCompared):
    """Which top-level inputs changed, and which of those force a replacement."""

    changed: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    delete_before_replace: bool = False

    def __init__(self, changed: tuple[str, ...] = (), replaces: tuple[str, ...] = (),
                 delete_before_replace: bool = False) -> None:
        object.__setattr__(self, "changed", changed)
        object.__setattr__(self, "replaces", replaces)
        object.__setattr__(self, "delete_before_replace", delete_before_replace)

    @property
    def has_changes(self) -> bool:
        return bool(self.changed)


@frozen_record
class Created(FrozenCompared):
    """The object a create made: its id and what the cloud computed."""

    id: str
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, id: str, outputs: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "outputs", {} if outputs is None else outputs)


@frozen_record
class ReadResult(FrozenCompared):
    """The live object: its id, the inputs that would declare it, and its outputs."""

    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None
    """The URN of the resource that, by a mark the object carries (a Kubernetes
    object's ``stackwright.io/urn`` annotation), manages it; None when unmarked.
    ``import`` refuses an object another resource manages."""

    def __init__(self, id: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any] | None = None,
                 owner: str | None = None) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "outputs", {} if outputs is None else outputs)
        object.__setattr__(self, "owner", owner)


@frozen_record
class Links(FrozenCompared):
    """Names a resource publishes for others (``exports``) and names of others it
    uses (``imports``), such as CloudFormation's ``Export``/``Fn::ImportValue``.

    A resource that imports a name another resource exports is ordered after it, as
    if it had ``depends_on`` it; the planner adds that edge."""

    exports: frozenset[str] = frozenset()
    imports: frozenset[str] = frozenset()

    def __init__(self, exports: frozenset[str] = frozenset(), imports: frozenset[str] = frozenset()) -> None:
        object.__setattr__(self, "exports", exports)
        object.__setattr__(self, "imports", imports)


@frozen_record
class Containment(FrozenCompared):
    """Scopes an object holds (``holds``) and scopes it lives in (``within``): deleting
    an object deletes with it every object within a scope it holds, as deleting a
    Kubernetes namespace deletes what is in it. Scope names mean nothing to the planner
    but equality; a provider makes them unique to itself (and to the cluster or
    account they are in)."""

    holds: frozenset[str] = frozenset()
    within: frozenset[str] = frozenset()

    def __init__(self, holds: frozenset[str] = frozenset(), within: frozenset[str] = frozenset()) -> None:
        object.__setattr__(self, "holds", holds)
        object.__setattr__(self, "within", within)


NO_CONTAINMENT = Containment()


class DryRunBlocked(ProviderError):
    """An ``explain_*`` dry run could not be made because something the object needs is
    not there yet (a Kubernetes namespace, the CRD of a custom kind). When the change
    waits for a resource the same plan creates or changes, that resource may bring it:
    the preview says the dry run could not be done, and why; otherwise the apply would
    fail the same way, and the preview fails."""


@frozen_record
class OperationContext(FrozenCompared):
    """What one provider call knows besides its inputs."""

    urn: str
    name: str
    token: str
    timeout: float = 1800.0
    log: Callable[[str], None] = _no_log
    provider_config: Mapping[str, Any] = field(default_factory=dict)
    """The outputs of the provider instance named by the resource's inputs, revealed."""
    lineage: str = ""
    """The lineage of the stack's state the call is made for ("" outside an apply): a
    provider that marks what it creates marks it with this too, and takes an object as
    its own earlier attempt only when it carries the same one."""
    recovering: bool = False
    """The call resolves a create this state recorded as pending before a crash."""

    def __init__(self, urn: str, name: str, token: str, timeout: float = 1800.0,
                 log: Callable[[str], None] = _no_log, provider_config: Mapping[str, Any] | None = None,
                 lineage: str = "", recovering: bool = False) -> None:
        object.__setattr__(self, "urn", urn)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "provider_config", {} if provider_config is None else provider_config)
        object.__setattr__(self, "lineage", lineage)
        object.__setattr__(self, "recovering", recovering)


class ResourceProvider:
    """Create, read, update and delete one resource type.

    Subclasses set ``type_token`` and ``resource_class``, list the inputs that force
    replacement in ``replace_on`` (``"*"`` for all), secret outputs in
    ``secret_outputs``, and outputs that become unknown on update in
    ``computed_on_update``. The default ``diff`` compares inputs key by key.
    """

    type_token: ClassVar[str] = ""
    resource_class: ClassVar[type[Resource] | None] = None
    replace_on: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    secret_when_given: ClassVar[frozenset[str]] = frozenset()
    """Outputs made of the inputs in ways no text match can follow (what a command
    prints): secret whenever an input holds a secret."""
    derived_outputs: ClassVar[Mapping[str, frozenset[str]]] = {}
    """Outputs computed from some inputs in ways no text match can follow (a digest or
    the length of a file's content), each with the inputs it is computed from: secret
    whenever one of those holds a secret. A digest of a secret confirms a guess of it
    offline, so it is as secret as what it digests."""
    computed_on_update: ClassVar[frozenset[str]] = frozenset()
    stateful: ClassVar[bool] = False
    """Deleting it loses data (buckets, tables, clusters); policies guard it."""
    provider_input: ClassVar[str] = ""
    """The input that holds the URN of a provider instance, if this type takes one."""
    not_importable: ClassVar[str] = ""
    """Why ``import`` refuses this type (empty: it imports): its objects do not say what
    they were made with, so no declaration could be printed that matches them."""
    in_process: ClassVar[bool] = False
    """Every call is done in this process on local memory or files (no network, no
    child process, nothing to wait for): a plan whose calls are all such is applied
    one step at a time, without an event loop or threads, which would cost more than
    running calls side by side saves."""

    def secret_keys(self, inputs: Mapping[str, Any]) -> frozenset[str]:
        """The outputs recorded secret whatever their text, given these inputs."""
        keys = self.secret_outputs
        if self.secret_when_given and is_secret(inputs):
            keys = keys | self.secret_when_given
        derived = [out for out, sources in self.derived_outputs.items()
                   if any(is_secret(inputs.get(source)) for source in sources)]
        return keys | frozenset(derived) if derived else keys

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Validate fully resolved inputs; return them, normalised. Raise InputError."""
        return dict(inputs)

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        keys = sorted(set(old_inputs) | set(new_inputs))
        changed = tuple(k for k in keys if old_inputs.get(k) != new_inputs.get(k))
        replace_all = "*" in self.replace_on
        replaces = tuple(k for k in changed if replace_all or k in self.replace_on)
        return DiffResult(changed=changed, replaces=replaces)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        raise NotImplementedError

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        raise NotImplementedError

    def batch_reads(self, ids: Sequence[str]) -> AbstractContextManager[None]:
        """Announces that ``read`` of each of these ids follows (a refresh reads every
        recorded object). A provider whose API reads many objects in one call may then
        answer them all from one call, made on the first of these reads; an answer
        serves one read of its id, and only while the returned context is open. Must
        not call the cloud itself. The default reads each object on its own."""
        return nullcontext()

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """Change the object in place; return the new computed outputs."""
        raise NotImplementedError

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        raise NotImplementedError

    def links(self, inputs: Mapping[str, Any]) -> Links:
        """The names these inputs export and import. Called while planning, before
        anything is resolved: values not yet known are ``UNKNOWN``; leave out what they
        would decide. Must be pure (no cloud calls)."""
        return Links()

    adopts: ClassVar[str] = ""
    """What ``adopt`` does to an object `import` adopts, in words for the person who
    confirms (empty: nothing)."""

    def adopt(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any]) -> list[str]:
        """Called by `import` once confirmed, before it records the object: make the
        object this provider's own for ``inputs`` (what ``read`` returned, which the
        printed declaration declares), so that a change the program makes later applies
        as it would to an object this provider created. Must change no value; raise
        (nothing is recorded) rather than change one. Lines saying what it did."""
        return []

    def containment(self, type_token: str, id: str | None, inputs: Mapping[str, Any],
                    outputs: Mapping[str, Any]) -> Containment:
        """The scopes the object of a record holds and lives in (see ``Containment``):
        the planner refuses a plan that deletes an object while keeping one it holds,
        and deletes the held ones first. ``id`` is None for the new object of a
        replacement (``outputs`` are then the old one's). Called while planning: must be
        pure (no cloud calls); values may be ``UNKNOWN``. The default holds nothing."""
        return NO_CONTAINMENT

    explains_updates: ClassVar[bool] = False
    """True when ``explain_update`` has something to say (it costs provider calls)."""
    explains_creates: ClassVar[bool] = False
    """True when ``explain_create`` has something to say (it costs provider calls)."""
    checks_before_apply: ClassVar[bool] = False
    """`up` calls ``explain_create`` and ``explain_update`` before it applies anything,
    and applies nothing when one raises (a refused server-side dry run): set when
    those calls are quick and say what the apply would refuse. Preview always calls them."""

    def explain_update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Lines for people reviewing an in-place update (e.g. a CloudFormation change
        set). Called by preview, and by `up` before it applies anything; must change
        nothing that apply would see. ``old_outputs``: what the state recorded of the
        resource's outputs. Raises ``ProviderError`` when the cloud refuses the change (a
        server-side dry run fails): the preview fails, naming the resource; a retryable
        one (the cloud cannot be reached) only becomes a note."""
        return []

    def explain_create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[str]:
        """``explain_update`` for a new object: lines for reviewers, ``ProviderError``
        when the cloud refuses it, ``DryRunBlocked`` when it cannot judge it yet."""
        return []


OutputsOf = Callable[[str], "Mapping[str, Any] | None"]
"""The recorded (or, during apply, current) outputs of another resource by URN."""


def instance_config(handler: ResourceProvider, inputs: Mapping[str, Any],
                    outputs_of: OutputsOf) -> dict[str, Any]:
    """The outputs of the provider instance a resource's inputs name, secrets revealed
    (only providers see them); empty when it uses the default instance."""
    from stackwright.model.values import reveal

    urn = inputs.get(handler.provider_input) if handler.provider_input else None
    if not isinstance(urn, str) or not urn:
        return {}
    outputs = outputs_of(urn)
    if outputs is None:
        raise ProviderError(f"the provider instance {urn} is not recorded in this stack; "
                            "declare it in the program and run `up`")
    return dict(reveal(outputs))


@frozen_record
class InputRule(FrozenCompared):
    """A policy rule a provider brings: it judges the new inputs of a created, updated
    or replaced resource of one of ``types`` and yields one message per violation.
    Environments set its enforcement by ``name``, like any other rule."""

    name: str
    types: frozenset[str]
    check: Callable[[str, Mapping[str, Any]], Iterable[str]]
    """``(type_token, inputs)`` to messages; inputs may hold ``UNKNOWN`` and secrets."""
    about: str
    default: Literal["mandatory", "advisory", "off"] = "advisory"

    def __init__(self, name: str, types: frozenset[str], check: Callable[[str, Mapping[str, Any]], Iterable[str]],
                 about: str, default: Literal["mandatory", "advisory", "off"] = "advisory") -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "check", check)
        object.__setattr__(self, "about", about)
        object.__setattr__(self, "default", default)


class Provider(Protocol):
    """A package of resource providers sharing configuration (region, endpoint...)."""

    name: str
    version: str

    def configure(self, config: Mapping[str, Any]) -> None:
        """Receive the stack's config section named after the provider."""

    def resource(self, type_token: str) -> ResourceProvider:
        """The resource provider for a type; raise KeyError if unknown."""
        ...

    def types(self) -> list[str]: ...

    # Optional: ``policy_rules: tuple[InputRule, ...]``, the provider's own policy rules.


class ProviderLookup(Protocol):
    """How the planner and engine find the resource provider for a type token."""

    def resource(self, type_token: str) -> ResourceProvider: ...

    def versions(self) -> dict[str, str]: ...

