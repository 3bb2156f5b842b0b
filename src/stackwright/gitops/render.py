"""`gitops render`: every stack's objects as files, and the controller objects over them.

The output folder holds, per stack, ``<stack>/<namespace>/<kind>-<name>.yaml`` and
``<format>/<stack>/<app>.yaml``. A render rewrites only files whose bytes change and
removes the files of objects that are gone, in the folders it owns (the rendered
stacks' folders and their controller folders), so the git diff of a render is the
change and nothing else.

Writing YAML is most of a render's cost, so an index in the project's cache records,
per file, the digest of the object it was written from and of the bytes written: a
file whose object is unchanged and whose bytes are still those is not written again
(nor its YAML made). Anything else (no index, a file edited or checked out anew) is
written from scratch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from stackwright.gitops.controllers import Format, controller_objects, folders
from stackwright.gitops.layout import content_digest, dump, object_path
from stackwright.gitops.objects import GitopsError, RenderedObject, stack_objects
from stackwright.gitops.settings import GitopsSettings, gitops_settings
from stackwright.gitops.sops import SopsEncrypter
from stackwright.model.values import Secret, is_secret, reveal
from stackwright.operations.session import open_session
from stackwright.program.project import Project
from stackwright.state.codec import gc_paused
from stackwright.workflow.environments import environment_for

INDEX_VERSION = 1
ENCRYPTED_FIELDS = ("data", "stringData")
"""A Secret's fields SOPS encrypts (see ``sops.ENCRYPTED_REGEX``)."""


@dataclass(frozen=True)
class FileEntry:
    """One file to write: the digest of what it is made from (None: always made)."""

    digest: str | None
    make: Callable[[], str]


Files = dict[str, FileEntry]
"""Path under the output folder (``/``-separated) → what to write there."""


@dataclass
class RenderResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    objects: int = 0


def object_files(objects: Sequence[RenderedObject], encrypter: SopsEncrypter, out: Path | None = None) -> Files:
    """One file per object; a Secret's file is SOPS-encrypted (``out``: where earlier
    renders wrote, whose Secret files may be kept)."""
    files: Files = {}
    owners: dict[str, str] = {}
    for obj in objects:
        path = object_path(obj)
        if path in files:
            raise GitopsError(f"{obj.key} is declared twice (by {owners[path]} and {obj.urn})", resource=obj.urn)
        files[path], owners[path] = _entry(obj, encrypter, out, path), obj.urn
    return files


def _entry(obj: RenderedObject, encrypter: SopsEncrypter, out: Path | None, path: str) -> FileEntry:
    if obj.secret or obj.manifest.get("kind") == "Secret":
        text = _text(obj, encrypter, out / path if out else None)
        return FileEntry(None, lambda: text)
    return FileEntry(obj.digest, functools.partial(dump, obj.manifest))


def _text(obj: RenderedObject, encrypter: SopsEncrypter, previous: Path | None) -> str:
    encrypted = ENCRYPTED_FIELDS if obj.manifest.get("kind") == "Secret" else ()
    outside = {k: v for k, v in obj.manifest.items() if k not in encrypted}
    if is_secret(outside):
        raise GitopsError(
            f"{obj.key} holds a secret value at {_secret_path(outside)}, and only a Secret's data is "
            "exported encrypted", resource=obj.urn,
            hint="put the value in a k8s Secret's data and refer to it (env valueFrom.secretKeyRef, a mounted volume)")
    if any(k in obj.manifest for k in encrypted):
        return encrypter.encrypt(dump(reveal(obj.manifest)), obj.key, previous)
    return dump(obj.manifest)


def _secret_path(value: Any, path: str = "") -> str:
    if isinstance(value, Secret):
        return path or "(the whole object)"
    items: Iterable[tuple[str, Any]] = ()
    if isinstance(value, Mapping):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    for sub, item in items:
        if is_secret(item):
            return _secret_path(item, sub)
    return path


def stack_files(stack: str, objects: Sequence[RenderedObject], fmt: Format, settings: GitopsSettings,
                repo_path: PurePosixPath, encrypter: SopsEncrypter, out: Path | None = None) -> Files:
    files = object_files(objects, encrypter, out)
    controllers = controller_objects(fmt, folders(stack, objects), settings, repo_path)
    files.update({path: FileEntry(content_digest(obj), functools.partial(dump, obj))
                  for path, obj in controllers.items()})
    return files


def owned_roots(stacks: Iterable[str], fmt: Format) -> list[str]:
    """The folders a render of ``stacks`` owns: files there that it does not write are removed."""
    return [p for stack in stacks for p in (stack, f"{fmt}/{stack}")]


