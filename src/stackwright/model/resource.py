"""Resources and components: what a program declares.

A ``Resource`` subclass declares its inputs as annotated class attributes (with
defaults where optional) and its outputs as ``Output[...]`` annotations::

    class File(sw.Resource, type="local:File"):
        path: str
        content: str = ""
        sha256: sw.Output[str]

Reading any declared property on an instance (``f.sha256``, ``f.path``) gives an
``Output`` for the value recorded after apply, so passing it to another resource
records the dependency. Stackwright's own attributes are prefixed (``resource_name``,
``resource_parent``, ``resource_options``, ``urn``) so they never hide an input.
"""

from __future__ import annotations

import copy
import functools
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import InputError
from stackwright.model import context
from stackwright.model.output import (
    HOLDS_SECRET, HOLDS_UNKNOWN, Output, collect_outputs, marking, outputs_in, resources_of, use,
)
from stackwright.model.values import reveal

_MISSING: Any = object()
URN_SEPARATOR = "::"


@dataclass(frozen=True)
class Alias:
    """A former identity of a resource: its old name, type or parent.

    Fields left unset mean "the same as now". ``parent=None`` with
    ``no_parent=True`` means the resource used to sit at the top level.
    """

    name: str | None = None
    type: str | None = None
    parent: Node | str | None = None
    no_parent: bool = False


@dataclass(frozen=True)
class ResourceOptions:
    """How the engine treats a resource beyond its inputs. Frozen: resources declared
    without options all share one instance. ``Alias`` and this class are programs' own
    API, so they stay generated dataclasses, subclassing included."""

    parent: Node | None = None
    depends_on: Sequence[Node | Output[Any]] = ()
    protect: bool = False
    ignore_changes: Sequence[str] = ()
    delete_before_replace: bool = False
    aliases: Sequence[Alias | str] = ()
    retain_on_delete: bool = False
    custom_timeouts: Mapping[str, float] = field(default_factory=dict)
    provider: Resource | None = None
    """A provider instance (e.g. ``k8s.Provider``) whose outputs configure this
    resource's provider calls instead of the stack config. The resource depends on it
    and records its URN, so a changed credential updates the instance only."""

    def __post_init__(self) -> None:
        """Options of the wrong type fail where they are written: taken as given,
        ``ignore_changes="content"`` would ignore the properties "c", "o", "n"... and
        ``protect="yes"`` would be recorded as "yes". A flag given as None is False, as
        in Pulumi (``protect=config.get_bool("protect")``)."""
        for flag in _FLAGS:
            if getattr(self, flag) is None:
                object.__setattr__(self, flag, False)
        problem = _options_problem(self)
        if problem is not None:
            file, line = context.user_frame(3)  # past this and the dataclass's __init__
            raise InputError(problem[0], file=file, line=line, hint=problem[1])

    def provider_instance(self, parent: Node | None) -> Resource | None:
        """This option, else the nearest ancestor component's (children inherit it)."""
        node: Node | None = parent
        found = self.provider
        while found is None and node is not None:
            found = node.resource_options.provider
            node = node.resource_parent
        return found


_FLAGS = ("protect", "retain_on_delete", "delete_before_replace")


def _options_problem(options: ResourceOptions) -> tuple[str, str | None] | None:
    """What is wrong with ``options`` and a hint, or None."""
    for flag in _FLAGS:
        value = getattr(options, flag)
        if type(value) is not bool:
            return f"{flag} must be True or False, not {_described(value)}", None
    for name, kinds, wanted, hint in _LISTS:
        value = getattr(options, name)
        if type(value) not in (list, tuple):
            if name == "ignore_changes" and isinstance(value, str):
                hint = f"ignore_changes=[{value!r}]"
            return f"{name} must be {wanted}, not {_described(value)}", hint
        wrong = next((item for item in value if not isinstance(item, kinds)), _MISSING) if value else _MISSING
        if wrong is not _MISSING:
            return f"{name} must be {wanted}, not a list holding {_described(wrong)}", hint
    return None


