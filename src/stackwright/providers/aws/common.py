"""What the AWS resource providers share beyond ``base``: input defaults, creates that
adopt their own earlier attempt or refuse someone else's object, tag calls by ARN, and
``ManagedResource``, the template of the EC2, IAM and EKS providers.

``ManagedResource`` brings inputs to one canonical form (defaults filled in, lists
ordered the way they are reported) before they are compared, so that ``read`` of an
object created from inputs X reports exactly X, and ``diff`` never reports a change
that is only a difference of spelling.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stackwright.errors import InputError, ProviderError
from stackwright.model.resource import InputSpec, Resource
from stackwright.model.values import is_unknown
from stackwright.providers.aws.base import (
    RESERVED_TAGS,
    AwsClients,
    AwsResource,
    all_tags,
    call,
    call_or_none,
    check_tags,
    error_code,
    is_reserved_tag,
    tag_list,
)
from stackwright.providers.aws.read_batch import MISS
from stackwright.providers.protocol import DiffResult, OperationContext, ReadResult

# --- inputs -------------------------------------------------------------------------


def with_defaults(cls: type[Resource], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared input, defaults filled, so recorded and read inputs line up."""
    values: dict[str, Any] = {}
    for name, spec in cls.input_specs().items():
        if name in inputs:
            values[name] = copy.deepcopy(inputs[name])
        elif spec.required:
            raise InputError(f"missing required input {name!r}", prop=name)
        else:
            values[name] = copy.deepcopy(spec.default)
    return values


def reject_urn_tag(tags: Mapping[str, str]) -> None:
    """The URN and lineage tags are Stackwright's to set."""
    reserved = sorted(RESERVED_TAGS & set(tags))
    if reserved:
        raise InputError(f"tag {reserved[0]!r} is reserved", prop="tags")


