"""``Output``: a value that may only be known after apply.

An Output is a small expression tree: a constant, a reference to one property of a
resource, or a function of other Outputs. The program builds the tree; the planner
and the engine resolve it with a ``lookup`` that knows the values recorded so far.
The tree also says which resources a value depends on, so using an Output as an
input records the dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, Union, overload

from stackwright.errors import CallbackError, ProgramError, StackwrightError, raised
from stackwright.model import context
from stackwright.model.values import UNKNOWN, Secret, is_secret, is_unknown, reveal, secret_texts

if TYPE_CHECKING:
    from stackwright.model.resource import Resource

T = TypeVar("T")
U = TypeVar("U")

Lookup = Callable[["Resource", str], Any]
"""Returns a resource property's resolved value, ``UNKNOWN``, or a ``Secret``."""

_CONST, _REF, _DERIVED = 0, 1, 2


class Output(Generic[T]):
    """A value known now or after apply, carrying its secretness and dependencies."""

    __slots__ = ("_kind", "_value", "_secret", "_resource", "_prop", "_sources", "_fn", "_missing", "_used",
                 "_last")

    def __init__(self) -> None:
        self._kind = _CONST
        self._value: Any = None
        self._secret = False
        self._resource: Resource | None = None
        self._prop = ""
        self._sources: tuple[Output[Any], ...] = ()
        self._fn: Callable[..., Any] | None = None
        self._missing: StackwrightError | None = None
        self._used = False
        """Something uses this (derived) Output: a resource input, a stack output, another
        Output. One made by a program and never used is a leaf of that run (``Leaves``)."""
        self._last: tuple[list[Any], Any] | None = None
        """Of a derived Output a leaf is made of (``_REMEMBER`` until it first runs): its
        callback's last run, the values it was given and what it returned. None for
        the others, whose runs are not kept."""

    @classmethod
    def unavailable(cls, why: StackwrightError) -> Output[Any]:
        """A value that does not exist yet and that applying this stack cannot compute
        (another stack's output that stack has not recorded): unknown at preview, and
        ``why`` is the error apply refuses with."""
        out: Output[Any] = cls()
        out._value, out._missing = UNKNOWN, why
        return out

    @classmethod
    def from_value(cls, value: T, *, secret: bool = False) -> Output[T]:
        out: Output[T] = cls()
        out._value, out._secret = value, secret
        return out

    @staticmethod
    def _ref(resource: Resource, prop: str) -> Output[Any]:
        """``resource.prop``: made for every property a program reads, so without
        ``__init__``'s defaults that would be overwritten at once (``_used`` and
        ``_last`` are left unset: only derived Outputs read them)."""
        out: Output[Any] = object.__new__(Output)
        out._kind, out._value, out._secret, out._resource = _REF, None, False, resource
        out._prop, out._sources, out._fn, out._missing = prop, (), None, None
        return out

    @classmethod
    def _derived(cls, sources: tuple[Output[Any], ...], fn: Callable[..., Any]) -> Output[Any]:
        """Made while a program runs (not by a callback), it is listed in the run's
        context: a leaf of the run unless something uses it (see ``Leaves``)."""
        out: Output[Any] = cls()
        out._kind, out._sources, out._fn = _DERIVED, sources, fn
        for source in sources:
            if source._kind == _DERIVED:
                source._used = True
            elif source._kind == _CONST and type(source._value) not in _SCALARS:
                _use(source)
        ctx = context.current_or_none()
        if ctx is not None and not ctx.callback_depth:
            ctx.derived.append(out)
        return out

    def apply(self, fn: Callable[[T], U | Output[U]]) -> Output[U]:
        """A new Output holding ``fn(value)``, run only once the value is known, and
        run even when nothing uses the new Output (see ``Leaves``).

        ``fn`` must not declare resources: the set of resources must be known when
        the plan is made.
        """
        return Output._derived((self,), fn)

    def __getitem__(self, key: Any) -> Output[Any]:
        return self.apply(lambda value: value[key])  # type: ignore[index]

    @staticmethod
    def all(*values: Any) -> Output[list[Any]]:
        """One Output of a list, known when every element is known."""
        sources = tuple(as_output(v) for v in values)
        return Output._derived(sources, _listed)

    @staticmethod
    def concat(*parts: Any) -> Output[str]:
        return Output.all(*parts).apply(lambda vals: "".join(str(v) for v in vals))

    def referred(self) -> Resource | None:
        """The resource when this is a plain reference to one of its properties."""
        return self._resource

    def is_secret_marked(self) -> bool:
        """True when this Output is a constant marked secret (refs are decided later)."""
        return self._secret

    def resources(self) -> Iterator[Resource]:
        """Every resource this value depends on."""
        for out in self._tree():
            if out._kind == _REF:
                assert out._resource is not None
                yield out._resource

    def missing(self) -> Iterator[StackwrightError]:
        """Why parts of this value cannot be known, even at apply (see ``unavailable``)."""
        for out in self._tree():
            if out._missing is not None:
                yield out._missing

    def _tree(self) -> Iterator[Output[Any]]:
        """This Output and every Output it is made of."""
        yield self
        for source in self._sources:
            yield from source._tree()
        if self._kind == _CONST:
            for inner in outputs_in(self._value):
                yield from inner._tree()

    def resolve(self, lookup: Lookup) -> Any:
        """The value now: plain, ``Secret``-wrapped, or ``UNKNOWN``."""
        if self._kind == _CONST:
            value = resolve_value(self._value, lookup)
            return Secret(value) if self._secret and not isinstance(value, Secret) else value
        if self._kind == _REF:
            assert self._resource is not None
            return lookup(self._resource, self._prop)
        return self._resolve_derived(lookup)

    def _resolve_derived(self, lookup: Lookup, reuse: bool = False) -> Any:
        """The callback's result once every source is known, secret if any source is;
        before, UNKNOWN (``_WAITING`` with ``reuse``). With ``reuse`` (running a leaf),
        a remembered run (see ``Leaves``) given the same values gives its result again
        instead of running once more. One function: it is planning's hot path."""
        if reuse:
            values = [s._reusing(lookup) for s in self._sources]
        else:
            values = [s.resolve(lookup) for s in self._sources]
        if any(is_unknown(v) for v in values):
            return _WAITING if reuse else UNKNOWN
        if self._fn is _listed:
            return values  # each element as secret as it is, no more
        secret = any(is_secret(v) for v in values)
        last = self._last
        if reuse and last is not None and last is not _REMEMBER and last[0] == values:
            result = last[1]
        else:
            assert self._fn is not None
            with context.inside_callback():
                try:
                    result = self._fn(*[reveal(v) for v in values])
                except (StackwrightError, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # noqa: BLE001 - sys.exit() in a callback fails its step too
                    raise callback_error(exc, secret) from (None if secret else exc)
            if last is not None:
                self._last = (values, result)
        result = resolve_value(result, lookup)
        if not secret:
            return result
        origins = frozenset(secret_texts(values))
        if isinstance(result, Secret):
            return Secret(result.value, result.origins | origins)
        return Secret(result, origins)

    def _reusing(self, lookup: Lookup) -> Any:
        """``resolve``, reusing remembered runs (see ``_resolve_derived``): evaluating a
        leaf does not run again what planning or applying a resource's inputs ran."""
        if self._kind != _DERIVED:
            return self.resolve(lookup)
        result = self._resolve_derived(lookup, reuse=True)
        return UNKNOWN if result is _WAITING else result

    def _ran_as_leaf(self, lookup: Lookup) -> bool:
        """Runs this leaf's callback if its sources are known now: whether it ran."""
        return self._resolve_derived(lookup, reuse=True) is not _WAITING

    def __str__(self) -> str:
        raise ProgramError(
            "an Output cannot be turned into a string while the program runs",
            hint='use sw.fmt("...{}...", output) or output.apply(lambda v: ...)',
        )

    def __format__(self, spec: str) -> str:
        return self.__str__()

    def __bool__(self) -> bool:
        raise ProgramError(
            "an Output has no truth value while the program runs",
            hint="its value may be known only after apply; use output.apply(...)",
        )

    def __iter__(self) -> Iterator[Any]:
        raise ProgramError(
            "an Output cannot be iterated while the program runs",
            hint="use output.apply(lambda items: ...) to work on the value",
        )

    def __repr__(self) -> str:
        if self._kind == _REF and self._resource is not None:
            return f"Output({self._resource.resource_name}.{self._prop})"
        return "Output(...)"


def callback_error(exc: BaseException, given_secret: bool) -> CallbackError:
    """What a callback raised, located in the user's code: any exception but Ctrl-C's,
    ``sys.exit()`` included, which must fail the step rather than end the command half
    way through an apply. A callback given a secret may quote it, or anything made of
    it (``p.lower()``), in its message: then the message is not shown, and the original
    exception, which holds it, is not chained either."""
    file, line = context.user_frame_of(exc)
    if given_secret:
        what = "called exit" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}"
        return CallbackError(f"an Output callback {what} (its message is not shown: "
                             "the callback was given a secret)", file=file, line=line,
                             hint="fix the callback; to see the message, raise it without the secret's value")
    return CallbackError(f"an Output callback {raised(exc)}",
                         file=file, line=line, hint="run with --debug to see the traceback")