def _described(value: Any) -> str:
    if isinstance(value, (Node, Output)):
        return type(value).__name__
    return f"{type(value).__name__} {value!r:.60}"


@frozen_record
class InputSpec(FrozenCompared):
    """One input a resource class declares: its name, its type, its default if optional."""

    name: str
    type: Any
    default: Any = _MISSING

    def __init__(self, name: str, type: Any, default: Any = _MISSING) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "default", default)

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def make_urn(stack: str, project: str, type_token: str, path: str) -> str:
    return URN_SEPARATOR.join((stack, project, type_token, path))


def urn_parts(urn: str) -> tuple[str, str, str, str]:
    """``(stack, project, type, path)``; the path is ``parent$...$name``."""
    stack, project, type_token, path = urn.split(URN_SEPARATOR, 3)
    return stack, project, type_token, path


def urn_name(urn: str) -> str:
    """The resource's own name: the last segment of the URN's path."""
    return urn.rsplit(URN_SEPARATOR, 1)[-1].rsplit("$", 1)[-1]


class Node:
    """What resources and components share: a name, a parent, a URN and options."""

    type_token: ClassVar[str] = ""

    urn: str
    resource_options: ResourceOptions
    resource_parent: Node | None
    decl_file: str | None
    decl_line: int | None

    def __init__(self, name: str, opts: ResourceOptions | None,
                 ctx: context.ProgramContext | None = None) -> None:
        ctx = ctx or context.current()
        self.decl_file, self.decl_line = context.user_frame(3)  # past Resource/Component.__init__, Resource.get
        if type(name) is not str or not name or "$" in name or URN_SEPARATOR in name:
            _check_name(name, self)
        options = opts or _NO_OPTIONS
        parent = options.parent or (ctx.component_stack[-1] if ctx.component_stack else None)
        self.resource_options = options
        self.resource_parent = parent
        prefix = ctx.urn_prefixes.get(self.type_token) or _urn_prefix(ctx, self.type_token)
        self.urn = prefix + (f"{parent._path()}${name}" if parent is not None else name)

    @property
    def resource_name(self) -> str:
        """The name the node was declared with: the end of its URN (a name holds no
        ``$`` or ``::``), not kept apart, since a program of 50,000 resources would hold
        each name twice."""
        return urn_name(self.urn)

    def _path(self) -> str:
        return f"{self.resource_parent._path()}${self.resource_name}" if self.resource_parent else self.resource_name

    def declared_at(self) -> str:
        return f"{self.decl_file}:{self.decl_line}" if self.decl_file else "<unknown>"

    def alias_urns(self) -> list[str]:
        """Every URN this node may be recorded under from an earlier run."""
        if not self.resource_options.aliases and self.resource_parent is None:
            return []
        stack, project, _, _ = urn_parts(self.urn)
        urns = [_alias_urn(self, alias, stack, project) for alias in self.resource_options.aliases]
        if self.resource_parent is not None:
            for parent_urn in self.resource_parent.alias_urns():
                parent_path = urn_parts(parent_urn)[3]
                urns.append(make_urn(stack, project, self.type_token, f"{parent_path}${self.resource_name}"))
        return urns

    def error(self, message: str, prop: str | None = None, hint: str | None = None) -> InputError:
        return InputError(
            message, file=self.decl_file, line=self.decl_line,
            resource=self.urn, prop=prop, hint=hint,
        )


def _urn_prefix(ctx: context.ProgramContext, type_token: str) -> str:
    prefix = ctx.urn_prefixes[type_token] = make_urn(ctx.stack, ctx.project, type_token, "")
    return prefix


