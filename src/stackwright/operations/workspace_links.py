"""What a program sees of its workspace: other stacks' recorded outputs (for
``StackReference``) and the workspace's shared ``python_path``.

A reference to another stack is allowed only when the workspace file declares it as a
dependency of the referencing stack: that declaration is what `stackwright run` orders
stacks by, so an undeclared reference could read outputs that are about to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackwright.errors import ProjectError, StackNotApplied
from stackwright.program.project import Project
from stackwright.program.workspace import WORKSPACE_FILE, Workspace, find_workspace
from stackwright.state.store import StateStore

STATE_FILE = Path(".stackwright") / "state.db"


class WorkspaceLinks:
    """The workspace around one stack, found and loaded on first use."""

    def __init__(self, project: Project, stack: str, store: StateStore) -> None:
        self.project = project
        self.stack = stack
        self.store = store
        self._workspace: Workspace | None = None
        self._looked = False
        self._cache: dict[str, dict[str, Any]] = {}

    @property
    def workspace(self) -> Workspace | None:
        if not self._looked:
            self._looked = True
            self._workspace = find_workspace(self.project.root)
        return self._workspace

    def python_path(self) -> tuple[Path, ...]:
        return self.workspace.python_path if self.workspace is not None else ()

    def read_outputs(self, ref: str) -> Mapping[str, Any]:
        """``project/stack``'s latest recorded outputs, after checking the dependency;
        StackNotApplied when it was never applied."""
        if ref not in self._cache:
            root, stack = self._target(ref)
            self._cache[ref] = self._outputs(root, stack, ref)
        return self._cache[ref]

    def _target(self, ref: str) -> tuple[Path, str]:
        project_key, _, stack = ref.rpartition("/")
        workspace = self.workspace
        if workspace is None:
            if project_key != self.project.name:
                raise ProjectError(
                    f"cannot read stack {ref}: project {self.project.name!r} is not part of a "
                    f"workspace, so other projects cannot be found",
                    hint=f"list the projects in a {WORKSPACE_FILE} at the repository root")
            return self.project.root, stack
        target = workspace.project(project_key)
        if target is None:
            raise ProjectError(f"cannot read stack {ref}: the workspace has no project {project_key!r}",
                               hint=f"known projects: {', '.join(p.name for p in workspace.projects)}")
        self._check_declared(workspace, f"{target.name}/{stack}")
        return target.root, stack

    def _check_declared(self, workspace: Workspace, ref: str) -> None:
        here = workspace.project_at(self.project.root)
        entry = here.stack(self.stack) if here is not None else None
        me = f"{self.project.name}/{self.stack}"
        if entry is None:
            raise ProjectError(
                f"stack {me} reads stack {ref}, but {me} is not listed in {workspace.shown}",
                hint="add the project and stack to the workspace file, with "
                f"`depends_on: [{ref}]`")
        if ref not in workspace.dependencies(entry):
            raise ProjectError(
                f"stack {me} reads stack {ref}, but {workspace.shown} does not declare that "
                "dependency",
                hint=f"add `depends_on: [{ref}]` to {me}'s entry (line {entry.line}) so that "
                "`stackwright run` applies it first")

    def _outputs(self, root: Path, stack: str, ref: str) -> dict[str, Any]:
        if root.resolve() == self.project.root.resolve():
            return self._read(self.store, stack, ref)
        from stackwright.operations.keyring import Keyring
        from stackwright.program.project import load_project
        from stackwright.state.backends import open_state_store, sqlite_path, state_url

        target = load_project(root)
        url = state_url(target.settings)
        default = root / STATE_FILE
        if not url or url.startswith("sqlite:"):
            if not sqlite_path(url, default, root).is_file():
                raise _never_applied(ref)
        store = open_state_store(url, default, project=target.name, root=root)
        store.use_cipher(Keyring.for_stack(target, stack))
        try:
            return self._read(store, stack, ref)
        finally:
            store.close()

    @staticmethod
    def _read(store: StateStore, stack: str, ref: str) -> dict[str, Any]:
        if not store.stack_exists(stack):
            raise _never_applied(ref)
        snapshot = store.snapshot(stack)
        if not snapshot.serial:  # 0 until the stack's first write: created, never applied
            raise _never_applied(ref)
        return dict(snapshot.outputs)


def _never_applied(ref: str) -> StackNotApplied:
    return StackNotApplied(f"cannot read stack {ref}: it has no recorded state (never applied)",
                           hint="apply it first; `stackwright run up` applies dependencies first")
