"""Running a user's program to get its desired graph.

The program runs in this process with the project folder on ``sys.path``. Errors it
raises are turned into ``ProgramError`` pointing at the user's file and line; the
original exception stays attached as ``__cause__`` for ``--debug``.

One process may run many programs (`stackwright run`), one after another: the modules a
program imports from its own folders are forgotten when it ends, so that two projects
may each have their own ``lib.py``; what it changes in ``os.environ``, ``sys.path`` or
the working directory is undone then, so that the next program, and the providers
applying this one's plan, see the process as it was (as `stackwright up` in each project
would). Programs never depend on the working directory.

The modules a program (or a policy file) imports from its folders are compiled from
their source, never loaded from ``__pycache__``: Python would run a bytecode file there
instead of the source whenever its header records the source's size and time (or
content hash, or says not to check), whatever code follows, and the program digest a
saved plan pins covers the source, not ``__pycache__`` (``program.digest``). Nothing is
written there either.
Folders the digest skips by name (dot-folders, ``venv``, ``node_modules``: installed
packages) are imported as Python always does.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

from stackwright.errors import ProgramError, StackwrightError, raised
from stackwright.model import context
from stackwright.model.context import ConfigSource, ProgramContext
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import Leaves
from stackwright.model.resource import Component, Node, Resource
from stackwright.program.digest import skipped_folder
from stackwright.program.project import Project
from stackwright.program.project_files import read_project_file, shown_path


OutputsReader = Callable[[str], Mapping[str, Any]]
"""``project/stack`` to that stack's latest recorded outputs (for ``StackReference``)."""


def run_program(project: Project, stack: str, config: ConfigSource, *,
                read_stack_outputs: OutputsReader | None = None,
                python_path: Sequence[Path] = (), targets: Sequence[str] = ()) -> DesiredGraph:
    """Run the program once. ``python_path`` adds folders of shared code (the
    workspace's) after the project's own folder on ``sys.path``; ``targets`` (a
    command's ``--target``) lets components outside them skip declaring their children,
    so the graph is complete only for what the targets name."""
    ctx = ProgramContext(stack=stack, project=project.name, config=config,
                         read_stack_outputs=read_stack_outputs, targets=tuple(targets))
    with process_kept(), project_imports([project.root, *python_path]), context.activate(ctx):
        _run_main(project)
        ctx.finish()
    return desired_graph(ctx)


@contextmanager
def process_kept() -> Iterator[None]:
    """The environment variables, ``sys.path`` and working directory as they were before,
    whatever the program did to them: a program that sets ``AWS_PROFILE`` for itself must
    not choose the credentials of the stacks run after it."""
    environ, path, cwd = dict(os.environ), list(sys.path), os.getcwd()
    try:
        yield
    finally:
        sys.path[:] = path
        if os.getcwd() != cwd:
            os.chdir(cwd)
        _restore_environ(environ)


def _restore_environ(environ: Mapping[str, str]) -> None:
    """``os.environ`` as ``environ``, setting only what differs (each change is a
    ``putenv`` or ``unsetenv``)."""
    for name in [name for name in os.environ if name not in environ]:
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


@contextmanager
def project_imports(folders: Sequence[Path]) -> Iterator[None]:
    """``folders`` first on ``sys.path`` for a while; afterwards the modules imported
    from them are forgotten, so the next program's same-named modules are its own."""
    paths = [str(folder) for folder in folders]
    before = set(sys.modules)
    hook = _SourceOnlyHook(paths)
    _forget_finders(hook)
    sys.path_hooks.insert(0, hook)
    sys.path[:0] = paths
    try:
        yield
    finally:
        for path in paths:
            if path in sys.path:
                sys.path.remove(path)
        sys.path_hooks[:] = [h for h in sys.path_hooks if h is not hook]
        _forget_new_modules(before, paths)