def _alias_urn(node: Node, alias: Alias | str, stack: str, project: str) -> str:
    if isinstance(alias, str):
        if alias.count(URN_SEPARATOR) < 3:
            raise node.error(f"alias {alias!r} is not a URN", prop="aliases",
                             hint=f"give a former name as sw.Alias(name={alias!r}), or the whole former "
                                  "URN (`stackwright state ls` lists them)")
        return alias
    name = alias.name or node.resource_name
    if alias.no_parent:
        path = name
    elif isinstance(alias.parent, Node):
        path = f"{alias.parent._path()}${name}"
    elif isinstance(alias.parent, str):
        path = f"{urn_parts(alias.parent)[3]}${name}"
    else:
        path = f"{node.resource_parent._path()}${name}" if node.resource_parent else name
    return make_urn(stack, project, alias.type or node.type_token, path)


def _check_name(name: Any, node: Node) -> None:
    if not isinstance(name, str) or not name or "$" in name or URN_SEPARATOR in name:
        raise InputError(
            f"invalid resource name {name!r}",
            file=node.decl_file, line=node.decl_line, resource=type(node).__name__,
            hint="a name is a non-empty string without '$' or '::'",
        )


_LISTS: tuple[tuple[str, Any, str, str | None], ...] = (
    ("ignore_changes", str, "a list of property names", "ignore_changes=['content', 'tags']"),
    ("depends_on", (Node, Output), "a list of resources",
     "list the resources themselves, not their names: depends_on=[vpc, subnet]"),
    ("aliases", (Alias, str), "a list of sw.Alias or former URNs", "aliases=[sw.Alias(name='old-name')]"))
"""The options that hold lists: what each item must be, what to say, a hint."""
_NO_OPTIONS = ResourceOptions()
"""What a resource declared without options has (made once ``_LISTS`` exists)."""


