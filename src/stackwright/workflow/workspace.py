"""Workspaces: the projects and stacks of one repository, their dependency graph, and
which stacks a change touches.

The workspace file itself is parsed by ``stackwright.program.workspace`` (the
operations layer needs it for ``StackReference``); this module adds what `stackwright
run` needs on top: the stack graph, checked for cycles, and selections — every stack,
or the stacks a git change affects plus everything that depends on them.

Dependencies are declared in the workspace file rather than discovered by running
every program: running 1,000 programs to find out that one changed is the slow part
this avoids. A program's ``StackReference`` is checked against the declaration when
it runs, so the declaration cannot silently go stale.
"""

from __future__ import annotations

import os
import subprocess
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackwright.dataclass_methods import Compared
from stackwright.errors import ProjectError
from stackwright.graph import CycleFound, Graph
from stackwright.plan.links import StackEdge
from stackwright.program.digest import CONFIG_DIR, CONFIG_SUFFIX, OUTPUT_DIR, skipped_folder
from stackwright.program.workspace import (
    WORKSPACE_FILE, ProjectEntry, StackEntry, Workspace, find_workspace, load_workspace,
    raw_projects, require_workspace,
)

__all__ = [
    "WORKSPACE_FILE", "ProjectEntry", "Selection", "StackEntry", "Workspace", "changed_files",
    "find_workspace", "load_workspace", "ordered", "require_workspace", "select_all",
    "select_changed", "stack_graph", "with_links",
]

PROGRAM_SUFFIXES = frozenset({".py", ".yaml", ".yml"})
MAX_REASONS = 3


@dataclass(init=False, repr=False, eq=False)
class Selection(Compared):
    """The stacks to run, dependencies first, each with why it was selected. Every `run`
    loads it: its methods are written, not generated (see stackwright.dataclass_methods);
    it behaves as the ``@dataclass`` it is declared."""

    reasons: dict[str, list[str]]
    total: int
    since: str | None = None
    notes: list[str] = field(default_factory=list)

    def __init__(self, reasons: dict[str, list[str]], total: int, since: str | None = None,
                 notes: list[str] | None = None) -> None:
        self.reasons = reasons
        self.total = total
        self.since = since
        self.notes = [] if notes is None else notes

    @property
    def refs(self) -> list[str]:
        return list(self.reasons)

    def __bool__(self) -> bool:
        return bool(self.reasons)


def stack_graph(workspace: Workspace) -> Graph[str]:
    """Every stack of the workspace with the stacks it depends on; a cycle is an error."""
    graph: Graph[str] = Graph()
    for stack in workspace.stacks():
        if stack.ref in graph.deps:
            raise ProjectError(f"stack {stack.ref} is listed twice", file=workspace.shown,
                               line=stack.line)
        graph.add(stack.ref, workspace.dependencies(stack))
    _check_acyclic(graph, workspace.shown)
    return graph


def with_links(graph: Graph[str], links: Iterable[StackEdge], shown: str) -> Graph[str]:
    """``graph`` (dependencies first) with each stack also depending on the stacks
    that export a name it imports, dependencies first again; a cycle is an error
    naming the stacks and, for each import on it, both resources (templates)."""
    deps = {ref: list(ds) for ref, ds in graph.deps.items()}
    edges = {(e.importer, e.exporter): e for e in links if e.importer in deps and e.exporter in deps}
    if not edges:
        return graph
    for importer, exporter in edges:
        if exporter not in deps[importer]:
            deps[importer].append(exporter)
    linked = Graph(deps)
    _check_acyclic(linked, shown, edges)
    return Graph({ref: linked.deps[ref] for ref in ordered(linked, linked.deps)})


def _check_acyclic(graph: Graph[str], shown: str,
                   edges: Mapping[tuple[str, str], StackEdge] | None = None) -> None:
    try:
        graph.topological_order()
    except CycleFound as exc:
        cycle = [str(v) for v in exc.cycle]
        imports = [edges[pair].explain() for pair in zip(cycle, cycle[1:]) if edges and pair in edges]
        raise ProjectError(
            "stacks depend on each other in a cycle: " + " -> ".join(cycle)
            + (f" ({'; '.join(imports)})" if imports else ""),
            file=shown,
            hint="each stack depends on the next; remove one of these depends_on entries"
            + (" or imports" if imports else ""),
        ) from None


def ordered(graph: Graph[str], refs: Iterable[str]) -> list[str]:
    """``refs`` dependencies first: by depth in the graph, then workspace order."""
    depth: dict[str, int] = {}
    for vertex in graph.topological_order():
        depth[vertex] = 1 + max((depth[d] for d in graph.deps.get(vertex, ())), default=0)
    position = {vertex: i for i, vertex in enumerate(graph.deps)}
    return sorted(refs, key=lambda r: (depth[r], position[r]))


def select_all(graph: Graph[str]) -> Selection:
    refs = ordered(graph, graph.deps)
    return Selection({ref: ["--all"] for ref in refs}, total=len(refs))