class _SourceOnlyHook:
    """A ``sys.path_hooks`` entry: for the program's folders (but those the program
    digest skips by name), a finder whose modules are compiled from their source."""

    def __init__(self, roots: Sequence[str]) -> None:
        # as on sys.path, and absolute, as in the ``__path__`` of a package found there
        self.roots = frozenset([*roots, *map(os.path.abspath, roots)])
        self.prefixes = tuple(os.path.join(root, "") for root in self.roots)

    def covers(self, path: str) -> bool:
        if path in self.roots:
            return True
        if not path.startswith(self.prefixes):
            return False
        below = next(path[len(prefix):] for prefix in self.prefixes if path.startswith(prefix))
        return not any(skipped_folder(part) for part in below.split(os.sep))

    def __call__(self, path: str) -> importlib.machinery.FileFinder:
        if not self.covers(path) or not os.path.isdir(path):  # a zip file is zipimport's
            raise ImportError("not a folder of the program")
        return _SourceFinder(
            path, (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
            (_FromSource, importlib.machinery.SOURCE_SUFFIXES),
            (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES))


class _SourceFinder(importlib.machinery.FileFinder):
    """A finder ``_SourceOnlyHook`` made; left cached when the program ends (it finds
    only what the usual one would, and compiles it from source)."""


class _FromSource(importlib.machinery.SourceFileLoader):
    """Compiles the module's source each time its content is new to this process, and
    neither reads nor writes ``__pycache__``."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return _compiled(path, self.get_data(path))


def _forget_finders(hook: _SourceOnlyHook) -> None:
    """Drop the usual finders cached for the program's folders, so that the hook makes
    its own."""
    cache = sys.path_importer_cache
    for path in [path for path, finder in cache.items()
                 if not isinstance(finder, _SourceFinder) and hook.covers(path)]:
        del cache[path]


def _forget_new_modules(before: set[str], paths: Sequence[str]) -> None:
    prefixes = tuple(str(Path(path).resolve()) + "/" for path in paths)
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file and str(Path(file).resolve()).startswith(prefixes):
            del sys.modules[name]


def _run_main(project: Project) -> None:
    path = project.main_path
    try:
        _run_as_main(path)
    except (StackwrightError, KeyboardInterrupt):
        raise
    except SyntaxError as exc:
        raise ProgramError(
            f"syntax error: {exc.msg}", file=exc.filename or str(path), line=exc.lineno,
            hint="fix the program and run the command again",
        ) from exc
    except BaseException as exc:  # noqa: BLE001 - sys.exit() in a program is its failure, not the command's end
        file, line = _user_location(exc, project.root)
        raise ProgramError(
            f"the program {raised(exc)}", file=file or str(path), line=line,
            hint="run with --debug to see the traceback",
        ) from exc


def _run_as_main(path: Path) -> None:
    """What ``runpy.run_path(path, run_name="__main__")`` does for a file (a module of
    its own as ``__main__`` and ``sys.argv[0]`` while it runs), compiling each content
    once: `stackwright run` runs one program for many stacks, and twice each."""
    source = read_project_file(path, shown_path(path), "the program")
    code = _compiled(str(path), source)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=str(path), __cached__=None, __loader__=None, __package__=None,
                           __spec__=None, __builtins__=builtins)
    saved_main, saved_argv = sys.modules.get("__main__"), list(sys.argv)
    sys.modules["__main__"] = module
    sys.argv[:1] = [str(path)]
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's program is the point
    finally:
        sys.argv[:] = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        else:
            sys.modules.pop("__main__", None)


def _compiled(path: str, source: bytes) -> CodeType:
    key = (path, source)
    code = _COMPILED.get(key)
    if code is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        code = _COMPILED[key] = compile(source, path, "exec", dont_inherit=True)
    return code


_COMPILED: dict[tuple[str, bytes], CodeType] = {}
"""Code by file and content: `stackwright run` runs one program (and imports its
modules) for many stacks, and twice each."""
_COMPILED_MAX = 1024


def _user_location(exc: BaseException, root: Path) -> tuple[str | None, int | None]:
    """The deepest traceback frame in the project's own files."""
    import traceback

    found: tuple[str | None, int | None] = (None, None)
    prefix = str(root.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()).startswith(prefix):
            found = (frame.filename, frame.lineno)
    return found


def desired_graph(ctx: ProgramContext) -> DesiredGraph:
    """Resources in declaration order, with dependencies on components expanded to
    the resources inside them."""
    resources: dict[str, Resource] = {}
    components: dict[str, Component] = {}
    for urn, node in ctx.nodes.items():
        if isinstance(node, Resource):
            resources[urn] = node
        elif isinstance(node, Component):
            components[urn] = node
    if components:
        deps = {urn: _expanded(urn, r.dependencies) for urn, r in resources.items()}
    else:  # nothing to expand; each list has one URN per node, none its own
        deps = {urn: _urns(r.dependencies) for urn, r in resources.items()}
    return DesiredGraph(stack=ctx.stack, project=ctx.project, resources=resources,
                        deps=deps, components=components, exports=dict(ctx.exports),
                        stack_reads=ctx.stack_reads, leaves=Leaves(ctx.derived))


def _urns(nodes: list[Node]) -> list[str]:
    """Sized exactly: most resources wait for one other, and a desired graph of 50,000
    holds 50,000 of these lists until the update ends."""
    if len(nodes) == 1:
        return [nodes[0].urn]
    return [node.urn for node in nodes]


def _expanded(urn: str, nodes: list[Node]) -> list[str]:
    """The URNs of ``nodes``, each component's replaced by the resources inside it
    (which may include the resource ``urn`` itself: left out)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Component):
            out.extend(_expanded(urn, node.children))
        else:
            out.append(node.urn)
    return [dep for dep in dict.fromkeys(out) if dep != urn]