class Leaves:
    """The derived Outputs of one program run that nothing uses: no other Output, no
    resource input, no stack output is made of them. Their callbacks run all the same,
    each once, as Pulumi runs every callback once its inputs are known: programs
    validate with them (and what they raise must fail the command) or act through them.
    Planning runs those whose sources it knows; apply runs the rest once what they read
    is applied. Their values are not kept: they are no outputs."""

    __slots__ = ("_waiting",)

    def __init__(self, made: Iterable[Output[Any]] = ()) -> None:
        """``made``: the derived Outputs of the run; the leaves are those not used."""
        self._waiting = [out for out in made if not out._used]
        _remember_runs(self._waiting)

    def __len__(self) -> int:
        return len(self._waiting)

    def run(self, lookup: Lookup) -> list[Exception]:
        """Runs the callback of every leaf whose sources ``lookup`` knows and forgets the
        leaf, whether it returned or raised, so that none runs twice; the others wait
        for a later call. Returns what the callbacks raised, in the order the program
        made them."""
        waiting: list[Output[Any]] = []
        raised: list[Exception] = []
        for leaf in self._waiting:
            try:
                if not leaf._ran_as_leaf(lookup):
                    waiting.append(leaf)
            except Exception as exc:  # noqa: BLE001 - returned: the caller reports each one
                raised.append(exc)
        self._waiting = waiting
        return raised