def when_known(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(value)``, or the value as it is while part of it is unknown (planning)."""
    return value if is_unknown(value) else fn(value)


def sorted_strings(value: Any) -> Any:
    """A list of strings in a fixed order, for lists AWS reports in its own order."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


def declared_or_live(inputs: Mapping[str, Any], key: str, live: Any) -> Any:
    """``None`` when the program declared ``None`` (AWS chooses), else the live value.

    An import reads with no inputs at all, and then gets the live value.
    """
    return None if key in inputs and inputs[key] is None else live


def is_declared(declared: Mapping[str, Any], key: str, unset: Any) -> bool:
    """Whether ``read`` must ask AWS for setting ``key``: the program set it to other
    than ``unset`` (what the object has when nobody sets it, so it was never applied),
    or declared nothing at all (an import). A setting left unset reads as declared:
    drift in it is not looked for, which saves a call per setting and object."""
    return key not in declared or declared[key] != unset


# --- creates ------------------------------------------------------------------------


def create_or_adopt(
    action: str, make: Callable[[], Any], taken: frozenset[str], ours: Callable[[], Any | None],
) -> Any:
    """``make()``; when AWS answers that the name is taken (a code in ``taken``) by
    our own earlier attempt, whose response was lost, that object (``ours()``, which
    raises ``claim``'s error, or returns None, when the object is not this state's)."""
    try:
        return call(action, make)
    except ProviderError as exc:
        if error_code(exc.__cause__ or exc) not in taken:
            raise
        mine = ours()
        if mine is None:
            raise
        return mine


def pick(
    ctx: OperationContext, found: list[ReadResult], declared: Mapping[str, Any],
    keys: Iterable[str],
) -> ReadResult | None:
    """Of the objects carrying this URN, the one a create with these inputs made.

    A replacement creates its new object while the old one, with the same URN,
    still exists; the inputs that forced the replacement tell them apart.
    """
    names = list(declared) if "*" in keys else list(keys)
    matching = [
        r for r in found
        if all(r.inputs.get(k) == declared[k] for k in names if k in declared and k in r.inputs)
    ]
    if len(matching) > 1:
        ctx.log(f"several objects match {ctx.urn}: {', '.join(sorted(r.id for r in matching))}")
    return min(matching, key=lambda r: r.id) if matching else None


# --- deletes ------------------------------------------------------------------------


def delete_explaining(action: str, fn: Callable[..., Any], code: str, explanation: str,
                      **kwargs: Any) -> None:
    """``call_or_none`` of a delete (gone is done) where AWS's ``code`` answer, the
    object still holds something, becomes the permanent error ``explanation``."""
    try:
        call_or_none(action, fn, **kwargs)
    except ProviderError as err:
        if error_code(err.__cause__ or err) == code:
            raise ProviderError(explanation) from err
        raise


# --- tags by ARN --------------------------------------------------------------------


@dataclass(frozen=True)
class ArnTags:
    """A service's ``list_tags_for_resource``, ``tag_resource`` and ``untag_resource``,
    whose argument names (and the listing's key, named like the tags argument) differ
    from service to service."""

    arn: str = "ResourceArn"
    keys: str = "TagKeys"
    tags: str = "Tags"

    def read(self, client: Any, arn: str) -> dict[str, str]:
        """Every tag, Stackwright's own included."""
        got = call(f"list tags of {arn}", client.list_tags_for_resource, **{self.arn: arn})
        return all_tags(got.get(self.tags))

    def write(self, client: Any, arn: str, stale: list[str], tags: Mapping[str, str],
              owner: OperationContext) -> None:
        """Remove the ``stale`` keys, then set ``tags`` and the tags marking the object ``owner``'s."""
        if stale:
            call(f"untag {arn}", client.untag_resource, **{self.arn: arn, self.keys: stale})
        call(f"tag {arn}", client.tag_resource, **{self.arn: arn, self.tags: tag_list(tags, owner)})


def stale_tags(live: Iterable[str], tags: Mapping[str, str]) -> list[str]:
    """Keys of live tags that ``tags`` does not keep; Stackwright's and AWS's own stay."""
    return [k for k in live if k not in tags and not is_reserved_tag(k)]


# --- the template of the EC2, IAM and EKS providers ---------------------------------


class ManagedResource(AwsResource):
    """Canonical inputs, a diff that compares them, and ``read`` built from three parts.

    Subclasses implement ``describe`` (the raw object by id, ``None`` when gone),
    ``find`` (raw objects an interrupted create may have made) and ``result`` (the
    ``ReadResult`` of a raw object), and may refine ``normalise`` and ``validate``.
    """

    unique_keys: ClassVar[tuple[str, ...]] = ()
    """Inputs AWS requires to be unique: a replacement keeping them must delete first."""

    def __init__(self, clients: AwsClients) -> None:
        super().__init__(clients)
        self._attempted: set[str] = set()
        self._attempted_lock = threading.Lock()

    def earlier_attempt(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> ReadResult | None:
        """The object an earlier attempt of this very create (same ``ctx.token``) made.

        The engine retries a whole create after a throttle or a lost answer; a create
        made of several calls may have made its object before the call that failed, and
        must finish that object instead of making a second one. A token's first attempt
        cannot have made anything, so it costs no call.
        """
        with self._attempted_lock:
            retry = ctx.token in self._attempted
            self._attempted.add(ctx.token)
        return self.read(ctx, None, inputs, {}) if retry else None

    def specs(self) -> dict[str, InputSpec]:
        return self.resource_class.input_specs() if self.resource_class else {}

    def canonical(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs with defaults filled in and in the canonical form ``read`` reports."""
        return self.normalise(self.complete(inputs))

    def complete(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs with every optional one present (an import or old state may lack some)."""
        values = dict(inputs)
        for name, spec in self.specs().items():
            if name not in values and not spec.required:
                values[name] = copy.deepcopy(spec.default)
        if "tags" in values and values["tags"] is None:
            values["tags"] = {}
        return values

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        """The type's canonical form; values may still hold ``UNKNOWN`` while planning."""
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        """Type-specific checks of fully resolved inputs; raise ``InputError``."""

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = self.complete(inputs)
        for name, spec in self.specs().items():
            if spec.required and values.get(name) is None:
                raise InputError(f"missing required input {name!r}", prop=name)
        if "tags" in values:
            check_tags(values["tags"])
        self.validate(values)
        return self.normalise(values)

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        old, new = self.canonical(old_inputs), self.canonical(new_inputs)
        result = super().diff(old, old_outputs, new)
        first = bool(result.replaces) and bool(self.unique_keys) and all(
            old.get(k) == new.get(k) for k in self.unique_keys)
        return DiffResult(result.changed, result.replaces, delete_before_replace=first)

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        if id is not None:
            raw = self.describe_once(id)
            return None if raw is None else self.result(raw, inputs)
        found = [self.result(raw, inputs) for raw in self.find(ctx, inputs)]
        return pick(ctx, found, self.canonical(inputs), self.replace_on)

    def describe(self, id: str) -> Any | None:
        raise NotImplementedError

    def describe_once(self, id: str) -> Any | None:
        """``describe(id)``, answered from a refresh's batched read when there is one."""
        answer = self.batched(id)
        if answer is MISS:
            return self.describe(id)
        return None if answer is None else self.from_batch(id, answer)

    def from_batch(self, id: str, answer: Any) -> Any | None:
        """What ``describe(id)`` returns, made from the batched answer for its key."""
        return answer

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        raise NotImplementedError

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        raise NotImplementedError
