"""The program context: where declared resources, exports and config live while a
program runs. The program layer creates one per run; the model layer fills it.

The active context lives in a ``ContextVar``, not a module global, so that one process
can run many programs (`stackwright run`) and each sees only its own.
"""

from __future__ import annotations

import os
import sys
import threading
from contextvars import ContextVar
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import CodeType
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackwright.dataclass_methods import Compared
from stackwright.errors import GraphError, ProgramError

if TYPE_CHECKING:
    from stackwright.model.output import Output
    from stackwright.model.resource import Node


# Every command loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as the ``@dataclass`` they are declared.


@dataclass(init=False, repr=False, eq=False)
class ConfigSource(Compared):
    """A stack's config values, the file they came from and each key's line there."""

    data: Mapping[str, Any]
    file: str
    lines: Mapping[str, int] = field(default_factory=dict)

    def __init__(self, data: Mapping[str, Any], file: str, lines: Mapping[str, int] | None = None) -> None:
        self.data = data
        self.file = file
        self.lines = {} if lines is None else lines


@dataclass(init=False, repr=False, eq=False)
class ProgramContext(Compared):
    """Everything a program declares during one run."""

    stack: str
    project: str
    config: ConfigSource
    nodes: dict[str, Node] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    component_stack: list[Node] = field(default_factory=list)
    callback_depth: int = 0
    finishers: list[Callable[[], None]] = field(default_factory=list)
    """Work that declares resources after the program's own code has run (a Helm chart's
    objects, rendered in the background while the program goes on)."""
    read_stack_outputs: Callable[[str], Mapping[str, Any]] | None = None
    """Another stack's latest recorded outputs by ``project/stack``; set by whoever runs
    the program with access to state (the model layer cannot open a state store)."""
    stack_references: set[str] = field(default_factory=set)
    """The ``project/stack`` names this run read: dependencies between stacks."""
    extensions: dict[str, Any] = field(default_factory=dict)
    """Per-run indexes kept by providers' declaration helpers (e.g. the Kubernetes
    namespaces declared so far, for implicit ordering), by provider name."""
    targets: tuple[str, ...] = ()
    """The command's ``--target``s. A component that knows no target can name it or
    anything under it may leave its children undeclared (see ``components.Tenant``);
    the plan then covers only the targets, so nothing else is planned from the gap."""
    urn_prefixes: dict[str, str] = field(default_factory=dict, repr=False)
    """``stack::project::type::`` by type token, made once per run and type: every URN
    declared starts with one (see ``model.resource``)."""
    stack_reads: dict[Any, str] = field(default_factory=dict)
    """Each value read from another stack (the ``Output`` a ``StackReference`` gave, by
    identity) and what it is (``network/dev output vpc_id``): named when a saved plan
    is refused over such a value."""
    derived: list[Output[Any]] = field(default_factory=list, repr=False)
    """Every derived Output the program made (not its callbacks), in order: those
    nothing uses are the run's leaves (see ``output.Leaves``)."""

    def __init__(self, stack: str, project: str, config: ConfigSource, nodes: dict[str, Node] | None = None,
                 exports: dict[str, Any] | None = None, component_stack: list[Node] | None = None,
                 callback_depth: int = 0, finishers: list[Callable[[], None]] | None = None,
                 read_stack_outputs: Callable[[str], Mapping[str, Any]] | None = None,
                 stack_references: set[str] | None = None, extensions: dict[str, Any] | None = None,
                 targets: tuple[str, ...] = (), urn_prefixes: dict[str, str] | None = None,
                 stack_reads: dict[Any, str] | None = None,
                 derived: list[Output[Any]] | None = None) -> None:
        self.stack = stack
        self.project = project
        self.config = config
        self.nodes = {} if nodes is None else nodes
        self.exports = {} if exports is None else exports
        self.component_stack = [] if component_stack is None else component_stack
        self.callback_depth = callback_depth
        self.finishers = [] if finishers is None else finishers
        self.read_stack_outputs = read_stack_outputs
        self.stack_references = set() if stack_references is None else stack_references
        self.extensions = {} if extensions is None else extensions
        self.targets = targets
        self.urn_prefixes = {} if urn_prefixes is None else urn_prefixes
        self.stack_reads = {} if stack_reads is None else stack_reads
        self.derived = [] if derived is None else derived

    def register(self, node: Node) -> None:
        previous = self.nodes.get(node.urn)
        if previous is not None:
            raise GraphError(
                f"duplicate resource name {node.resource_name!r} of type {node.type_token}"
                f" (first declared at {previous.declared_at()})",
                file=node.decl_file,
                line=node.decl_line,
                resource=node.urn,
                hint="names must be unique among the children of one parent",
            )
        self.nodes[node.urn] = node

    def finish(self) -> None:
        """Run the finishers in the order they were added, including any they add."""
        while self.finishers:
            self.finishers.pop(0)()


