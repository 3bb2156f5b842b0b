"""What the web view shows, as plain values: stacks, one stack's resources and history,
plans waiting for review, the audit log. ``stackwright serve`` renders these as HTML and
as JSON; nothing here knows about either.

Everything is read from the state backends through stores opened with ``MaskedCipher``:
a secret reads back as ``Secret(None)``, so the view never needs a key and never holds
a secret's plain text, whatever a page or a template does with a value.

One site is one project (``stackwright.yaml``) or every project of a workspace
(``stackwright-workspace.yaml`` at the folder ``serve`` started in). Stacks are named
``project/stack`` everywhere, as ``stackwright run`` names them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackwright.errors import NotRecordedError, ProjectError, StackwrightError, StateError
from stackwright.model.values import masked, to_json
from stackwright.program.digest import config_digest, program_digest
from stackwright.program.project import PROJECT_FILE, Project, find_project, load_project
from stackwright.program.project_files import shown_path
from stackwright.program.workspace import WORKSPACE_FILE, Workspace, load_workspace
from stackwright.state.records import Checkpoint, Event, ResourceState, StackInfo
from stackwright.state.store import StateStore
from stackwright.workflow import approvals
from stackwright.workflow.environments import environment_for, environment_name
from stackwright.workflow.plan_file import NEW_STACK_KEY

APPLY_KINDS = ("up", "apply", "destroy", "rollback")
"""Events that apply a plan to a stack: the "last apply" of the stacks page."""
REVIEW_KINDS = (approvals.PLAN, approvals.APPROVE, approvals.REJECT)
RESOURCE_PAGE = 200
"""Resources per page of one stack (its tree, depth first)."""
HISTORY_PAGE = 50
"""Checkpoints per page of one stack's history, newest first."""
AUDIT_PAGE = 100


class MaskedCipher:
    """Opens every secret as ``null`` and seals none: the web view reads state without a
    key, and a secret it would try to write is refused (it writes only audit events,
    which hold none)."""

    def seal(self, plain: bytes) -> str:
        raise StateError("the web view stores no secrets")

    def open(self, token: str) -> bytes:
        return b"null"


# --- the site ----------------------------------------------------------------------------


class UnknownProject(ProjectError):
    """A page names a project the site does not show."""


@dataclass(frozen=True)
class Site:
    """The projects ``serve`` shows, and the workspace around them (if any)."""

    root: Path
    started: tuple[Project, ...]
    """The projects as `serve` read them at start; ``projects`` reads them as they are now."""
    workspace: Workspace | None = None
    depends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """``project/stack`` -> the stacks it depends on, from the workspace file as
    `serve` read it at start."""

    @property
    def projects(self) -> tuple[Project, ...]:
        return tuple(current_project(project) for project in self.started)

    def project(self, name: str) -> Project:
        projects = self.projects
        for project in projects:
            if project.name == name:
                return project
        raise UnknownProject(f"no project named {name!r} here",
                             hint=f"projects: {', '.join(p.name for p in projects)}")


def open_site(folder: Path) -> Site:
    """A workspace when ``folder`` holds the workspace file, else the project that
    ``folder`` is in."""
    here = folder.resolve()
    if (here / WORKSPACE_FILE).is_file() and not (here / PROJECT_FILE).is_file():
        workspace = load_workspace(here / WORKSPACE_FILE)
        return Site(here, tuple(e.project for e in workspace.projects), workspace, _dependencies(workspace))
    project = find_project(here)
    return Site(project.root, (project,))


_PROJECTS: dict[Path, tuple[tuple[int, int, int], Project]] = {}
_PROJECTS_LOCK = threading.Lock()


def current_project(project: Project) -> Project:
    """``project`` as its ``stackwright.yaml`` says now, read again only when the file
    changed: a running view must judge approvals by the ``environments:`` rules that
    `apply` will check, not by those of when it started."""
    path = project.root / PROJECT_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ProjectError(f"{PROJECT_FILE} of project {project.name!r} is gone", file=shown_path(path),
                           hint="put it back, or restart `stackwright serve` where the project is now") from None
    key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _PROJECTS_LOCK:
        cached = _PROJECTS.get(project.root)
    if cached is not None and cached[0] == key:
        return cached[1]
    fresh = load_project(project.root)
    with _PROJECTS_LOCK:
        _PROJECTS[project.root] = (key, fresh)
    return fresh


