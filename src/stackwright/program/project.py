"""Projects and stacks on disk: ``stackwright.yaml`` and ``stacks/<stack>.yaml``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackwright.dataclass_methods import Compared
from stackwright.errors import ProjectError
from stackwright.model.context import ConfigSource
from stackwright.program.project_files import (
    PROJECT_SCHEMA, STACK_SCHEMA, is_project_file, line_index, line_of, read_checked, read_project_file, records_folder,
    shown_path, unreadable,
)

PROJECT_FILE = "stackwright.yaml"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
"""What a stack's or a project's name may be: both go into URNs (``stack::project::...``),
``project/stack`` references, file names and the state's keys."""
NAME_HINT = "use lower-case letters, digits, '.', '_' and '-'"


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared.


@dataclass(init=False, repr=False, eq=False)
class Project(Compared):
    """A project: its folder, its name, its program's file and its project-file settings."""

    root: Path
    name: str
    main: str = "__main__.py"
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, root: Path, name: str, main: str = "__main__.py", description: str = "",
                 settings: Mapping[str, Any] | None = None) -> None:
        self.root = root
        self.name = name
        self.main = main
        self.description = description
        self.settings = {} if settings is None else settings

    @property
    def state_dir(self) -> Path:
        return self.root / ".stackwright"

    @property
    def main_path(self) -> Path:
        return self.root / self.main

    def stack_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"{stack}.yaml"

    def stack_files(self) -> list[str]:
        folder = self.root / "stacks"
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    def relative(self, path: Path | str) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def find_project(start: Path | None = None) -> Project:
    """The project whose ``stackwright.yaml`` is in ``start`` or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_project_file(folder / PROJECT_FILE, "the project file"):
            return load_project(folder)
    raise ProjectError(
        f"no {PROJECT_FILE} in {here} or any parent folder",
        hint="run `stackwright new DIR` to make a project, or cd into one",
    )


def load_project(root: Path) -> Project:
    path = root / PROJECT_FILE
    shown = shown_path(path)
    data = read_checked(path, shown, PROJECT_SCHEMA, "the project file", records_folder(root))
    main = data.get("main", "__main__.py")
    if not (root / main).is_file():
        raise ProjectError(f"the program entry {main!r} does not exist", file=shown,
                           line=line_of(path.read_bytes(), ("main",)),
                           hint="set `main:` to your program's file")
    return Project(root=root, name=data["name"], main=main,
                   description=data.get("description", ""), settings=data)


def check_stack_name(name: str) -> str:
    if not NAME.match(name):
        raise ProjectError(f"invalid stack name {name!r}", hint=f"{NAME_HINT} (e.g. dev, staging, dev-alex)")
    return name


def check_project_name(name: str) -> str:
    """The rule of stack names: a project's name is part of every URN and reference."""
    if not NAME.match(name):
        raise ProjectError(f"invalid project name {name!r}",
                           hint=f"{NAME_HINT} (e.g. shop, billing-api); `stackwright new DIR --name NAME` "
                           "names the project apart from its folder")
    return name


def load_stack_config(project: Project, stack: str) -> ConfigSource:
    """The stack's ``config:`` section with the line of every key, for error messages."""
    path = project.stack_file(stack)
    shown = project.relative(path)
    config = stack_settings(project, stack).get("config") or {}
    if not config:
        return ConfigSource(data={}, file=shown)
    return ConfigSource(data=config, file=shown, lines=ConfigLines(path))


class ConfigLines(Mapping[str, int]):
    """The line of every ``config:`` key (``a.b`` for nested ones), found when an error
    first asks for one: finding them means parsing the file again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: dict[str, int] | None = None

    def _found(self) -> dict[str, int]:
        if self._lines is None:
            found = line_index(self.path.read_bytes())
            self._lines = {".".join(map(str, loc[1:])): line for loc, line in found.items()
                           if len(loc) > 1 and loc[0] == "config"}
        return self._lines

    def __getitem__(self, key: str) -> int:
        return self._found()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())


def stack_settings(project: Project, stack: str) -> Mapping[str, Any]:
    """The stack file, checked: ``config:`` and the settings Stackwright reads
    (environment, secrets). A stack without a file has none."""
    path = project.stack_file(stack)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise unreadable(exc, project.relative(path), "a stack file") from exc
    key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    cached = _STACK_FILES.get(key)
    if cached is None:
        cached = read_checked(path, project.relative(path), STACK_SCHEMA, "a stack file",
                              records_folder(project.root))
        _STACK_FILES[key] = cached
    return cached


_STACK_FILES: dict[tuple[str, int, int, int], dict[str, Any]] = {}
"""Stack files read in this process, by path and stat: several layers read the same file
in one command, and a file edited since (``config set``) is read again."""


def current_stack_file(project: Project) -> Path:
    return project.state_dir / "current-stack"


def selected_stack(project: Project, explicit: str | None) -> str:
    """``--stack``, else ``STACKWRIGHT_STACK``, else the one chosen with `stack select`."""
    name = explicit or os.environ.get("STACKWRIGHT_STACK")
    if name:
        return check_stack_name(name)
    marker = current_stack_file(project)
    shown = project.relative(marker)
    if is_project_file(marker, "the selected stack's name", shown):
        return read_project_file(marker, shown, "the selected stack's name").decode(errors="replace").strip()
    raise ProjectError("no stack selected",
                       hint="pass --stack NAME, or run `stackwright stack select NAME`")


def select_stack(project: Project, stack: str) -> None:
    project.state_dir.mkdir(parents=True, exist_ok=True)
    current_stack_file(project).write_text(stack + "\n")
