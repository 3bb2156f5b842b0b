"""Which local Python files a project's program imports, found by reading the
``import`` statements (``ast``) rather than by running the program.

Running programs to record their imports would cost a program run per project on every
`run --changed-since`; parsing a project's few files costs milliseconds. Imports are
resolved the way the program runner sets ``sys.path``: the project's folder first,
then the workspace's ``python_path`` folders. Imports inside functions and ``try``
blocks count too (better one stack too many than one too few); modules loaded by
``importlib`` with computed names are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path

from stackwright.program.digest import program_files
from stackwright.program.project import Project


def imported_files(project: Project, python_path: Sequence[Path]) -> set[Path]:
    """The program's own Python files and every local file they import, transitively."""
    roots = [project.root.resolve(), *python_path]
    todo = [p.resolve() for p in program_files(project) if p.suffix == ".py"]
    seen = set(todo)
    while todo:
        for found in _imports_of(todo.pop(), roots):
            if found not in seen:
                seen.add(found)
                todo.append(found)
    return seen


def _imports_of(file: Path, roots: Sequence[Path]) -> Iterator[Path]:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from module_files(alias.name, roots)
        elif isinstance(node, ast.ImportFrom):
            yield from _from_import(file, node, roots)


def _from_import(file: Path, node: ast.ImportFrom, roots: Sequence[Path]) -> Iterator[Path]:
    """``from a.b import c``: module ``a.b``, and ``a.b.c`` when ``c`` is a submodule."""
    bases = roots if node.level == 0 else [_package_folder(file, node.level)]
    module = node.module or ""
    if module:
        yield from module_files(module, bases)
    for alias in node.names:
        if alias.name != "*":
            yield from module_files(f"{module}.{alias.name}" if module else alias.name, bases)


def _package_folder(file: Path, level: int) -> Path:
    folder = file.parent
    for _ in range(level - 1):
        folder = folder.parent
    return folder


def module_files(name: str, roots: Sequence[Path]) -> list[Path]:
    """The files importing ``name`` runs (packages' ``__init__.py`` included), from the
    first root that has its top-level package, as Python's import system would."""
    parts = name.split(".")
    for root in roots:
        if (root / f"{parts[0]}.py").is_file() or (root / parts[0]).is_dir():
            return list(_files_along(root, parts))
    return []


def _files_along(root: Path, parts: list[str]) -> Iterator[Path]:
    folder = root
    for part in parts:
        package, module = folder / part, folder / f"{part}.py"
        if (package / "__init__.py").is_file():
            yield package / "__init__.py"
            folder = package
        elif module.is_file():
            yield module
            return
        elif package.is_dir():
            folder = package
        else:
            return
