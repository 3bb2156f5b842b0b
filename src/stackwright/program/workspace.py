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

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwright.errors import ProjectError
from stackwright.program.project import PROJECT_FILE, STACK_NAME, Project, load_project

WORKSPACE_FILE = "stackwright-workspace.yaml"
ALL_STACKS = "*"
STACK_PLACEHOLDER = "{stack}"
_TOP_KEYS = frozenset({"projects", "python_path"})
_PROJECT_KEYS = frozenset({"path", "stacks", "depends_on"})
_STACK_KEYS = frozenset({"name", "depends_on"})
_FORMAT_HINT = ("projects: [{path: network, stacks: [staging, production]}, "
                "{path: tenants, stacks: \"*\", depends_on: [network/production]}]")


@dataclass(frozen=True)
class Dependency:
    """One ``depends_on`` entry as written, with its line for error messages."""

    text: str
    line: int


@dataclass(frozen=True)
class StackEntry:
    """A stack of the workspace and the dependencies declared for it alone."""

    project: str
    name: str
    line: int
    depends_on: tuple[Dependency, ...] = ()

    @property
    def ref(self) -> str:
        """``project/stack``: how the stack is named everywhere in a workspace."""
        return f"{self.project}/{self.name}"


@dataclass
class ProjectEntry:
    """A project of the workspace. ``listed`` is None for ``stacks: "*"``."""

    project: Project
    path: str
    line: int
    listed: tuple[StackEntry, ...] | None
    depends_on: tuple[Dependency, ...]
    raw: Any
    """The entry as plain data: compared with an older version to tell a change."""

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