class Resource(Node):
    """A cloud object managed by a provider. Subclasses declare inputs and outputs."""

    _specs: ClassVar[dict[str, InputSpec] | None] = None
    _fields: ClassVar[tuple[_Field, ...]] = ()
    """The inputs as ``_validated`` reads them, built with ``_specs``."""
    _defaults: ClassVar[dict[str, Any]] = {}
    """Every input by name in declared order: its default, or ``_MISSING``."""
    _output_names: ClassVar[frozenset[str]] = frozenset()
    _own_defaults: ClassVar[dict[str, Any]] = {}

    inputs: dict[str, Any]
    dependencies: list[Node]
    read_id: Any = None
    """Set by ``get``: the id of an existing object this node only reads."""
    _typed_when_resolved: tuple[str, ...] = ()
    """The inputs given an Output, or a value holding one: declaration could not check
    their types, ``check_resolved`` does once they are known."""

    def __init_subclass__(cls, type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type is not None:
            cls.type_token = type
        cls._specs = None
        own = cls.__dict__.get("__annotations__", {})
        cls._own_defaults = {n: cls.__dict__[n] for n in own if n in cls.__dict__}
        for name in cls._own_defaults:
            delattr(cls, name)
        for name, annotation in own.items():
            if not name.startswith("_") and name not in _NODE_ATTRS and not _is_class_var(annotation):
                setattr(cls, name, _Property(name))

    def __init__(self, name: str, /, *, opts: ResourceOptions | None = None, **inputs: Any) -> None:
        ctx = context.current()
        Node.__init__(self, name, opts, ctx)
        if not self.type_token:
            raise self.error(f"{type(self).__name__} has no type token",
                             hint='declare it as class X(sw.Resource, type="provider:Type")')
        found: list[Output[Any]] = []
        self.inputs = self._validated(inputs, found)
        self.dependencies = self._collect_dependencies(found)
        if ctx.derived and found:
            use(found)
        ctx.register(self)
        parent = self.resource_parent
        if parent is not None and isinstance(parent, Component):
            parent.children.append(self)

    @classmethod
    def get(cls, name: str, id: Any, *, opts: ResourceOptions | None = None) -> Any:
        """Read an object that exists already (a data lookup). Its outputs can feed other
        resources; Stackwright records it but never changes or deletes it."""
        resource = cls.__new__(cls)
        Node.__init__(resource, name, opts)
        resource.inputs = {}
        resource.read_id = id
        resource.dependencies = resource._collect_dependencies()
        found = outputs_in(id)
        for node in resources_of(found):
            if node.urn != resource.urn and node not in resource.dependencies:
                resource.dependencies.append(node)
        use(found)
        context.current().register(resource)
        if isinstance(resource.resource_parent, Component):
            resource.resource_parent.children.append(resource)
        return resource

    @property
    def id(self) -> Output[str]:
        """The provider's identifier for the resource, known after apply."""
        return Output._ref(self, "id")

    @classmethod
    def input_specs(cls) -> dict[str, InputSpec]:
        if cls._specs is None:
            cls._build_specs()
        assert cls._specs is not None
        return cls._specs

    @classmethod
    def output_names(cls) -> frozenset[str]:
        cls.input_specs()
        return cls._output_names

    @classmethod
    def _build_specs(cls) -> None:
        hints = typing.get_type_hints(cls)
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            defaults.update(klass.__dict__.get("_own_defaults", {}))
        specs: dict[str, InputSpec] = {}
        outputs: set[str] = set()
        for name, hint in hints.items():
            if name.startswith("_") or name in _NODE_ATTRS or typing.get_origin(hint) is ClassVar:
                continue
            if typing.get_origin(hint) is Output or hint is Output:
                outputs.add(name)
            else:
                specs[name] = InputSpec(name, _plain_type(hint), defaults.get(name, _MISSING))
        cls._specs, cls._output_names = specs, frozenset(outputs)
        cls._fields = tuple((name, spec, _plain_types(spec.type), spec.default) for name, spec in specs.items())
        cls._defaults = {name: spec.default for name, spec in specs.items()}

    def _validated(self, given: dict[str, Any], found: list[Output[Any]]) -> dict[str, Any]:
        """The inputs, defaults filled in, each checked against its type; the Outputs
        in them are appended to ``found`` in the same walk, inputs in declared order."""
        cls = type(self)
        if cls._specs is None:
            cls._build_specs()
        values = {**cls._defaults, **given}  # in declared order: the defaults hold every input
        if len(values) != len(cls._defaults):
            specs = cls.input_specs()
            raise self._unknown_input(next(name for name in given if name not in specs), specs)
        later: list[str] = []
        for (name, spec, plain, default), value in zip(cls._fields, values.values()):
            if type(value) in plain:
                continue
            if value is default:
                if default is _MISSING:
                    raise self.error(f"missing required input {name!r} ({_type_name(spec.type)})", prop=name)
                if type(default) not in _SCALAR_TYPES:
                    values[name] = value = copy.deepcopy(default)
                    collect_outputs(value, found)
            elif type(value) is Output:
                found.append(value)
                if spec.type is not Any:
                    later.append(name)
            elif type(value) in _SCALAR_TYPES:
                _check_type(self, spec, value, False)
            else:
                before = len(found)
                collect_outputs(value, found)
                if _check_type(self, spec, value, len(found) > before) is _DEFERRED:
                    later.append(name)
        if later:
            self._typed_when_resolved = tuple(later)
        return values

    def check_resolved(self, inputs: Mapping[str, Any]) -> None:
        """Checks each input that was given an Output (an ``.apply`` callback's result,
        another resource's output), or a value holding one, against its declared type,
        ``inputs`` holding the resolved values: the check a value given as it is had at
        declaration, with the same message. A value still unknown, whole or in part, is
        left for a later call, once what it reads is applied. Raises InputError naming
        where the resource is declared, the property and the type."""
        if not self._typed_when_resolved:
            return
        specs = type(self).input_specs()
        for name in self._typed_when_resolved:
            value = inputs.get(name, _MISSING)
            marks = marking(value) if value is not _MISSING else HOLDS_UNKNOWN
            if marks & HOLDS_UNKNOWN:
                continue
            secret = bool(marks & HOLDS_SECRET)
            try:
                _check_type(self, specs[name], reveal(value) if secret else value, False, secret)
            except InputError as exc:
                exc.hint = (f"{name} is given an Output (an .apply callback's result or another resource's "
                            f"output): make it give {_type_name(specs[name].type)}")
                raise

    def _unknown_input(self, name: str, specs: Mapping[str, InputSpec]) -> InputError:
        import difflib

        close = difflib.get_close_matches(name, specs, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known inputs: {', '.join(specs) or 'none'}"
        return self.error(f"unknown input {name!r} for {self.type_token}", prop=name, hint=hint)

    def _collect_dependencies(self, found: Sequence[Output[Any]] = ()) -> list[Node]:
        """The nodes this one waits for: the resources behind the Outputs ``found`` in
        its inputs, then ``depends_on``, then its provider instance."""
        if self.resource_options is _NO_OPTIONS and self.resource_parent is None:
            if not found:
                return []
            sole = found[0].referred() if len(found) == 1 else None
            if sole is not None:
                return [sole] if sole.urn != self.urn else []
        deps: dict[str, Node] = {}
        for resource in resources_of(found):
            deps[resource.urn] = resource
        opts = self.resource_options
        for dep in opts.depends_on:
            nodes = dep.resources() if isinstance(dep, Output) else [dep]
            for node in nodes:
                deps[node.urn] = node
        if opts.provider is not None or self.resource_parent is not None:
            instance = opts.provider_instance(self.resource_parent)
            if instance is not None:
                deps[instance.urn] = instance
        deps.pop(self.urn, None)
        return list(deps.values())


class _Property:
    """A declared input or output: read on a resource, an ``Output`` of its value after
    apply (a descriptor rather than ``__getattr__``, which would slow every other
    attribute read on every resource)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Resource | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _reference(instance, self.name)


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


_reference = Output._ref


_NODE_ATTRS = frozenset(("resource_name", "urn", "resource_options", "resource_parent",
                         "decl_file", "decl_line", "inputs", "dependencies", "type_token",
                         "id", "children", "read_id"))


def _plain_type(hint: Any) -> Any:
    """``Input[T]`` (``T | Output[T]``) becomes ``T``; other hints stay as they are."""
    if typing.get_origin(hint) in (typing.Union, _UnionType):
        members = [a for a in typing.get_args(hint) if not _is_output_type(a)]
        if len(members) == 1:
            return members[0]
        return typing.Union[tuple(members)]
    return hint


def _is_output_type(hint: Any) -> bool:
    return hint is Output or typing.get_origin(hint) is Output


def _plain_types(tp: Any) -> frozenset[type]:
    """The exact types of scalar values that fit ``tp`` as they are (no walk, no
    pydantic): what most inputs are given, checked with one set lookup."""
    if tp is Any:
        return _SCALAR_TYPES
    if tp is int:
        return frozenset((int,))
    return frozenset(_SIMPLE.get(tp, ()))  # exact types: a bool is no int here


_Field = tuple[str, InputSpec, frozenset[type], Any]
_UnionType = type(int | str)
_ANY_DICT = dict[str, Any]
"""A manifest's type: any dict with string keys fits, whatever it holds (Outputs too)."""
_SIMPLE: dict[Any, tuple[type, ...]] = {str: (str,), float: (float, int), bool: (bool,)}
_DEFERRED: Any = object()
"""``_check_type``'s answer for a value whose fit depends on the Outputs it holds."""
_SCALAR_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})
"""Values that hold nothing to walk, and defaults that need no copy."""