_WAITING: Final = object()
"""``Output._resolve_derived`` with ``reuse``: a source is unknown, the callback did not run."""
_REMEMBER: tuple[list[Any], Any] = ([], None)
"""``Output._last`` of a derived Output a leaf is made of, before its callback's first run."""


def _remember_runs(leaves: list[Output[Any]]) -> None:
    """The derived Outputs ``leaves`` are made of keep their callbacks' last runs, so
    that running a leaf reuses them (a program that makes no leaf keeps nothing)."""
    stack = [source for leaf in leaves for source in leaf._sources]
    while stack:
        out = stack.pop()
        if out._kind == _DERIVED and out._last is None:
            out._last = _REMEMBER
            stack.extend(out._sources)


def use(outputs: Iterable[Output[Any]]) -> None:
    """``outputs`` are used (a resource's inputs, a stack output): they, and the Outputs
    inside a constant one, are no leaves."""
    for out in outputs:
        _use(out)


def _use(out: Output[Any]) -> None:
    if out._kind == _DERIVED:
        out._used = True
    elif out._kind == _CONST and type(out._value) not in _SCALARS:
        for inner in outputs_in(out._value):
            _use(inner)


def _listed(*values: Any) -> list[Any]:
    """``Output.all``'s function: the resolved values as they are, each keeping its own
    secretness (a secret among plain values does not make them all secret)."""
    return list(values)


Input: TypeAlias = Union[T, Output[T]]
"""An input property: a plain value or an Output of one."""


@overload
def as_output(value: Output[T]) -> Output[T]: ...
@overload
def as_output(value: T) -> Output[T]: ...
def as_output(value: Any) -> Output[Any]:
    return value if isinstance(value, Output) else Output.from_value(value)


def secret(value: T | Output[T]) -> Output[T]:
    """Mark a value as secret: it is masked in every output and encrypted at rest."""
    if isinstance(value, Output):
        return Output._derived((value,), lambda v: Secret(v))
    return Output.from_value(value, secret=True)


def fmt(template: str, *args: Any, **kwargs: Any) -> Output[str]:
    """``str.format`` over Outputs: ``sw.fmt("arn:{}:{name}", a, name=b)``."""
    keys = list(kwargs)
    sources = Output.all(*args, *kwargs.values())

    def render(values: list[Any]) -> str:
        positional, named = values[: len(args)], dict(zip(keys, values[len(args) :]))
        return template.format(*positional, **named)

    return sources.apply(render)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Leaves no walk below needs to look into: checked by exact type first, since most of a
