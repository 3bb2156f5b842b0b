"""Digests of a project's program and a stack's config: what saved plans pin and what
the staging gate compares. Config is separate so that staging and production (same
program, different config) can be compared."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from stackwright.program.project import PROJECT_FILE, Project

SKIPPED_DIRS = frozenset({".stackwright", ".git", ".venv", "venv", "__pycache__", "node_modules", "out", "stacks"})


def program_files(project: Project) -> list[Path]:
    """The project file and every Python file of the program (policies included)."""
    files = sorted(_python_files(project.root))
    return [project.root / PROJECT_FILE, *files]


def _python_files(folder: Path) -> Iterator[Path]:
    for entry in folder.iterdir():
        if entry.is_dir():
            if entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
                yield from _python_files(entry)
        elif entry.suffix == ".py":
            yield entry


def digest_files(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def program_digest(project: Project) -> str:
    return digest_files(project.root, program_files(project))


def config_digest(project: Project, stack: str) -> str:
    path = project.stack_file(stack)
    return hashlib.sha256(path.read_bytes() if path.exists() else b"").hexdigest()