def _check_type(node: Node, spec: InputSpec, value: Any, holds_output: bool, secret: bool = False) -> Any:
    """The value if it fits the declared type; ``_DEFERRED`` if that depends on the
    Outputs it holds (``holds_output``), checked once resolved (``Resource.check_resolved``).
    ``secret``: the value is a secret's, which the error names by its type alone."""
    if spec.type is Any or (spec.type == _ANY_DICT and type(value) is dict
                            and all(type(k) is str for k in value)):
        return value
    if holds_output:
        return _DEFERRED
    simple = _SIMPLE.get(spec.type)
    if simple is not None:
        if isinstance(value, simple) and not (spec.type is float and isinstance(value, bool)):
            return value
    elif spec.type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    else:
        return _validate_with_pydantic(node, spec, value, secret)
    raise _type_error(node, spec, value, secret)


def _validate_with_pydantic(node: Node, spec: InputSpec, value: Any, secret: bool = False) -> Any:
    from pydantic import ValidationError

    try:
        _adapter(spec.type).validate_python(value)
    except ValidationError as exc:
        detail = exc.errors()[0]
        where = ".".join(str(p) for p in detail.get("loc", ()))
        raise node.error(
            f"expected {_type_name(spec.type)}, got {_describe(value, secret)}"
            + (f" (at {where}: {detail['msg']})" if where else ""),
            prop=spec.name,
        ) from None
    return value


