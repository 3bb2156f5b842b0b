"""Digests of a project's program and a stack's config: what saved plans pin and what
the staging gate compares. Config is separate so that staging and production (same
program, different config) can be compared.

The program digest covers what lives with the code and the program may read when it
runs, at plan time or at apply time (a value left ``(known after apply)`` is computed
by the program then): ``stackwright.yaml`` and every file under the project folder,
Python or not (templates, values files, charts), and every file under the workspace's
``python_path`` folders (shared code, and the data beside it), except what follows.
docs/plan-file.md ("What the program digest covers") lists the same, with examples a
test checks against this code.

Skipped by its place, only where Stackwright puts it:

- at the top of the project folder, ``out/`` (where programs write their files:
  covering it would make every apply change the program) and the stack files
  ``stacks/*.yaml`` (the config digest covers ``stacks/<stack>.yaml``, kept apart so
  that one program compares equal across stacks). Anything else under ``stacks/``
  (``stacks/helpers.py``, ``stacks/lib/...``) is covered, and so is every ``out`` or
  ``stacks`` folder deeper down: ``lib/stacks/render.py`` is ordinary code;
- the same at the top of every project folder met in a ``python_path`` folder (one
  holding ``stackwright.yaml``: ``python_path: [.]`` at a workspace root holds the
  other projects, whose applies write their own ``out/``). In the project folder, a
  folder below the top is covered whole, ``stackwright.yaml`` in it or not;
- ``allowed_signers``, the root of trust, checked on its own at apply time (adding an
  approver's key must not void the plans waiting for that approver), in the project
  folder and in the folders above it (where ``workflow.signing`` looks for it).
  A file of that name anywhere else is covered.

Skipped by its name, at any depth:

- dot-folders and dot-files: the state folder (``.stackwright``), version control,
  ``.venv``, tool caches, editor swap files, ``.DS_Store``, ``.env``, the temporary
  files of atomic writes. Python cannot import a module from a dot-folder by name;
- ``venv`` and ``node_modules``: installed third-party packages (put there by an
  installer from a lock file, which is covered), large and different per machine;
- ``__pycache__``: bytecode Python writes as it imports, different per interpreter
  version, so covering it would refuse a plan whenever anything imported the code
  between plan and apply. Python runs a ``__pycache__`` file instead of the source
  beside it when its header records that source's size and time (or content hash, or
  says not to check), whatever code follows; so ``program.runner`` compiles the
  modules the program and its policies import from the project and ``python_path``
  folders from their source, and never reads (or writes) ``__pycache__`` for them.

Skipped by its content: saved plans (``plan --out`` files), which are written into the
project folder after the digest is taken. A file counts as one only when it starts as
``workflow.plan_file.render`` starts plans (read first, so that other files cost no
parse) and the whole of it is one JSON object with ``"format": "stackwright-plan"``, a
``plan`` and a ``hash``: nothing can come before or after it. A ``.py`` file is never
one.

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

SKIPPED_DIRS = frozenset({"venv", "node_modules", "__pycache__"})
"""Folders skipped by name at any depth, besides every dot-folder (``.stackwright``,
``.git``, ``.venv``...)."""
OUTPUT_DIR = "out"
CONFIG_DIR = "stacks"
CONFIG_SUFFIX = ".yaml"
"""``out/`` and ``stacks/*.yaml`` at the top of a project folder: output and config."""
SIGNERS_FILE = "allowed_signers"
"""``workflow.signing.SIGNERS_FILE``: trust, not program (a test pins the two equal)."""
WORKSPACE_FILE = "stackwright-workspace.yaml"
"""``program.workspace.WORKSPACE_FILE``, named here so that a project outside any
workspace never loads that module (a test pins the two equal)."""

PLAN_FORMAT = "stackwright-plan"
"""``workflow.plan_file.FORMAT`` (a test pins the two equal): this layer may not import
the workflow layer."""
_PLAN_FILE_HEAD = b"{\n"
_PLAN_FILE_MARK = b'\n  "format": "stackwright-plan",\n'
"""How every saved plan starts: ``workflow.plan_file.render`` writes sorted keys, and
only a few short ones come before ``format``."""
_HEAD_BYTES = 4096
_CHUNK = 1 << 20
_PLAN_VERDICTS: dict[str, bool] = {}
"""Whether the content of this SHA-256 is a saved plan, for contents parsed already in
this process (`run` takes many digests of one folder)."""
_PLAN_VERDICTS_MAX = 4096


def skipped_folder(name: str) -> bool:
    """Whether a folder of this name is skipped wherever it is (``program.runner``
    compiles the modules of the other folders from their source)."""
    return name.startswith(".") or name in SKIPPED_DIRS


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
    walk = _Walk(str(project.root), set())
    return [first, *sorted(Path(path) for label, path in walk.files(str(project.root), "", project_top=True)
                           if label != PROJECT_FILE)]


def program_fingerprint(project: Project, python_path: Sequence[Path] | None = None) -> ProgramDigest:
    """The digest of the program of ``project`` with the shared code of ``python_path``
    (None: the ``python_path`` of the workspace around the project, if any: what the
    program runner puts on ``sys.path``)."""
    if python_path is None:
        python_path = workspace_python_path(project.root)
    root = str(project.root)
    # one walk: a folder is read once (a python_path folder holding the project skips it)
    walk = _Walk(root, set())
    walks = [walk.files(root, "", project_top=True)]
    for folder in python_path:
        prefix = Path(os.path.relpath(folder, root)).as_posix()
        walks.append(walk.files(str(folder), prefix + "/", find_projects=True))
    found: dict[str, str] = {}
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


class _Walk:
    """The covered files of the folders of one digest, each folder read once."""

    def __init__(self, project_root: str, seen: set[tuple[int, int]]) -> None:
        self.seen = seen
        resolved = Path(project_root).resolve()
        self.trusted = {str(resolved), *(str(folder) for folder in resolved.parents)}
        """Where ``allowed_signers`` is the trust file: the project folder and above."""

    def files(self, folder: str, prefix: str, *, project_top: bool = False, find_projects: bool = False,
              config: bool = False) -> Iterator[tuple[str, str]]:
        """(label, path) of every covered file under ``folder``, labelled ``prefix`` and
        the path below it (symbolic links followed, each folder once). ``project_top``:
        ``folder`` is a project folder; ``find_projects``: so is any folder holding
        ``stackwright.yaml``; ``config``: ``folder`` is a project's ``stacks``."""
        try:
            if not config:  # read again if linked from elsewhere: its *.yaml count there
                stat = os.stat(folder)
                if (stat.st_dev, stat.st_ino) in self.seen:
                    return
                self.seen.add((stat.st_dev, stat.st_ino))
            with os.scandir(folder) as found:
                entries = list(found)
        except OSError:
            return
        if find_projects and not project_top:
            project_top = any(e.name == PROJECT_FILE and _is_file(e) for e in entries)
        if config:  # a workspace's stacks folder holds a file per stack: read each name once
            entries = [e for e in entries if not e.name.endswith(CONFIG_SUFFIX) or _is_dir(e)]
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                if name in SKIPPED_DIRS or (project_top and name == OUTPUT_DIR):
                    continue
                yield from self.files(entry.path, f"{prefix}{name}/", find_projects=find_projects,
                                      config=project_top and name == CONFIG_DIR)
            elif not (name == SIGNERS_FILE and os.path.realpath(folder) in self.trusted):
                yield f"{prefix}{name}", entry.path


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _file_sha(path: str) -> str | None:
    """The SHA-256 of the file's bytes; None for a saved plan or a file gone since it
    was listed; a file that cannot be read counts as such (the program cannot read it
    either)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(_HEAD_BYTES)
            if head.startswith(_PLAN_FILE_HEAD) and _PLAN_FILE_MARK in head and not path.endswith(".py"):
                return _plan_or_sha(head + handle.read())
            digest.update(head)
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
    return digest.hexdigest()


def _plan_or_sha(data: bytes) -> str | None:
    """None when ``data`` is a saved plan, whole; else its SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    verdict = _PLAN_VERDICTS.get(sha)
    if verdict is None:
        verdict = is_plan_file(data)
        if len(_PLAN_VERDICTS) >= _PLAN_VERDICTS_MAX:
            _PLAN_VERDICTS.clear()
        _PLAN_VERDICTS[sha] = verdict
    return None if verdict else sha


def is_plan_file(data: bytes) -> bool:
    """Whether ``data`` is whole a plan file (``workflow.plan_file``): ASCII, and all of
    it one JSON object with ``"format": "stackwright-plan"``, a ``plan`` object and a
    ``hash``, so that no code can follow or precede it. Neither its byte form nor its
    hash is checked: that is for apply, proves nothing about who wrote it, and costs
    more than the parse (a plan of 40,000 steps is 15 MB)."""
    import json

    try:
        document = json.loads(data.decode("ascii"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return (isinstance(document, dict) and document.get("format") == PLAN_FORMAT
            and isinstance(document.get("plan"), dict) and isinstance(document.get("hash"), str))


def _no_constants(name: str) -> object:
    raise ValueError(name)