manifest is strings and an ``isinstance`` against an ABC costs far more."""


def outputs_in(value: Any) -> list[Output[Any]]:
    """The Outputs inside a (possibly nested) input value, outermost ones only."""
    found: list[Output[Any]] = []
    collect_outputs(value, found)
    return found


def collect_outputs(value: Any, found: list[Output[Any]]) -> None:
    """Appends the outermost Outputs inside ``value`` to ``found``, in order."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if isinstance(value, Output):
        found.append(value)
    elif kind is dict or isinstance(value, Mapping):
        for v in value.values():
            if type(v) not in _SCALARS:
                collect_outputs(v, found)
    elif kind is list or kind is tuple:
        for v in value:
            if type(v) not in _SCALARS:
                collect_outputs(v, found)


def resources_in(value: Any) -> Iterator[Resource]:
    """Every resource that a (possibly nested) input value depends on."""
    for out in outputs_in(value):
        yield from out.resources()


def resources_of(outputs: Iterable[Output[Any]]) -> Iterator[Resource]:
    """Every resource that ``outputs`` depend on; a plain reference to a resource's
    property (most inputs that are Outputs) without walking its tree."""
    for out in outputs:
        if out._kind == _REF and out._resource is not None:
            yield out._resource
        else:
            yield from out.resources()


def outputs_within(value: Any) -> Iterator[Output[Any]]:
    """Every Output inside a (possibly nested) input value, and every Output each is made of."""
    for out in outputs_in(value):
        yield from out._tree()


def missing_in(value: Any) -> Iterator[StackwrightError]:
    """Why parts of a (possibly nested) input value cannot be known, even at apply."""
    for out in outputs_in(value):
        yield from out.missing()


def resolve_value(value: Any, lookup: Lookup) -> Any:
    """Resolve every Output inside a nested input value."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Output):
        return value.resolve(lookup)
    if isinstance(value, Mapping):
        return {k: resolve_value(v, lookup) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_value(v, lookup) for v in value]
    return value


HOLDS_SECRET, HOLDS_UNKNOWN = 1, 2
"""Bits ``resolve_marking`` sets: the value holds a ``Secret``, or ``UNKNOWN``, somewhere."""


def resolve_marking(value: Any, lookup: Lookup) -> tuple[Any, int]:
    """``resolve_value(value, lookup)`` and, found in the same walk, whether the result
    holds a secret or an unknown (``HOLDS_SECRET | HOLDS_UNKNOWN`` bits): planning
    reads each resource's inputs once instead of once per question."""
    kind = type(value)
    if kind in _SCALARS:
        return value, 0
    if kind is dict:
        return _resolve_mapping(value, lookup)
    if kind is list or kind is tuple:
        return _resolve_sequence(value, lookup)
    if isinstance(value, Output):
        resolved = value.resolve(lookup)
        return resolved, marking(resolved)
    if isinstance(value, Mapping):
        return _resolve_mapping(value, lookup)
    return value, marking(value)


def _resolve_mapping(value: Mapping[Any, Any], lookup: Lookup) -> tuple[dict[Any, Any], int]:
    marks = 0
    out: dict[Any, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if kind in _SCALARS:
            out[key] = item
        elif kind is Output and item._kind == _REF:  # most Outputs given as inputs: no tree to walk
            out[key] = resolved = lookup(item._resource, item._prop)
            if type(resolved) not in _SCALARS:
                marks |= marking(resolved)
        else:
            out[key], found = resolve_marking(item, lookup)
            marks |= found
    return out, marks


def _resolve_sequence(value: list[Any] | tuple[Any, ...], lookup: Lookup) -> tuple[list[Any], int]:
    marks = 0
    items: list[Any] = []
    for item in value:
        if type(item) in _SCALARS:
            items.append(item)
        else:
            resolved, found = resolve_marking(item, lookup)
            items.append(resolved)
            marks |= found
    return items, marks


def marking(value: Any) -> int:
    """The ``HOLDS_SECRET | HOLDS_UNKNOWN`` bits of an already resolved value."""
    kind = type(value)
    if kind in _SCALARS:
        return 0
    if value is UNKNOWN:
        return HOLDS_UNKNOWN
    if kind is dict or isinstance(value, Mapping):
        value = value.values()
    elif kind is not list and kind is not tuple:
        return HOLDS_SECRET | marking(value.value) if isinstance(value, Secret) else 0
    marks = 0
    for item in value:
        if type(item) not in _SCALARS:
            marks |= marking(item)
    return marks
