"""What a program sees of its workspace: other stacks' recorded outputs (for
``StackReference``) and the workspace's shared ``python_path``.

A reference to another stack is allowed only when the workspace file declares it as a
dependency of the referencing stack: that declaration is what `stackwright run` orders
stacks by, so an undeclared reference could read outputs that are about to change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from stackwright.errors import ProjectError, StackDestroyed, StackNotApplied, StateError
from stackwright.program.project import Project
from stackwright.state.codec import StoredOutputs
from stackwright.state.store import StateStore

if TYPE_CHECKING:
    from stackwright.program.workspace import Workspace

STATE_FILE = Path(".stackwright") / "state.db"
WORKSPACE_FILE = "stackwright-workspace.yaml"
"""``program.workspace.WORKSPACE_FILE``, named here too so that a project outside any
workspace (most) never loads that module; a test pins the two equal."""


def find_workspace(start: Path) -> Workspace | None:
    """``program.workspace.find_workspace``, whose module is imported only when a
    workspace file is there to load: every command runs a program, and few projects
    are in a workspace."""
    here = start.resolve()
    if not any((folder / WORKSPACE_FILE).is_file() for folder in (here, *here.parents)):
        return None
    from stackwright.program.workspace import find_workspace as load_found

    return load_found(here)


class WorkspaceLinks:
    """The workspace around one stack, found and loaded on first use."""

    def __init__(self, project: Project, stack: str, store: StateStore,
                 workspace: Workspace | None = None,
                 known: dict[str, Mapping[str, Any]] | None = None,
                 stores: Callable[[Project], StateStore] | None = None) -> None:
        """``workspace``, when given, saves finding and loading it again; ``known``
        holds outputs already read or planned in this run, by ``project/stack``, and
        receives what this stack reads; ``stores`` lends another project's open store
        (`stackwright run` shares these across its stacks)."""
        self.project = project
        self.stack = stack
        self.store = store
        self._stores = stores
        self._declared: frozenset[str] | None = None
        self._line = 0
        self._elsewhere: dict[str, bool] = {}
        self._workspace = workspace
        self._looked = workspace is not None
        self._cache: dict[str, Mapping[str, Any]] = {} if known is None else known
        self._batches: dict[str, dict[str, StoredOutputs]] = {}

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
        StackNotApplied when it was never applied, StackDestroyed when it records
        nothing now."""
        project, stack, name = self._target(ref)
        if name not in self._cache:
            self._cache[name] = self._outputs(project, stack, ref)
        return self._cache[name]

    def _target(self, ref: str) -> tuple[Project, str, str]:
        """The stack's project folder, its name there, and its ``project/stack``."""
        project_key, _, stack = ref.rpartition("/")
        workspace = self.workspace
        if workspace is None:
            if project_key != self.project.name:
                raise ProjectError(
                    f"cannot read stack {ref}: project {self.project.name!r} is not part of a "
                    f"workspace, so other projects cannot be found",
                    hint=f"list the projects in a {WORKSPACE_FILE} at the repository root")
            return self.project, stack, f"{self.project.name}/{stack}"
        target = workspace.project(project_key)
        if target is None:
            raise ProjectError(f"cannot read stack {ref}: the workspace has no project {project_key!r}",
                               hint=f"known projects: {', '.join(p.name for p in workspace.projects)}")
        name = f"{target.name}/{stack}"
        self._check_declared(workspace, name)
        return target.project, stack, name

    def _check_declared(self, workspace: Workspace, ref: str) -> None:
        """Found once per stack: a stack may read hundreds of others."""
        me = f"{self.project.name}/{self.stack}"
        if self._declared is None:
            here = workspace.project_at(self.project.root)
            entry = here.stack(self.stack) if here is not None else None
            if entry is None:
                raise ProjectError(
                    f"stack {me} reads stack {ref}, but {me} is not listed in {workspace.shown}",
                    hint="add the project and stack to the workspace file, with "
                    f"`depends_on: [{ref}]`")
            self._declared, self._line = frozenset(workspace.dependencies(entry)), entry.line
        if ref not in self._declared:
            raise ProjectError(
                f"stack {me} reads stack {ref}, but {workspace.shown} does not declare that "
                "dependency",
                hint=f"add `depends_on: [{ref}]` to {me}'s entry (line {self._line}) so that "
                "`stackwright run` applies it first")

    def _outputs(self, target: Project, stack: str, ref: str) -> dict[str, Any]:
        root = target.root
        if not self._other_project(target):
            return self._read(self.store, stack, ref)
        from stackwright.operations.keyring import Keyring

        if self._stores is not None:
            shared = self._stores(target)
            stored = self._prefetched(shared, target, stack)
            if stored is None:
                shared.use_cipher(Keyring.for_stack(target, stack))
                return self._read(shared, stack, ref)
            found = stored.pop(stack, None)  # absent: no such stack
            if found is None or not found.serial:
                raise _never_applied(ref)
            return _recorded(ref, found.open(lambda: Keyring.for_stack(target, stack)), found.has_resources)
        from stackwright.state.backends import open_state_store, sqlite_path, state_url

        url = state_url(target.settings)
        default = root / STATE_FILE
        if not url or url.startswith("sqlite:"):
            if not sqlite_path(url, default, root).is_file():
                raise _never_applied(ref)
        store = open_state_store(url, default, project=target.name, root=root, read_only=True)
        store.use_cipher(Keyring.for_stack(target, stack))
        try:
            return self._read(store, stack, ref)
        finally:
            store.close()

    def _other_project(self, target: Project) -> bool:
        if target.name not in self._elsewhere:
            self._elsewhere[target.name] = (target is not self.project
                                            and target.root.resolve() != self.project.root.resolve())
        return self._elsewhere[target.name]

    def _prefetched(self, store: StateStore, target: Project, stack: str) -> dict[str, StoredOutputs] | None:
        """The stored outputs of ``stack`` and of every other stack of ``target`` this
        stack declares it depends on and has not read yet, read together on the first
        miss (a stack reading 200 others reads them in one query); None when the store
        reads stacks one at a time only."""
        batch = self._batches.get(target.name)
        if batch is not None and stack in batch:
            return batch
        read = getattr(store, "stored_outputs", None)
        if not callable(read):
            return None
        prefix = f"{target.name}/"
        names = {stack} | {ref[len(prefix):] for ref in self._declared or ()
                           if ref.startswith(prefix) and ref not in self._cache}
        batch = self._batches[target.name] = cast(dict[str, StoredOutputs], read(sorted(names)))
        return batch

    def _read(self, store: StateStore, stack: str, ref: str) -> dict[str, Any]:
        try:
            snapshot = store.snapshot(stack)
        except StateError:  # one read, not two, for the stack that is there
            if not store.stack_exists(stack):
                raise self._missing(store, ref) from None
            raise
        if not snapshot.serial:  # 0 until the stack's first write: created, never applied
            raise _never_applied(ref)
        return _recorded(ref, dict(snapshot.outputs), bool(snapshot.resources))


    def _missing(self, store: StateStore, ref: str) -> ProjectError:
        """A stack the store does not hold. Outside a workspace nothing will create it;
        a workspace lists it (a reference is to a declared dependency), and `run up`
        creates the stacks it lists first: not applied yet."""
        if self.workspace is not None:
            return _never_applied(ref)
        known = ", ".join(s.name for s in store.list_stacks()) or "none"
        return ProjectError(f"stack {ref} does not exist",
                            hint=f"stacks of project {self.project.name}: {known}")


def _recorded(ref: str, outputs: dict[str, Any], has_resources: bool) -> dict[str, Any]:
    """The outputs of a stack that was applied, unless it records nothing any more: a
    destroyed stack's outputs are not there to read, whatever its program exports."""
    if not outputs and not has_resources:
        raise StackDestroyed(f"cannot read stack {ref}: it records no resources and no outputs (destroyed)",
                             hint="apply it again; `stackwright run up` applies dependencies first")
    return outputs


def _never_applied(ref: str) -> StackNotApplied:
    return StackNotApplied(f"cannot read stack {ref}: it has no recorded state (never applied)",
                           hint="apply it first; `stackwright run up` applies dependencies first")
