"""`gitops diff --since REF`: the object-level change between a git revision and the
working tree, as a reviewer reads it (which object, which field, old and new value).

The revision is checked out with ``git worktree`` in a temporary folder and its program
runs there, against the same recorded state (values other resources computed) and the
same keys as the working tree's; Helm renders are shared through the render cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stackwright.gitops.objects import GitopsError, RenderedObject, stack_objects
from stackwright.model.values import MASK, Secret, masked
from stackwright.operations.keyring import Keyring
from stackwright.operations.session import StackSession, identity, open_store, provider_config, stack_config
from stackwright.plan.diff import PropertyDiff, diff_values
from stackwright.program.project import Project, load_project
from stackwright.providers.registry import ProviderRegistry

Change = Literal["added", "removed", "changed"]
SYMBOL = {"added": "+", "removed": "-", "changed": "~"}


@dataclass(frozen=True)
class ObjectChange:
    stack: str
    key: str
    """``Deployment shop/web``."""
    change: Change
    release: str | None
    diffs: tuple[PropertyDiff, ...] = ()
    """Field by field, for a changed object (secret values stay ``Secret``)."""


def diff_objects(old: Sequence[RenderedObject], new: Sequence[RenderedObject]) -> list[ObjectChange]:
    """Every object added, removed or changed, by stack and key."""
    before = {(o.stack, o.key): o for o in old}
    after = {(o.stack, o.key): o for o in new}
    out = []
    for stack, key in sorted(set(before) | set(after)):
        a, b = before.get((stack, key)), after.get((stack, key))
        if a is None and b is not None:
            out.append(ObjectChange(stack, key, "added", b.release))
        elif b is None and a is not None:
            out.append(ObjectChange(stack, key, "removed", a.release))
        elif a is not None and b is not None and a.manifest != b.manifest:
            out.append(ObjectChange(stack, key, "changed", b.release, tuple(diff_values(a.manifest, b.manifest))))
    return out


def describe(changes: Sequence[ObjectChange]) -> list[str]:
    """The changes as text lines; secret values masked."""
    if not changes:
        return ["No object changes."]
    lines = []
    for stack in sorted({c.stack for c in changes}):
        mine = [c for c in changes if c.stack == stack]
        counts = ", ".join(f"{sum(c.change == k for c in mine)} {k}" for k in ("added", "changed", "removed"))
        lines.append(f"{stack}: {len(mine)} object(s) change ({counts})")
        for change in mine:
            release = f" (release {change.release})" if change.release else ""
            lines.append(f"  {SYMBOL[change.change]} {change.key}{release}")
            lines += [f"      {line}" for line in field_lines(change.diffs)]
    return lines


def field_lines(diffs: Sequence[PropertyDiff]) -> list[str]:
    return [_field_line(d) for d in diffs]


def _field_line(d: PropertyDiff) -> str:
    if d.kind == "add":
        return f"+ {d.path}: {_short(d.new)}"
    if d.kind == "delete":
        return f"- {d.path}: {_short(d.old)}"
    return f"~ {d.path}: {_short(d.old)} -> {_short(d.new)}"


def _short(value: object) -> str:
    if isinstance(value, Secret):
        return MASK
    text = json.dumps(masked(value), sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


# --- rendering a revision -------------------------------------------------------------


def objects_at_revision(project: Project, ref: str, stacks: Sequence[str]) -> list[RenderedObject]:
    """The objects ``stacks`` rendered at git revision ``ref`` of the project."""
    with _worktree(project, ref) as root:
        if not (root / "stackwright.yaml").is_file():
            return []
        old = load_project(root)
        _share_render_cache(project, old)
        return [o for stack in stacks if old.stack_file(stack).is_file()
                for o in _objects_of_revision(project, old, stack)]


def _objects_of_revision(current: Project, old: Project, stack: str) -> list[RenderedObject]:
    config = stack_config(old, stack, Keyring.for_stack(current, stack))
    session = StackSession(old, stack, open_store(current, stack), config,
                           ProviderRegistry(provider_config(old, config.data)), identity())
    here = Path.cwd()
    os.chdir(old.root)
    try:
        return stack_objects(session)
    finally:
        os.chdir(here)
        session.close()


@contextmanager
def _worktree(project: Project, ref: str) -> Iterator[Path]:
    """The project's folder as it was at ``ref``, in a temporary git worktree."""
    top = _git(project.root, "rev-parse", "--show-toplevel").strip()
    inside = project.root.resolve().relative_to(Path(top).resolve())
    commit = _git(project.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    folder = Path(tempfile.mkdtemp(prefix="stackwright-gitops-"))
    _git(project.root, "worktree", "add", "--detach", "--quiet", str(folder / "tree"), commit)
    try:
        yield folder / "tree" / inside
    finally:
        _git(project.root, "worktree", "remove", "--force", str(folder / "tree"))
        shutil.rmtree(folder, ignore_errors=True)


def _share_render_cache(current: Project, old: Project) -> None:
    """Helm renders are keyed by their inputs' content: the revision may use the
    working tree's cache, so unchanged releases cost no helm call."""
    cache = current.state_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    old.state_dir.mkdir(parents=True, exist_ok=True)
    link = old.state_dir / "cache"
    if not link.exists():
        link.symlink_to(cache.resolve(), target_is_directory=True)


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        what = " ".join(args[:2])
        raise GitopsError(f"git {what} failed: {done.stderr.strip() or f'exit {done.returncode}'}",
                          hint="--since takes a git revision of the repository holding the project "
                          "(a branch, a tag, a commit, HEAD~1)")
    return done.stdout

