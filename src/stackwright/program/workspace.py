"""The workspace file, ``stackwright-workspace.yaml``: a repository's projects, their
stacks, and which stacks each stack depends on.

    python_path: [lib]               # optional: shared code, on sys.path for every program
    projects:
      - path: network
        stacks: [staging, production]
      - path: cluster
        depends_on: ["network/{stack}"]   # every stack: the network stack of its name
        stacks:
          - staging
          - {name: production, depends_on: [network/production]}
      - path: tenants
        stacks: "*"                  # every stacks/*.yaml
        depends_on: [network/production, cluster/production]

It is loaded here, beside ``project.py``, and not in the workflow layer, because the
operations layer needs it too (a ``StackReference`` opens another project's state
store) and may not import the workflow layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwright.dataclass_methods import Compared, FrozenCompared, frozen_record
from stackwright.errors import ProjectError
from stackwright.program.project import NAME, NAME_HINT, PROJECT_FILE, Project, load_project
from stackwright.program.project_files import (
    WORKSPACE_SCHEMA, Loc, check, is_project_file, line_index, parse_yaml, read_project_file, records_folder,
    shown_path,
)

WORKSPACE_FILE = "stackwright-workspace.yaml"
ALL_STACKS = "*"
STACK_PLACEHOLDER = "{stack}"
_FORMAT_HINT = ("projects: [{path: network, stacks: [staging, production]}, "
                "{path: tenants, stacks: \"*\", depends_on: [network/production]}]")


# Every `run` loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as the ``@dataclass`` they are declared.


@frozen_record
class Dependency(FrozenCompared):
    """One ``depends_on`` entry as written, with its line for error messages."""

    text: str
    line: int

    def __init__(self, text: str, line: int) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "line", line)


@frozen_record
class StackEntry(FrozenCompared):
    """A stack of the workspace and the dependencies declared for it alone."""

    project: str
    name: str
    line: int
    depends_on: tuple[Dependency, ...] = ()

    def __init__(self, project: str, name: str, line: int, depends_on: tuple[Dependency, ...] = ()) -> None:
        object.__setattr__(self, "project", project)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "depends_on", depends_on)

    @property
    def ref(self) -> str:
        """``project/stack``: how the stack is named everywhere in a workspace."""
        return f"{self.project}/{self.name}"


@dataclass(init=False, repr=False, eq=False)
class ProjectEntry(Compared):
    """A project of the workspace. ``listed`` is None for ``stacks: "*"``."""

    project: Project
    path: str
    line: int
    listed: tuple[StackEntry, ...] | None
    depends_on: tuple[Dependency, ...]
    raw: Any
    """The entry as plain data: compared with an older version to tell a change."""

    def __init__(self, project: Project, path: str, line: int, listed: tuple[StackEntry, ...] | None,
                 depends_on: tuple[Dependency, ...], raw: Any) -> None:
        self.project = project
        self.path = path
        self.line = line
        self.listed = listed
        self.depends_on = depends_on
        self.raw = raw

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def root(self) -> Path:
        return self.project.root

    def stacks(self) -> list[StackEntry]:
        """The listed stacks, or one per ``stacks/*.yaml`` for ``"*"``."""
        if self.listed is not None:
            return list(self.listed)
        return [StackEntry(self.name, name, self.line) for name in self.project.stack_files()]

    def stack(self, name: str) -> StackEntry | None:
        """One stack without listing a ``"*"`` folder (cheap for thousands of stacks)."""
        if self.listed is not None:
            return next((s for s in self.listed if s.name == name), None)
        if self.project.stack_file(name).is_file():
            return StackEntry(self.name, name, self.line)
        return None


@dataclass(init=False, repr=False, eq=False)
class Workspace(Compared):
    """The workspace file as loaded: its projects, in the order written."""

    file: Path
    projects: list[ProjectEntry]
    python_path: tuple[Path, ...] = ()
    raw_python_path: Any = None

    def __init__(self, file: Path, projects: list[ProjectEntry], python_path: tuple[Path, ...] = (),
                 raw_python_path: Any = None) -> None:
        self.file = file
        self.projects = projects
        self.python_path = python_path
        self.raw_python_path = raw_python_path

    @property
    def root(self) -> Path:
        return self.file.parent

    @property
    def shown(self) -> str:
        return shown_path(self.file)

    def project(self, key: str) -> ProjectEntry | None:
        """A project by its name (``name:`` in its ``stackwright.yaml``) or its path."""
        for entry in self.projects:
            if entry.name == key:
                return entry
        wanted = key.strip("/")
        return next((e for e in self.projects if e.path.strip("/") == wanted), None)

    def project_at(self, folder: Path) -> ProjectEntry | None:
        resolved = folder.resolve()
        return next((e for e in self.projects if e.root.resolve() == resolved), None)

    def stacks(self) -> list[StackEntry]:
        return [stack for entry in self.projects for stack in entry.stacks()]

    def stack(self, ref: str) -> StackEntry | None:
        project_key, _, name = ref.rpartition("/")
        entry = self.project(project_key)
        return entry.stack(name) if entry is not None else None

    def dependencies(self, stack: StackEntry) -> list[str]:
        """The ``project/stack`` names ``stack`` depends on: its project's entries,
        then its own, each checked to name a stack of the workspace."""
        entry = self.project(stack.project)
        inherited = entry.depends_on if entry is not None else ()
        out = [self._resolve(stack, dep) for dep in (*inherited, *stack.depends_on)]
        return list(dict.fromkeys(out))

    def _resolve(self, stack: StackEntry, dep: Dependency) -> str:
        text = dep.text.replace(STACK_PLACEHOLDER, stack.name)
        project_key, _, name = text.rpartition("/")
        target = self.project(project_key or stack.project)
        if target is None:
            raise ProjectError(
                f"{stack.ref} depends on {text!r}, but the workspace has no project {project_key!r}",
                file=self.shown, line=dep.line,
                hint="name a stack as project/stack, where project is a project's name or path")
        found = target.stack(name)
        if found is None:
            raise ProjectError(
                f"{stack.ref} depends on {text!r}, but project {target.name!r} has no stack {name!r}",
                file=self.shown, line=dep.line, hint=_missing_stack_hint(target, name))
        if found.ref == stack.ref:
            raise ProjectError(f"{stack.ref} depends on itself", file=self.shown, line=dep.line)
        return found.ref


def _missing_stack_hint(target: ProjectEntry, name: str) -> str:
    """What makes ``name`` a stack of ``target``: its stack file, listing it, or both."""
    file = f"{target.path}/stacks/{name}.yaml"
    if target.listed is None:
        return f"create {file}"
    line = target.listed[0].line if target.listed else target.line
    listing = f"add {name!r} to the `stacks:` of project {target.path!r} (line {line})"
    return listing if target.project.stack_file(name).is_file() else f"create {file} and {listing}"


def find_workspace(start: Path | None = None) -> Workspace | None:
    """The workspace whose file is in ``start`` or one of its parents, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_project_file(folder / WORKSPACE_FILE, "the workspace file"):
            return load_workspace(folder / WORKSPACE_FILE)
    return None


def require_workspace(start: Path | None = None) -> Workspace:
    workspace = find_workspace(start)
    if workspace is None:
        raise ProjectError(
            f"no {WORKSPACE_FILE} in {(start or Path.cwd()).resolve()} or any parent folder",
            hint=f"create one at the repository root listing the projects: {_FORMAT_HINT}")
    return workspace


def load_workspace(path: Path, text: str | None = None) -> Workspace:
    """Parse and check the workspace file; every error names the file and line."""
    shown = shown_path(path)
    content = read_project_file(path, shown, "the workspace file") if text is None else text.encode()
    data = parse_yaml(content, shown)
    if data is None:
        raise ProjectError("the workspace file is empty", file=shown, hint=_FORMAT_HINT)
    if not isinstance(data, dict):
        raise ProjectError("the workspace file must be a mapping", file=shown, line=1, hint=_FORMAT_HINT)
    folder = path.resolve().parent
    check(data, content, shown, WORKSPACE_SCHEMA, records_folder(folder))
    lines = line_index(content)
    projects = [_project(folder, shown, lines, i, item) for i, item in enumerate(data["projects"])]
    _check_unique(shown, projects)
    python_path = _python_path(folder, shown, lines, data.get("python_path", []))
    return Workspace(file=path.resolve(), projects=projects, python_path=python_path,
                     raw_python_path=data.get("python_path"))


def raw_projects(text: str) -> tuple[dict[str, Any], Any]:
    """An (older) workspace file's project entries by path, and its python_path, as
    plain data: enough to tell which entries changed without loading the projects."""
    try:
        data = parse_yaml(text, WORKSPACE_FILE)
    except ProjectError:
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    projects = data.get("projects")
    entries: list[Any] = projects if isinstance(projects, list) else []
    by_path = {str(e.get("path")).strip("/"): e for e in entries if isinstance(e, dict)}
    return by_path, data.get("python_path")


def _project(folder: Path, shown: str, lines: dict[Loc, int], index: int,
             item: dict[str, Any]) -> ProjectEntry:
    """One checked ``projects:`` entry, with its project loaded."""
    where: Loc = ("projects", index)
    path = item["path"].strip()
    root = (folder / path).resolve()
    try:
        found = is_project_file(root / PROJECT_FILE, "the project file")
        project = load_project(root) if found else None
    except ProjectError as exc:
        raise ProjectError(f"project {path!r}: {exc.headline()}", file=shown,
                           line=lines[(*where, "path")], hint=exc.hint) from None
    if project is None:
        raise ProjectError(f"project path {path!r} has no {PROJECT_FILE}", file=shown,
                           line=lines[(*where, "path")],
                           hint="paths are relative to the workspace file's folder")
    depends = _dependencies(lines, (*where, "depends_on"), item.get("depends_on", []))
    listed = _stacks(shown, lines, project.name, (*where, "stacks"), item.get("stacks"))
    return ProjectEntry(project=project, path=path.strip("/"), line=lines[where],
                        listed=listed, depends_on=depends, raw=item)


def _stacks(shown: str, lines: dict[Loc, int], project: str, where: Loc,
            stacks: Any) -> tuple[StackEntry, ...] | None:
    if stacks is None or stacks == ALL_STACKS:
        return None
    out: list[StackEntry] = []
    for i, item in enumerate(stacks):
        name = item
        depends: tuple[Dependency, ...] = ()
        if isinstance(item, dict):
            name = item["name"]
            depends = _dependencies(lines, (*where, i, "depends_on"), item.get("depends_on", []))
        if not NAME.match(name.strip()):
            raise ProjectError(f"invalid stack name {name!r}", file=shown, line=lines[(*where, i)],
                               hint=NAME_HINT)
        out.append(StackEntry(project, name.strip(), lines[(*where, i)], depends))
    return tuple(out)


def _dependencies(lines: dict[Loc, int], where: Loc, items: list[str]) -> tuple[Dependency, ...]:
    return tuple(Dependency(text.strip(), lines[(*where, i)]) for i, text in enumerate(items))


def _python_path(folder: Path, shown: str, lines: dict[Loc, int], items: list[str]) -> tuple[Path, ...]:
    out = []
    for i, item in enumerate(items):
        resolved = (folder / item.strip()).resolve()
        if not resolved.is_dir():
            raise ProjectError(f"python_path folder {item!r} does not exist", file=shown,
                               line=lines[("python_path", i)])
        out.append(resolved)
    return tuple(out)


def _check_unique(shown: str, projects: Iterable[ProjectEntry]) -> None:
    seen: dict[str, ProjectEntry] = {}
    for entry in projects:
        for key in {entry.name, entry.path}:
            if key in seen and seen[key] is not entry:
                raise ProjectError(
                    f"two projects are both named {key!r} (lines {seen[key].line} and {entry.line})",
                    file=shown, line=entry.line,
                    hint="a project is named by its `name:` or its path; make them unique")
            seen[key] = entry