@functools.lru_cache(maxsize=None)
def _adapter(tp: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(tp, config=ConfigDict(strict=True, arbitrary_types_allowed=True))


def _type_error(node: Node, spec: InputSpec, value: Any, secret: bool = False) -> InputError:
    return node.error(f"expected {_type_name(spec.type)}, got {_describe(value, secret)}", prop=spec.name)


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _describe(value: Any, secret: bool = False) -> str:
    if secret:
        return f"{type(value).__name__} (a secret: its value is not shown)"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


class Component(Node):
    """A reusable group of resources. Resources declared while a component's
    ``__init__`` runs get it as their parent unless they name another."""

    children: list[Node]

    def __init_subclass__(cls, type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_token = type or f"component:{cls.__module__.rsplit('.', 1)[-1]}:{cls.__name__}"
        if "__init__" in cls.__dict__:
            cls.__init__ = _parenting(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(self, name: str, opts: ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        self.children = []
        ctx = context.current()
        ctx.register(self)
        if isinstance(self.resource_parent, Component):
            self.resource_parent.children.append(self)
        if self.__dict__.get("_sw_autoparent"):
            ctx.component_stack.append(self)


def _parenting(init: Callable[..., None]) -> Callable[..., None]:
    """Wraps a component's ``__init__`` so that resources it declares get it as parent."""

    @functools.wraps(init)
    def wrapper(self: Component, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_sw_autoparent"):
            init(self, *args, **kwargs)
            return
        ctx = context.current()
        depth = len(ctx.component_stack)
        self.__dict__["_sw_autoparent"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            del ctx.component_stack[depth:]
            self.__dict__["_sw_autoparent"] = False

    return wrapper


def restore(cls: type[Resource], urn: str, inputs: dict[str, Any], *,
            parent_urn: str | None, protect: bool = False, retain_on_delete: bool = False,
            ignore_changes: Sequence[str] = (), delete_before_replace: bool = False,
            aliases: Sequence[str] = ()) -> Resource:
    """A resource object rebuilt from a state record rather than declared by a program
    (rollback plans against the inputs recorded at an earlier checkpoint), with the
    options a record keeps (``aliases`` as URNs)."""
    resource = object.__new__(cls)
    resource.urn = urn
    resource.resource_options = ResourceOptions(
        protect=protect, retain_on_delete=retain_on_delete, ignore_changes=list(ignore_changes),
        delete_before_replace=delete_before_replace, aliases=list(aliases))
    resource.resource_parent = _recorded_parent(parent_urn) if parent_urn else None
    resource.decl_file, resource.decl_line = None, None
    resource.inputs = inputs
    resource.dependencies = []
    return resource


def _recorded_parent(urn: str) -> Component:
    parent = object.__new__(Component)
    parent.urn = urn
    parent.resource_options = ResourceOptions()
    parent.resource_parent = None
    parent.children = []
    return parent
