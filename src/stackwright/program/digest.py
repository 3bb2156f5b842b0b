"""Digests of a project's program and a stack's config: what saved plans pin and what
the staging gate compares. Config is separate so that staging and production (same
program, different config) can be compared.

The program digest covers what lives with the code and the program may read when it
runs, at plan time or at apply time (a value left ``(known after apply)`` is computed
by the program then): ``stackwright.yaml`` and every file under the project folder,
Python or not (templates, values files, charts), and every file under the workspace's
``python_path`` folders (shared code, and the data beside it), except:

- folders named in ``SKIPPED_DIRS`` and every dot-folder: the state folder
  (``.stackwright``), version control, virtual environments, caches, ``out`` (where
  programs write their files: covering it would make every apply change the program)
  and ``stacks`` (``stacks/<stack>.yaml`` is the config digest, kept apart so that one
  program compares equal across stacks);
- dot-files (editor swap files, ``.DS_Store``, temporary files of atomic writes);
- ``allowed_signers``, the root of trust, checked on its own at apply time (adding an
  approver's key must not void the plans waiting for that approver);
- saved plans (``plan --out`` files, recognised by their first lines), which are
  written into the project folder after the digest is taken.

Each file counts by its path relative to the project folder and the SHA-256 of its
bytes, so the digest is the same wherever the repository is checked out and a file
cannot be moved or split without changing it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from stackwright.program.project import PROJECT_FILE, Project

SKIPPED_DIRS = frozenset({".stackwright", ".git", ".venv", "venv", "__pycache__", "node_modules", "out", "stacks"})
SKIPPED_FILES = frozenset({"allowed_signers"})
"""``workflow.signing.SIGNERS_FILE``: trust, not program."""
WORKSPACE_FILE = "stackwright-workspace.yaml"
"""``program.workspace.WORKSPACE_FILE``, named here so that a project outside any
workspace never loads that module (a test pins the two equal)."""

_PLAN_FILE_HEAD = b"{\n"
_PLAN_FILE_MARK = b'\n  "format": "stackwright-plan",\n'
"""How every saved plan starts: ``workflow.plan_file.render`` writes sorted keys, and
only a few short ones come before ``format``."""
_HEAD_BYTES = 4096
_CHUNK = 1 << 20


class ProgramDigest:
    """The program's digest and, per file, the SHA-256 it was made from (by path
    relative to the project folder), to tell which files changed."""

    __slots__ = ("digest", "files")

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(sorted(files.items()))
        digest = hashlib.sha256()
        for label, sha in self.files.items():
            digest.update(label.encode() + b"\0" + sha.encode() + b"\n")
        self.digest = digest.hexdigest()

    def changes(self, before: Mapping[str, str]) -> list[str]:
        """What differs from ``before`` (another ``files``), one entry per file, in
        path order: ``"path changed"``, ``"path added"`` or ``"path removed"``."""
        out = []
        for label in sorted(set(before) | set(self.files)):
            if label not in before:
                out.append(f"{label} added")
            elif label not in self.files:
                out.append(f"{label} removed")
            elif before[label] != self.files[label]:
                out.append(f"{label} changed")
        return out


def program_files(project: Project) -> list[Path]:
    """The project file and every other file of the project folder the digest covers
    (policies included), Python or not, in path order."""
    first = project.root / PROJECT_FILE
    return [first, *sorted(Path(path) for label, path in _covered(str(project.root), "", set())
                           if label != PROJECT_FILE)]


def program_fingerprint(project: Project, python_path: Sequence[Path] | None = None) -> ProgramDigest:
    """The digest of the program of ``project`` with the shared code of ``python_path``
    (None: the ``python_path`` of the workspace around the project, if any: what the
    program runner puts on ``sys.path``)."""
    if python_path is None:
        python_path = workspace_python_path(project.root)
    root = str(project.root)
    found: dict[str, str] = {}
    seen: set[tuple[int, int]] = set()  # shared: a python_path folder holding the project skips it
    walks = [_covered(root, "", seen)]
    for folder in python_path:
        prefix = Path(os.path.relpath(folder, root)).as_posix()
        walks.append(_covered(str(folder), prefix + "/", seen))
    for label, path in itertools.chain([(PROJECT_FILE, os.path.join(root, PROJECT_FILE))], *walks):
        if label not in found:
            sha = _file_sha(path)
            if sha is not None:
                found[label] = sha
    return ProgramDigest(found)


def program_digest(project: Project, python_path: Sequence[Path] | None = None) -> str:
    return program_fingerprint(project, python_path).digest


def workspace_python_path(start: Path) -> tuple[Path, ...]:
    """The ``python_path`` folders of the workspace around ``start``; none outside a
    workspace (the workspace module is loaded only when a workspace file is there)."""
    here = start.resolve()
    if not any((folder / WORKSPACE_FILE).is_file() for folder in (here, *here.parents)):
        return ()
    from stackwright.program.workspace import find_workspace

    workspace = find_workspace(here)
    return workspace.python_path if workspace is not None else ()


def config_digest(project: Project, stack: str) -> str:
    path = project.stack_file(stack)
    return hashlib.sha256(path.read_bytes() if path.exists() else b"").hexdigest()


def _covered(folder: str, prefix: str, seen: set[tuple[int, int]]) -> Iterator[tuple[str, str]]:
    """(label, path) of every covered file under ``folder``, labelled ``prefix`` and the
    path below it (symbolic links followed, each folder once)."""
    try:
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        with os.scandir(folder) as found:
            entries = list(found)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            if name not in SKIPPED_DIRS:
                yield from _covered(entry.path, f"{prefix}{name}/", seen)
        elif name not in SKIPPED_FILES:
            yield f"{prefix}{name}", entry.path


def _file_sha(path: str) -> str | None:
    """The SHA-256 of the file's bytes; None for a saved plan or a file gone since it
    was listed; a file that cannot be read counts as such (the program cannot read it
    either)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(_HEAD_BYTES)
            if head.startswith(_PLAN_FILE_HEAD) and _PLAN_FILE_MARK in head:
                return None
            digest.update(head)
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
    return digest.hexdigest()