@contextmanager
def reading(project: Project) -> Iterator[StateStore]:
    """The project's state store, opened to read with secrets masked."""
    from stackwright.state.backends import open_state_store, state_url

    store = open_state_store(state_url(project.settings), project.state_dir / "state.db",
                             project=project.name, root=project.root)
    try:
        store.use_cipher(MaskedCipher())
        yield store
    finally:
        store.close()


# --- the stacks page ---------------------------------------------------------------------


@dataclass(frozen=True)
class LastApply:
    kind: str
    who: str
    at: float
    result: str
    checkpoint: int | None


@dataclass(frozen=True)
class Drift:
    """What the last recorded refresh (``refresh --yes``) found."""

    at: float | None = None
    drifted: int | None = None
    """Resources changed or deleted outside Stackwright; None when unknown."""
    state: str = "never refreshed"
    """``never refreshed``, ``in sync`` or ``drifted``."""


@dataclass(frozen=True)
class StackSummary:
    project: str
    stack: str
    environment: str
    resources: int
    last_apply: LastApply | None
    waiting: int
    """Plans of this stack waiting for approvals."""
    drift: Drift
    status: str
    """``applied``, ``changed`` (program or config changed since the last successful
    apply), ``failed``, ``waiting`` (a plan waits for approval) or ``new``."""
    depends_on: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.stack}"


STATUSES = ("applied", "changed", "failed", "waiting", "new")


def stack_summaries(site: Site, only: str | None = None) -> list[StackSummary]:
    """Every stack of the site (or the stack ``project/stack`` named ``only``), in the
    order projects and stacks are listed."""
    out: list[StackSummary] = []
    for project in site.projects:
        if only is not None and not only.startswith(f"{project.name}/"):
            continue
        with reading(project) as store:
            infos = [i for i in store.list_stacks() if only is None or only == f"{project.name}/{i.name}"]
            events = _by_stack(store.events(only.rpartition("/")[2] if only else None,
                                            kinds=(*APPLY_KINDS, *REVIEW_KINDS, "refresh")))
        digest = program_digest(project, site.workspace.python_path if site.workspace else None) if infos else ""
        for info in infos:
            mine = events.get(info.name, [])
            waiting = sum(1 for p in _pending(project, info.name, info, mine) if p.waiting)
            out.append(_summary(project, info, mine, waiting, digest,
                                site.depends.get(f"{project.name}/{info.name}", ())))
    return out


def _dependencies(workspace: Workspace) -> dict[str, tuple[str, ...]]:
    from stackwright.workflow.workspace import stack_graph

    graph = stack_graph(workspace)
    return {ref: tuple(deps) for ref, deps in graph.deps.items()}