@dataclass
class Workspace:
    file: Path
    projects: list[ProjectEntry]
    python_path: tuple[Path, ...] = ()
    raw_python_path: Any = None

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
                file=self.shown, line=dep.line,
                hint=f"list it under the project's `stacks:` or add {target.path}/stacks/{name}.yaml")
        if found.ref == stack.ref:
            raise ProjectError(f"{stack.ref} depends on itself", file=self.shown, line=dep.line)
        return found.ref


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def find_workspace(start: Path | None = None) -> Workspace | None:
    """The workspace whose file is in ``start`` or one of its parents, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_FILE).is_file():
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
    reader = _Reader(path)
    node = reader.compose(path.read_text(encoding="utf-8") if text is None else text)
    top = reader.mapping(node, "the workspace file", _TOP_KEYS)
    if "projects" not in top:
        raise reader.error("the workspace file needs a `projects:` list", node, _FORMAT_HINT)
    projects = [_project(reader, item) for item in reader.sequence(top["projects"], "`projects:`")]
    _check_unique(reader, projects)
    python_path = _python_path(reader, top.get("python_path"))
    return Workspace(file=path.resolve(), projects=projects, python_path=python_path,
                     raw_python_path=reader.plain(top.get("python_path")))


def raw_projects(text: str) -> tuple[dict[str, Any], Any]:
    """An (older) workspace file's project entries by path, and its python_path, as
    plain data: enough to tell which entries changed without loading the projects."""
    reader = _Reader(Path(WORKSPACE_FILE))
    try:
        data = reader.plain(reader.compose(text))
    except ProjectError:
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    projects = data.get("projects")
    entries: list[Any] = projects if isinstance(projects, list) else []
    by_path = {str(e.get("path")).strip("/"): e for e in entries if isinstance(e, dict)}
    return by_path, data.get("python_path")


def _project(reader: _Reader, node: Any) -> ProjectEntry:
    fields = reader.mapping(node, "a project entry", _PROJECT_KEYS)
    if "path" not in fields:
        raise reader.error("a project entry needs `path:` (its folder, relative to this file)",
                           node, _FORMAT_HINT)
    path = reader.scalar(fields["path"], "`path:`")
    root = (reader.file.parent / path).resolve()
    if not (root / PROJECT_FILE).is_file():
        raise reader.error(f"project path {path!r} has no {PROJECT_FILE}", fields["path"],
                           "paths are relative to the workspace file's folder")
    try:
        project = load_project(root)
    except ProjectError as exc:
        raise reader.error(f"project {path!r}: {exc.headline()}", fields["path"]) from None
    depends = _dependencies(reader, fields.get("depends_on"))
    listed = _stacks(reader, project.name, fields.get("stacks"))
    return ProjectEntry(project=project, path=path.strip("/"), line=reader.line(node),
                        listed=listed, depends_on=depends, raw=reader.plain(node))


def _stacks(reader: _Reader, project: str, node: Any) -> tuple[StackEntry, ...] | None:
    if node is None or (reader.is_scalar(node) and node.value == ALL_STACKS):
        return None
    out: list[StackEntry] = []
    for item in reader.sequence(node, "`stacks:` (a list, or \"*\" for every stacks/*.yaml)"):
        depends: tuple[Dependency, ...] = ()
        if reader.is_scalar(item):
            name = reader.scalar(item, "a stack name")
        else:
            fields = reader.mapping(item, "a stack entry", _STACK_KEYS)
            if "name" not in fields:
                raise reader.error("a stack entry needs `name:`", item)
            name = reader.scalar(fields["name"], "`name:`")
            depends = _dependencies(reader, fields.get("depends_on"))
        if not STACK_NAME.match(name):
            raise reader.error(f"invalid stack name {name!r}", item,
                               "use lower-case letters, digits, '.', '_' and '-'")
        out.append(StackEntry(project, name, reader.line(item), depends))
    return tuple(out)


def _dependencies(reader: _Reader, node: Any) -> tuple[Dependency, ...]:
    if node is None:
        return ()
    items = reader.sequence(node, "`depends_on:` (a list of project/stack names)")
    return tuple(Dependency(reader.scalar(i, "a dependency"), reader.line(i)) for i in items)


def _python_path(reader: _Reader, node: Any) -> tuple[Path, ...]:
    if node is None:
        return ()
    out = []
    for item in reader.sequence(node, "`python_path:` (a list of folders)"):
        folder = (reader.file.parent / reader.scalar(item, "a folder")).resolve()
        if not folder.is_dir():
            raise reader.error(f"python_path folder {item.value!r} does not exist", item)
        out.append(folder)
    return tuple(out)


def _check_unique(reader: _Reader, projects: Iterable[ProjectEntry]) -> None:
    seen: dict[str, ProjectEntry] = {}
    for entry in projects:
        for key in {entry.name, entry.path}:
            if key in seen and seen[key] is not entry:
                raise reader.error_at(
                    f"two projects are both named {key!r} (lines {seen[key].line} and {entry.line})",
                    entry.line, "a project is named by its `name:` or its path; make them unique")
            seen[key] = entry


class _Reader:
    """Walks the composed YAML nodes, so that every error can name its line."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def error(self, message: str, node: Any, hint: str | None = None) -> ProjectError:
        return self.error_at(message, self.line(node), hint)

    def error_at(self, message: str, line: int | None, hint: str | None = None) -> ProjectError:
        return ProjectError(message, file=shown_path(self.file), line=line, hint=hint)

    @staticmethod
    def line(node: Any) -> int:
        return int(node.start_mark.line) + 1

    def compose(self, text: str) -> Any:
        import yaml

        try:
            node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise self.error_at(f"invalid YAML: {getattr(exc, 'problem', exc)}",
                                mark.line + 1 if mark else None) from None
        if node is None:
            raise self.error_at("the workspace file is empty", None, _FORMAT_HINT)
        return node

    @staticmethod
    def is_scalar(node: Any) -> bool:
        import yaml

        return isinstance(node, yaml.ScalarNode)

    def mapping(self, node: Any, what: str, allowed: frozenset[str]) -> dict[str, Any]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping", node, _FORMAT_HINT)
        out: dict[str, Any] = {}
        for key, value in node.value:
            if key.value not in allowed:
                raise self.error(f"unknown key {key.value!r} in {what}", key,
                                 f"known keys: {', '.join(sorted(allowed))}")
            out[key.value] = value
        return out

    def sequence(self, node: Any, what: str) -> list[Any]:
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"{what} must be a list", node, _FORMAT_HINT)
        return list(node.value)

    def scalar(self, node: Any, what: str) -> str:
        if not self.is_scalar(node) or not str(node.value).strip():
            raise self.error(f"{what} must be a non-empty string", node)
        return str(node.value).strip()

    def plain(self, node: Any) -> Any:
        """The node as plain data (strings, lists, dicts)."""
        if node is None:
            return None
        import yaml

        if isinstance(node, yaml.ScalarNode):
            return node.value
        if isinstance(node, yaml.MappingNode):
            return {str(k.value): self.plain(v) for k, v in node.value}
        return [self.plain(v) for v in node.value]