def select_changed(workspace: Workspace, graph: Graph[str], since: str) -> Selection:
    """The stacks whose program, config, imported shared code or workspace entry
    changed since the git ref ``since``, and every stack that depends on them."""
    files = changed_files(workspace.root, since)
    direct: dict[str, list[str]] = {}
    notes: list[str] = []
    _by_project_files(workspace, files, direct)
    if workspace.file in files:
        _by_workspace_file(workspace, since, direct, notes)
    python = [f for f in files if f.suffix == ".py"]
    if python:
        _by_imports(workspace, python, direct)
    reasons = _with_dependents(graph, direct)
    return Selection({ref: reasons[ref] for ref in ordered(graph, reasons)},
                     total=len(graph.deps), since=since, notes=notes)


def _by_project_files(workspace: Workspace, files: Iterable[Path],
                      direct: dict[str, list[str]]) -> None:
    """A stack file selects its stack; any other program file its project's stacks."""
    projects = sorted(workspace.projects, key=lambda e: len(e.root.parts), reverse=True)
    for path in files:
        entry = next((e for e in projects if path.is_relative_to(e.root)), None)
        if entry is None:
            continue
        parts = path.relative_to(entry.root).parts
        shown = _shown(workspace, path)
        if parts[0] == CONFIG_DIR and len(parts) == 2 and path.suffix == CONFIG_SUFFIX:
            stack = entry.stack(path.stem)
            if stack is not None:
                _add(direct, [stack.ref], f"config changed: {shown}")
        elif path.suffix in PROGRAM_SUFFIXES and not _skipped(parts):
            _add(direct, _refs(entry), f"program changed: {shown}")


def _skipped(parts: tuple[str, ...]) -> bool:
    """Not part of the program (``program.digest``): in a folder skipped by its name, or
    in the project's ``out/``."""
    return (len(parts) > 1 and parts[0] == OUTPUT_DIR) or any(skipped_folder(p) for p in parts[:-1])


def _by_workspace_file(workspace: Workspace, since: str, direct: dict[str, list[str]],
                       notes: list[str]) -> None:
    """Projects whose entry in the workspace file differs from the one at ``since``."""
    old_text = _old_version(workspace.file, since)
    if old_text is None:
        notes.append(f"{WORKSPACE_FILE} is new since {since}: every stack is selected")
        for entry in workspace.projects:
            _add(direct, _refs(entry), f"{WORKSPACE_FILE} added")
        return
    old_entries, old_python_path = raw_projects(old_text)
    python_path_changed = old_python_path != workspace.raw_python_path
    for entry in workspace.projects:
        if python_path_changed:
            _add(direct, _refs(entry), f"python_path changed in {WORKSPACE_FILE}")
        elif old_entries.get(entry.path) != entry.raw:
            _add(direct, _refs(entry), f"its entry in {WORKSPACE_FILE} changed")


def _by_imports(workspace: Workspace, python: list[Path], direct: dict[str, list[str]]) -> None:
    """Projects whose programs import (directly or not) a changed file outside them."""
    from stackwright.workflow.local_imports import imported_files  # only `--changed-since` reads programs

    changed = set(python)
    for entry in workspace.projects:
        hits = sorted(f for f in imported_files(entry.project, workspace.python_path) & changed
                      if not f.is_relative_to(entry.root))
        for path in hits:
            _add(direct, _refs(entry), f"imports {_shown(workspace, path)} (changed)")


def _with_dependents(graph: Graph[str], direct: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``direct`` plus every stack that depends on one of them, naming the nearest."""
    dependents = graph.dependents()
    reasons = {ref: list(why) for ref, why in direct.items()}
    queue = deque(direct)
    while queue:
        ref = queue.popleft()
        for dependent in dependents.get(ref, ()):
            if dependent not in reasons:
                reasons[dependent] = [f"depends on {ref}"]
                queue.append(dependent)
    return reasons


def _refs(entry: ProjectEntry) -> list[str]:
    return [stack.ref for stack in entry.stacks()]


def _add(direct: dict[str, list[str]], refs: Iterable[str], reason: str) -> None:
    for ref in refs:
        reasons = direct.setdefault(ref, [])
        if len(reasons) < MAX_REASONS:
            reasons.append(reason)
        elif len(reasons) == MAX_REASONS:
            reasons.append("and more")


def _shown(workspace: Workspace, path: Path) -> str:
    return os.path.relpath(path, workspace.root)


def changed_files(root: Path, since: str) -> list[Path]:
    """Files that differ between the git ref ``since`` and the working tree (committed
    or not, and untracked ones), as absolute paths."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    diff = _git(top, "diff", "--name-only", "--no-renames", "-z", since, "--")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
    names = {name for name in (diff + "\0" + untracked).split("\0") if name}
    return sorted(top / name for name in names)


def _old_version(path: Path, since: str) -> str | None:
    top = Path(_git(path.parent, "rev-parse", "--show-toplevel").strip()).resolve()
    try:
        return _git(top, "show", f"{since}:{path.relative_to(top).as_posix()}")
    except ProjectError:
        return None


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ProjectError(f"cannot run git: {exc}", hint="--changed-since needs git") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise ProjectError(
            f"`git {' '.join(a for a in args if a not in ('-z', '--'))}` failed in {cwd}: {detail}",
            hint="--changed-since needs a git repository and a ref it knows (in CI, fetch "
            "enough history, e.g. fetch-depth: 0)")
    return done.stdout