def _by_stack(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        grouped[event.stack].append(event)
    return grouped


def _summary(project: Project, info: StackInfo, events: list[Event], waiting: int, digest: str,
             depends_on: tuple[str, ...]) -> StackSummary:
    applied = [e for e in events if e.kind in APPLY_KINDS]
    last = applied[-1] if applied else None
    last_apply = None if last is None else LastApply(
        last.kind, last.who, last.at, str(last.data.get("result", "")), last.data.get("checkpoint"))
    facts = stack_file_facts(project, info.name)
    status = _status(facts, applied, waiting, digest)
    return StackSummary(project.name, info.name, facts.environment, info.resource_count,
                        last_apply, waiting, _drift(events), status, depends_on)


@dataclass(frozen=True)
class StackFileFacts:
    """What the stacks page needs of a stack file: its environment and its digest."""

    environment: str
    digest: str


_FACTS: dict[Path, tuple[tuple[int, int], StackFileFacts]] = {}
_FACTS_LOCK = threading.Lock()


def stack_file_facts(project: Project, stack: str) -> StackFileFacts:
    """The stack's environment and config digest (as ``config_digest``), read again only
    when the file changed: a thousand stacks must not mean a thousand YAML parses per page."""
    path = project.stack_file(stack)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return StackFileFacts(environment_name(project, stack), config_digest(project, stack))
    key = (stat.st_mtime_ns, stat.st_size)
    with _FACTS_LOCK:
        cached = _FACTS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    raw = path.read_bytes()
    environment = environment_name(project, stack) if b"environment" in raw else stack
    facts = StackFileFacts(environment, hashlib.sha256(raw).hexdigest())
    with _FACTS_LOCK:
        _FACTS[path] = (key, facts)
    return facts


def _status(facts: StackFileFacts, applied: list[Event], waiting: int, digest: str) -> str:
    if applied and applied[-1].data.get("result") != "succeeded":
        return "failed"
    if waiting:
        return "waiting"
    whole = [e for e in applied if e.kind in ("up", "apply") and not e.data.get("targets")]
    if not whole:
        return "new"
    last = whole[-1].data
    if last.get("program_digest") != digest or last.get("config_digest") != facts.digest:
        return "changed"
    return "applied"


def _drift(events: list[Event]) -> Drift:
    refreshes = [e for e in events if e.kind == "refresh"]
    if not refreshes:
        return Drift()
    last = refreshes[-1]
    drifted = last.data.get("drifted")
    if drifted is None:
        drifted = 0 if last.data.get("checkpoint") is None else None
    return Drift(last.at, drifted, "in sync" if drifted == 0 else "drifted")


# --- plans waiting for review -----------------------------------------------------------


@dataclass(frozen=True)
class PendingPlan:
    """A saved plan that has not been applied: who made it, who approved it, what is missing."""

    project: str
    stack: str
    plan_hash: str
    author: str
    at: float
    counts: Mapping[str, int]
    path: str
    environment: str
    approved_by: tuple[str, ...]
    needed: int
    uncounted: tuple[tuple[str, str], ...]
    rejected_by: str | None
    stale: bool
    """The stack changed since the plan was made: applying it will be refused."""
    missing: int
    """Approvals still needed."""
    waiting: bool
    """Missing approvals, and neither rejected nor stale: a reviewer's turn."""
    new_stack: bool = False
    """Made for a stack the state did not have yet (``run plan --out-dir``): its apply
    creates the stack."""

    @property
    def short(self) -> str:
        return self.plan_hash[:approvals.SHORT]


def pending_plans(site: Site) -> list[PendingPlan]:
    """Every plan not applied yet, on every stack, newest first; with the plans made for
    a stack the state does not have yet. The store is read again at each call, so that
    a stack or a plan made since `serve` started is there."""
    out: list[PendingPlan] = []
    for project in site.projects:
        with reading(project) as store:
            infos = {i.name: i for i in store.list_stacks()}
            events = _by_stack(store.events(kinds=(*REVIEW_KINDS, "apply")))
        for name, mine in events.items():
            out += _pending(project, name, infos.get(name), mine)
    return sorted(out, key=lambda p: p.at, reverse=True)


def _pending(project: Project, stack: str, info: StackInfo | None, events: list[Event]) -> list[PendingPlan]:
    """The stack's plans not applied yet; for a stack not in the state (``info`` None),
    only those made to create it: a plan of a removed stack can never be applied."""
    applied = {e.data.get("plan_hash") for e in events if e.kind == "apply"}
    plans = [e for e in events if e.kind == approvals.PLAN and e.data.get("plan_hash") not in applied
             and (info is not None or e.data.get(NEW_STACK_KEY) is True)]
    if not plans:
        return []
    env = environment_for(project, stack)
    reviews = [e for e in events if e.kind in (approvals.APPROVE, approvals.REJECT)]
    return [_pending_plan(project, stack, info, env, made, reviews) for made in plans]


def _pending_plan(project: Project, stack: str, info: StackInfo | None, env: Any, made: Event,
                  reviews: list[Event]) -> PendingPlan:
    plan_hash = str(made.data.get("plan_hash"))
    judged = approvals.judge(project, env, made, [r for r in reviews if r.data.get("plan_hash") == plan_hash],
                             plan_hash)
    rejected_by = judged.rejection.who if judged.rejection else None
    stale = _stale(made, info)
    return PendingPlan(project.name, stack, plan_hash, made.who, made.at, dict(made.data.get("counts") or {}),
                       str(made.data.get("path") or ""), env.name, judged.approved_by, judged.needed,
                       judged.uncounted, rejected_by, stale, judged.missing,
                       judged.missing > 0 and rejected_by is None and not stale,
                       made.data.get(NEW_STACK_KEY) is True)


def _stale(made: Event, info: StackInfo | None) -> bool:
    """Applying the plan will be refused because the stack is not the one it was made
    against: it moved on, or it is another incarnation (removed and made again, or, for
    a plan made to create it, created some other way). A plan for a new stack is current
    while the stack does not exist."""
    if info is None:
        return False
    lineage = made.data.get("lineage")
    return made.data.get("base_serial") != info.serial or (lineage is not None and lineage != info.lineage)


def find_plan(site: Site, plan_hash: str) -> PendingPlan:
    """A plan by its hash or a prefix of it (at least ``SHORT`` digits)."""
    for plan in pending_plans(site):
        if plan.plan_hash == plan_hash or (len(plan_hash) >= approvals.SHORT and plan.plan_hash.startswith(plan_hash)):
            return plan
    raise approvals.UnknownPlan(f"no plan {plan_hash[:approvals.SHORT]} waits here",
                                hint="it was applied, or made against another state backend")


# --- one stack --------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeRow:
    """One line of a stack's resource tree, depth first: components, then what they hold."""

    urn: str
    name: str
    type: str
    depth: int
    component: bool
    id: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    children: int = 0


@dataclass(frozen=True)
class StackPage:
    summary: StackSummary
    rows: tuple[TreeRow, ...]
    """This page's part of the tree (secrets masked)."""
    total_rows: int
    page: int
    pages: int
    outputs: Mapping[str, Any]
    history: tuple[Checkpoint, ...]
    history_page: int
    history_pages: int


def stack_page(site: Site, project_name: str, stack: str, page: int = 1, history_page: int = 1) -> StackPage:
    """One stack: a page of its resource tree and a page of its checkpoints."""
    project = site.project(project_name)
    summary = next(iter(stack_summaries(site, f"{project.name}/{stack}")), None)
    if summary is None:
        raise NotRecordedError(f"no stack {project_name}/{stack}", hint="the stacks page lists them")
    with reading(project) as store:
        tree = _tree(project, store, stack)
        history = store.history(stack)
    pages = max(1, -(-len(tree.order) // RESOURCE_PAGE))
    page = min(max(1, page), pages)
    visible = tuple(_row(tree, entry) for entry in tree.order[(page - 1) * RESOURCE_PAGE: page * RESOURCE_PAGE])
    newest = history[::-1]
    history_pages = max(1, -(-len(newest) // HISTORY_PAGE))
    history_page = min(max(1, history_page), history_pages)
    return StackPage(summary, visible, len(tree.order), page, pages, shown(tree.outputs),
                     tuple(newest[(history_page - 1) * HISTORY_PAGE: history_page * HISTORY_PAGE]),
                     history_page, history_pages)


@dataclass(frozen=True)
class Tree:
    """A stack's resources at one state serial, in tree order (urn, depth, children)."""

    resources: Mapping[str, ResourceState]
    order: list[tuple[str, int, int]]
    outputs: Mapping[str, Any]


_TREES: OrderedDict[tuple[str, str, str, int], Tree] = OrderedDict()
_TREES_LOCK = threading.Lock()
KEPT_TREES = 8
"""Stacks whose decoded state the view keeps: reading 10,000 resources costs more than
the page's budget, and a stack's state at one serial never changes."""


def _tree(project: Project, store: StateStore, stack: str) -> Tree:
    info = next((i for i in store.list_stacks() if i.name == stack), None)
    if info is None:
        raise NotRecordedError(f"no stack {project.name}/{stack}", hint="the stacks page lists them")
    key = (str(project.root), stack, info.lineage, info.serial)
    with _TREES_LOCK:
        if key in _TREES:
            _TREES.move_to_end(key)
            return _TREES[key]
    snapshot = store.snapshot(stack)
    tree = Tree(snapshot.resources, tree_order(snapshot.resources), snapshot.outputs)
    if snapshot.serial == info.serial:
        with _TREES_LOCK:
            _TREES[key] = tree
            while len(_TREES) > KEPT_TREES:
                _TREES.popitem(last=False)
    return tree


def shown(value: Any) -> Any:
    """A recorded value as people may see it: JSON, secrets masked, unknowns marked."""
    return to_json(masked(value))


@dataclass
class TreeNode:
    row: TreeRow
    children: list[TreeNode] = field(default_factory=list)


def nest(rows: Iterable[TreeRow]) -> list[TreeNode]:
    """A page of depth-first rows as a forest: each row under the nearest row before it
    that is one level up; rows whose parent is on an earlier page become roots."""
    roots: list[TreeNode] = []
    open_nodes: list[TreeNode] = []
    for row in rows:
        node = TreeNode(row)
        while open_nodes and open_nodes[-1].row.depth >= row.depth:
            open_nodes.pop()
        (open_nodes[-1].children if open_nodes else roots).append(node)
        open_nodes.append(node)
    return roots


def tree_order(resources: Mapping[str, ResourceState]) -> list[tuple[str, int, int]]:
    """(urn, depth, number of children) of every resource under its parent, depth first;
    a parent the state does not record (a component) gets an entry of its own."""
    children: dict[str | None, list[str]] = defaultdict(list)
    parent_of: dict[str, str | None] = {urn: state.parent for urn, state in resources.items()}
    for component in {p for p in parent_of.values() if p is not None and p not in resources}:
        parent_of[component] = None
    for urn, above in parent_of.items():
        children[above].append(urn)
    order: list[tuple[str, int, int]] = []
    pending: list[tuple[str, int]] = [(u, 0) for u in sorted(children[None], reverse=True)]
    while pending:
        urn, depth = pending.pop()
        kids = children.get(urn, [])
        order.append((urn, depth, len(kids)))
        pending += [(k, depth + 1) for k in sorted(kids, reverse=True)]
    return order


def _row(tree: Tree, entry: tuple[str, int, int]) -> TreeRow:
    from stackwright.model.resource import urn_name, urn_parts

    urn, depth, kids = entry
    record = tree.resources.get(urn)
    if record is None:
        return TreeRow(urn, urn_name(urn), urn_parts(urn)[2], depth, True, children=kids)
    return TreeRow(urn, urn_name(urn), record.type, depth, kids > 0, record.id, shown(record.inputs),
                   shown(record.outputs), record.protect, kids)


@dataclass(frozen=True)
class CheckpointChanges:
    checkpoint: Checkpoint
    changes: tuple[dict[str, Any], ...]
    """Each change: urn, type, op, error and its property diffs (values masked)."""


def checkpoint_changes(site: Site, project_name: str, stack: str, number: int) -> CheckpointChanges:
    with reading(site.project(project_name)) as store:
        detail = store.checkpoint(stack, number)
    changes = tuple({"urn": c.urn, "type": c.type, "op": c.op, "error": c.error,
                     "diffs": [shown(d) for d in c.diffs]} for c in detail.changes)
    return CheckpointChanges(detail.checkpoint, changes)


# --- the audit log -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    rows: tuple[approvals.AuditRow, ...]
    total: int
    page: int
    pages: int


def audit_page(site: Site, *, stack: str = "", kind: str = "", who: str = "", text: str = "",
               page: int = 1) -> AuditPage:
    """The audit log of every project, newest first, filtered: ``stack`` is
    ``project/stack`` or a stack name, ``text`` is searched in the detail and plan hash."""
    rows: list[approvals.AuditRow] = []
    for project in site.projects:
        with reading(project) as store:
            rows += [_prefixed(project.name, r) for r in approvals.audit(store)]
    chosen = [r for r in rows if _matches(r, stack, kind, who, text)]
    chosen.sort(key=lambda r: r.at, reverse=True)
    pages = max(1, -(-len(chosen) // AUDIT_PAGE))
    page = min(max(1, page), pages)
    return AuditPage(tuple(chosen[(page - 1) * AUDIT_PAGE: page * AUDIT_PAGE]), len(chosen), page, pages)


def _prefixed(project: str, row: approvals.AuditRow) -> approvals.AuditRow:
    return approvals.AuditRow(row.at, f"{project}/{row.stack}", row.kind, row.who, row.plan_hash, row.detail,
                              shown(row.data))


def _matches(row: approvals.AuditRow, stack: str, kind: str, who: str, text: str) -> bool:
    if stack and stack not in (row.stack, row.stack.rpartition("/")[2]):
        return False
    if kind and row.kind != kind:
        return False
    if who and who.lower() not in row.who.lower():
        return False
    return not text or text.lower() in f"{row.detail} {row.plan_hash}".lower()


def age(at: float, now: float | None = None) -> str:
    """``3h ago``: how long ago, coarse."""
    from stackwright.workflow.gate import ago

    return ago(max(0.0, (now or time.time()) - at))


# --- one plan, and its review ------------------------------------------------------------


@dataclass(frozen=True)
class PlanReview:
    """A plan and what a reviewer reads: the review Markdown (secrets masked), or why
    the file could not be read."""

    pending: PendingPlan
    markdown: str
    plan: Any | None
    """The ``Plan`` itself, secrets sealed (``Secret(None)``); None when unreadable."""
    problem: str = ""


def plan_review(site: Site, plan_hash: str) -> PlanReview:
    from stackwright.workflow.markdown import render_plan
    from stackwright.workflow.plan_file import read_plan_file
    from stackwright.workflow.policies import Violation

    pending = find_plan(site, plan_hash)
    try:
        saved = read_plan_file(Path(pending.path))
        if saved.hash != pending.plan_hash:
            raise StateError(f"{pending.path} now holds another plan ({saved.short})")
    except StackwrightError as exc:
        return PlanReview(pending, "", None, exc.headline())
    violations = [Violation(str(v.get("policy")), str(v.get("message")), v.get("urn"), bool(v.get("mandatory")))
                  for v in saved.get("violations") or []]
    plan = saved.pins
    return PlanReview(pending, render_plan(plan, violations), plan)


def review(site: Site, plan_hash: str, who: str, auth: str, *, approve: bool, comment: str = "") -> PendingPlan:
    """Approve or reject a plan as ``who``, authenticated by the web view as ``auth``
    (``proxy`` or ``dev``), through the same functions as `stackwright approve|reject`."""
    from stackwright.operations.session import open_session
    from stackwright.workflow.plan_file import check_target, read_plan_file

    pending = find_plan(site, plan_hash)
    session = open_session(site.project(pending.project), pending.stack, who=who, open_secrets=False,
                           may_be_new=pending.new_stack)
    try:
        session.store.use_cipher(MaskedCipher())
        if Path(pending.path).is_file():
            check_target(session, read_plan_file(Path(pending.path)))
        if approve:
            approvals.approve(session, pending.plan_hash, comment, web=auth)
        else:
            approvals.reject(session, pending.plan_hash, comment, web=auth)
    finally:
        session.close()
    return find_plan(site, pending.plan_hash)


# --- what /metrics exposes ---------------------------------------------------------------


@dataclass
class StackMetrics:
    """Figures of one stack, read from its audit log (see docs/web.md for which
    commands record them)."""

    project: str
    stack: str
    environment: str
    apply_seconds: list[float] = field(default_factory=list)
    preview_seconds: list[float] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    drifted: int = 0
    waiting: int = 0


def metrics(site: Site) -> list[StackMetrics]:
    out: list[StackMetrics] = []
    for project in site.projects:
        with reading(project) as store:
            infos = store.list_stacks()
            events = _by_stack(store.events(kinds=(*APPLY_KINDS, *REVIEW_KINDS, "refresh")))
        for info in infos:
            out.append(_stack_metrics(project, info, events.get(info.name, [])))
    return out


def _stack_metrics(project: Project, info: StackInfo, events: list[Event]) -> StackMetrics:
    figures = StackMetrics(project.name, info.name, environment_name(project, info.name))
    for event in events:
        data = event.data
        if event.kind in APPLY_KINDS:
            if isinstance(data.get("duration"), (int, float)):
                figures.apply_seconds.append(float(data["duration"]))
            for outcome, count in (data.get("steps") or {}).items():
                figures.steps[outcome] = figures.steps.get(outcome, 0) + int(count)
            figures.retries += int(data.get("retries") or 0)
        elif event.kind == approvals.PLAN and isinstance(data.get("preview_seconds"), (int, float)):
            figures.preview_seconds.append(float(data["preview_seconds"]))
    figures.drifted = _drift(events).drifted or 0
    figures.waiting = sum(1 for p in _pending(project, info.name, info, events) if p.waiting)
    return figures


def gate_edges(site: Site, stacks: Iterable[StackSummary]) -> list[tuple[str, str]]:
    """(gating stack, gated stack) for every stack whose environment has ``gate:``."""
    chosen = list(stacks)
    by_env: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in chosen:
        by_env[(s.project, s.environment)].append(s.ref)
    projects = {project.name: project for project in site.projects}
    edges: list[tuple[str, str]] = []
    for s in chosen:
        gate = environment_for(projects.get(s.project) or site.project(s.project), s.stack).gate
        if gate:
            edges += [(ref, s.ref) for ref in by_env.get((s.project, gate), [])]
    return edges