_current: ContextVar[ProgramContext | None] = ContextVar("stackwright_program", default=None)
_callback_depth: ContextVar[int] = ContextVar("stackwright_callback_depth", default=0)
"""Output callbacks running outside any program context (planning and apply resolve
Outputs after the program has finished)."""
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def current() -> ProgramContext:
    ctx = _current.get()
    if _callback_depth.get() or (ctx is not None and ctx.callback_depth):
        file, line = user_frame()
        raise ProgramError(
            "a resource was declared inside an Output callback",
            file=file,
            line=line,
            hint="the set of resources must be known when the plan is made; declare "
            "resources at the top level and pass Outputs to them as inputs",
        )
    if ctx is None or threading.get_ident() not in _program_threads:
        raise _outside_program(ctx)
    return ctx


def _outside_program(ctx: ProgramContext | None) -> ProgramError:
    """Why there is no program to declare in here. A thread the program started has
    none: threads do not inherit a ``ContextVar``. One given the program's context
    anyway (``contextvars.copy_context().run``) is refused too, since declaring is not
    safe side by side: a component's children find their parent on a stack that all
    threads would share, and resources would be declared in a different order each run."""
    if ctx is None and not _program_threads:
        return ProgramError(
            "resources can only be declared while a Stackwright program runs",
            hint="run the program with `stackwright preview`, or in tests use "
            "stackwright.testing.declare(...)",
        )
    file, line = user_frame(3)
    return ProgramError(
        f"{threading.current_thread().name!r} is not the thread that runs the program: resources, "
        "config and exports are only available on the program's own thread (other threads do not "
        "inherit its context)",
        file=file, line=line,
        hint="do the slow work in threads and declare the resources on the program's thread, from "
        "their results: `for item, data in zip(items, pool.map(fetch, items)): ...`",
    )


current_or_none: Callable[[], ProgramContext | None] = _current.get
"""The running program's context, or None (the variable's own ``get``: every derived
Output made asks, and a function around it would cost a call each time)."""


@contextmanager
def activate(ctx: ProgramContext) -> Iterator[ProgramContext]:
    """``ctx`` is the program's context on this thread, and on no other."""
    thread = threading.get_ident()
    with _threads_lock:
        _program_threads[thread] = _program_threads.get(thread, 0) + 1
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
        with _threads_lock:
            _program_threads[thread] -= 1
            if not _program_threads[thread]:
                del _program_threads[thread]


_program_threads: dict[int, int] = {}
"""The threads running a program, with how many program contexts each has active."""
_threads_lock = threading.Lock()


@contextmanager
def inside_callback() -> Iterator[None]:
    """Marks that Output callbacks are running, where declaring resources is an error."""
    ctx = _current.get()
    if ctx is None:
        token = _callback_depth.set(_callback_depth.get() + 1)
        try:
            yield
        finally:
            _callback_depth.reset(token)
        return
    ctx.callback_depth += 1
    try:
        yield
    finally:
        ctx.callback_depth -= 1


def user_frame(depth: int = 1) -> tuple[str | None, int | None]:
    """File and line of the nearest caller outside the stackwright package, looking
    from ``depth`` frames up (1: the caller; a caller that knows the frames above it are
    the package's own skips them)."""
    try:
        frame = sys._getframe(depth)
    except ValueError:  # fewer frames than the caller thought: look from the caller
        frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        seen = _PLACES.get((id(code), frame.f_lasti))
        if seen is None or seen[0] is not code:
            seen = _place(code, frame.f_lasti)
        if seen[1] is not None:
            return seen[1]
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def _place(code: CodeType, lasti: int) -> tuple[CodeType, tuple[str, int | None] | None]:
    """``code`` with the file and line of its instruction ``lasti`` when the code is the
    user's (None when it is the package's own or a frozen module's), remembered: resources
    declared in a loop or a function come from the same instruction again and again, and
    ``frame.f_lineno`` reads the code's line table from its start every time."""
    filename = code.co_filename
    place = None
    if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
        place = (filename, next((line for start, end, line in code.co_lines() if start <= lasti < end), None))
    if len(_PLACES) >= _PLACES_MAX:
        _PLACES.clear()
    seen = _PLACES[id(code), lasti] = (code, place)
    return seen


_PLACES: dict[tuple[int, int], tuple[CodeType, tuple[str, int | None] | None]] = {}
"""``_place`` by code object (its id; the object itself kept, to tell a reused id) and
instruction."""
_PLACES_MAX = 100_000
"""Bounds what `stackwright run` (many programs in one process) remembers."""


def user_frame_of(exc: BaseException) -> tuple[str | None, int | None]:
    """File and line of the deepest frame of ``exc``'s traceback in the user's code:
    outside the stackwright package and Python's own and installed libraries."""
    import sysconfig
    import traceback

    libraries = tuple(os.path.abspath(sysconfig.get_paths()[name]) + os.sep
                      for name in ("stdlib", "platstdlib", "purelib", "platlib"))
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if not path.startswith((_PACKAGE_DIR, *libraries)) and not frame.filename.startswith("<"):
            found = (frame.filename, frame.lineno)
    return found
