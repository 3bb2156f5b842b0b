"""Projects and stacks on disk: ``stackwright.yaml`` and ``stacks/<stack>.yaml``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackwright.errors import ProjectError
from stackwright.model.context import ConfigSource

PROJECT_FILE = "stackwright.yaml"
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass
class Project:
    root: Path
    name: str
    main: str = "__main__.py"
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

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
        if (folder / PROJECT_FILE).is_file():
            return load_project(folder)
    raise ProjectError(
        f"no {PROJECT_FILE} in {here} or any parent folder",
        hint="run `stackwright new DIR` to make a project, or cd into one",
    )


def load_project(root: Path) -> Project:
    path = root / PROJECT_FILE
    data = _load_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise ProjectError("the project file needs a `name:`", file=str(path),
                           hint="name: my-project\nmain: __main__.py")
    main = data.get("main", "__main__.py")
    if not (root / main).is_file():
        raise ProjectError(f"the program entry {main!r} does not exist", file=str(path),
                           hint="set `main:` to your program's file")
    return Project(root=root, name=data["name"], main=main,
                   description=str(data.get("description", "")), settings=data)


def check_stack_name(name: str) -> str:
    if not STACK_NAME.match(name):
        raise ProjectError(
            f"invalid stack name {name!r}",
            hint="use lower-case letters, digits, '.', '_' and '-' (e.g. dev, staging, dev-alex)",
        )
    return name


def load_stack_config(project: Project, stack: str) -> ConfigSource:
    """The stack's ``config:`` section with the line of every key, for error messages."""
    path = project.stack_file(stack)
    shown = project.relative(path)
    if not path.exists():
        return ConfigSource(data={}, file=shown)
    data, lines = _load_yaml_with_lines(path)
    if data is None:
        return ConfigSource(data={}, file=shown)
    if not isinstance(data, Mapping):
        raise ProjectError("a stack file must be a mapping with a `config:` key", file=shown)
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise ProjectError("`config:` must be a mapping", file=shown, line=lines.get("config"))
    return ConfigSource(data=config, file=shown,
                        lines={k[len("config."):]: v for k, v in lines.items() if k.startswith("config.")})


_settings: dict[tuple[str, int, int], Any] = {}


def stack_settings(project: Project, stack: str) -> Mapping[str, Any]:
    """The stack file's settings other than config (environment, policies...), read-only.
    Parsed once per content: a stack file listing 1,000 tenants is asked for its
    environment, its policies and more in one command."""
    path = project.stack_file(stack)
    if not path.exists():
        return {}
    status = path.stat()
    key = (str(path.resolve()), status.st_mtime_ns, status.st_size)
    if key not in _settings:
        _settings[key] = _load_yaml(path)
    data = _settings[key]
    return data if isinstance(data, Mapping) else {}


def _load_yaml(path: Path) -> Any:
    """The file's data; parsed once per content (a stack's file is read by several
    checks of one command, and by every stack of a run), a fresh copy each time."""
    import copy

    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        if text not in _PARSED:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[text] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return copy.deepcopy(_PARSED[text])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProjectError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                           line=mark.line + 1 if mark else None) from None


_PARSED: dict[str, Any] = {}
_PARSED_MAX = 1024


def _load_yaml_with_lines(path: Path) -> tuple[Any, dict[str, int]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        parser = loader(path.read_text(encoding="utf-8"))
        try:
            node = parser.get_single_node()
            data = parser.construct_document(node) if node is not None else None
        finally:
            parser.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProjectError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                           line=mark.line + 1 if mark else None) from None
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines)
    return data, lines


def _collect_lines(node: Any, prefix: str, lines: dict[str, int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            lines[path] = key.start_mark.line + 1
            _collect_lines(value, path, lines)


def current_stack_file(project: Project) -> Path:
    return project.state_dir / "current-stack"


def selected_stack(project: Project, explicit: str | None) -> str:
    """``--stack``, else ``STACKWRIGHT_STACK``, else the one chosen with `stack select`."""
    name = explicit or os.environ.get("STACKWRIGHT_STACK")
    if name:
        return check_stack_name(name)
    marker = current_stack_file(project)
    if marker.exists():
        return marker.read_text().strip()
    raise ProjectError("no stack selected",
                       hint="pass --stack NAME, or run `stackwright stack select NAME`")


def select_stack(project: Project, stack: str) -> None:
    project.state_dir.mkdir(parents=True, exist_ok=True)
    current_stack_file(project).write_text(stack + "\n")