def write_files(out: Path, files: Files, roots: Sequence[str], index_file: Path | None = None) -> RenderResult:
    result = RenderResult()
    index = _read_index(index_file)
    written: dict[str, list[str]] = {}
    root = str(out)
    for path in sorted(files):
        entry, key = files[path], path
        known = index.get(key)
        if known and entry.digest and known[0] == entry.digest and known[1] == _stamp(os.path.join(root, path)):
            result.unchanged += 1
            written[key] = known
            continue
        target = out / path
        data = entry.make().encode()
        if target.is_file() and target.read_bytes() == data:
            result.unchanged += 1
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.tmp")
            partial.write_bytes(data)
            partial.replace(target)
            result.written.append(path)
        if entry.digest:
            written[key] = [entry.digest, _stamp(str(target))]
    for root in roots:
        result.removed += _remove_stale(out, out / root, files)
    kept = {**{k: v for k, v in index.items() if k not in files}, **written}
    if kept != index:
        _write_index(index_file, kept)
    return result


def _stamp(target: str) -> str:
    """Size and modification time: a file edited, checked out or written since has
    another (a render then makes and compares it again)."""
    try:
        found = os.stat(target)
    except FileNotFoundError:
        return ""
    return f"{found.st_size}:{found.st_mtime_ns}"


def _read_index(index_file: Path | None) -> dict[str, list[str]]:
    if index_file is None or not index_file.is_file():
        return {}
    try:
        data = json.loads(index_file.read_text())
    except ValueError:
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("version") == INDEX_VERSION else None
    return files if isinstance(files, dict) else {}


def _write_index(index_file: Path | None, files: Mapping[str, list[str]]) -> None:
    if index_file is None:
        return
    index_file.parent.mkdir(parents=True, exist_ok=True)
    partial = index_file.with_suffix(".tmp")
    partial.write_text(json.dumps({"version": INDEX_VERSION, "files": files}, sort_keys=True))
    partial.replace(index_file)


def index_path(project: Project, out: Path) -> Path:
    """The index of one output folder (a project may render into several)."""
    name = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return project.state_dir / "cache" / "gitops" / f"index-{name}.json"


def _remove_stale(out: Path, root: Path, files: Files) -> list[str]:
    if not root.is_dir():
        return []
    removed = []
    for folder, _, names in sorted(os.walk(root), key=lambda walked: -walked[0].count(os.sep)):
        relative = Path(folder).relative_to(out).as_posix()
        for name in names:
            if name.endswith(".yaml") and f"{relative}/{name}" not in files:
                os.unlink(os.path.join(folder, name))
                removed.append(f"{relative}/{name}")
        if not os.listdir(folder):
            os.rmdir(folder)
    return sorted(removed)


def repo_path(out: Path, settings: GitopsSettings) -> PurePosixPath:
    """The output folder's path inside the git repository the controllers read."""
    if settings.path is not None:
        return PurePosixPath(settings.path.strip("/") or ".")
    out = out.resolve()
    probe = out if out.exists() else out.parent
    found = subprocess.run(["git", "-C", str(probe), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise GitopsError(f"{out} is not inside a git repository, so its path there is unknown",
                          hint="set `gitops: {path: FOLDER}` in stackwright.yaml (the folder's path in the repository)")
    return PurePosixPath(out.relative_to(Path(found.stdout.strip()).resolve()).as_posix())


def render_project(project: Project, stacks: Sequence[str], out: Path, fmt: Format) -> RenderResult:
    """Render ``stacks`` of ``project`` into ``out``. The cycle collector is paused
    meanwhile: a render makes millions of acyclic containers (manifests, their copies
    and JSON), and the full collections they set off cost a third of a warm render."""
    with gc_paused():
        return _render_project(project, stacks, out, fmt)


def _render_project(project: Project, stacks: Sequence[str], out: Path, fmt: Format) -> RenderResult:
    settings = gitops_settings(project)
    where = repo_path(out, settings)
    files: Files = {}
    count = 0
    for stack in stacks:
        objects = objects_for_stack(project, stack)
        count += len(objects)
        files.update(stack_files(stack, objects, fmt, settings, where, encrypter_for(project, stack, settings), out))
    result = write_files(out, files, owned_roots(stacks, fmt), index_path(project, out))
    result.objects = count
    return result


def objects_for_stack(project: Project, stack: str) -> list[RenderedObject]:
    session = open_session(project, stack)
    try:
        return stack_objects(session)
    finally:
        session.close()


def encrypter_for(project: Project, stack: str, settings: GitopsSettings) -> SopsEncrypter:
    env = environment_for(project, stack)
    recipients = env.age_recipients if env.age_recipients is not None else settings.age_recipients
    return SopsEncrypter(recipients, project.state_dir / "cache" / "gitops" / "sops")


def selected_stacks(project: Project, explicit: Sequence[str]) -> list[str]:
    """The stacks named, else every stack with a stack file."""
    stacks = list(explicit) or project.stack_files()
    if not stacks:
        raise GitopsError("the project has no stacks to render", hint="create one with `stackwright stack init NAME`")
    return stacks
