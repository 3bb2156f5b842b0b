"""The change gateway: the one function every change of a stack passes through.

Whatever asks for the change — a CLI command, `run up` over a workspace, a later web
view — builds a ``ChangeRequest`` and calls ``change``. The gateway runs the same
sequence for every kind of change:

1. the staging gate (kinds that apply the program on disk: ``up``, ``pause``,
   ``resume``, and ``apply`` of a saved plan against the program it pins);
2. policies, on the plan the change would apply (``up``, ``destroy``, ``rollback``,
   ``pause``, ``resume``, ``apply``); ``state-rm`` refuses a protected resource
   unless forced;
3. protection and approvals: in a protected environment only ``apply`` of a saved
   plan with the approvals the environment needs may change the stack; every other
   kind (``stack-rm`` too, which no saved plan can do) is refused in one line, unless
   the environment sets ``allow_emergency: true`` and the request carries an emergency
   reason;
4. the confirmation prompt, before the lock is taken (nobody waits on a person);
5. the stack lock; planning again under it, which must give the plan that was
   judged and confirmed (for a saved plan: the saved one);
6. apply, and record: a checkpoint and an audit event naming who, the plan digest
   and, for an emergency, the reason.

``rotate`` (`secrets rotate`) applies no plan: it changes no resource and no value,
only how the secrets at rest are sealed, so a protected environment allows it; it takes
the lock of every stack it re-encrypts (``rotation``), and its audit event, naming who,
the key and the stacks, is recorded in each of them.

A change that fails or is refused before its apply starts — at any of these steps,
while its stack is opened (``open_for``: the stack file, its secrets), or while the
program runs or the plan is made — is recorded too: one ``attempt`` event naming the
command, who, the step it stopped at and the error (secrets masked), with no checkpoint
and no change of the state's serial (``attempted``).

A stack is never created implicitly where protection would refuse its change: `run up`
asks ``may_create`` before creating a stack the workspace lists, and refuses the change
of one it left uncreated with ``check_new_stack`` (recorded like any other refusal).

The CLI turns arguments into a request and the result into text; nothing in this
sequence lives only there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from stackwright.dataclass_methods import Compared, FrozenCompared, frozen_record
from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink, MaskingSink
from stackwright.errors import PlanError, StackwrightError
from stackwright.operations.session import StackSession
from stackwright.operations.update import UpdateOutcome
from stackwright.plan.plan import Plan
from stackwright.workflow.environments import Environment, environment_for

if TYPE_CHECKING:
    from stackwright.model.desired import DesiredGraph
    from stackwright.program.project import Project
    from stackwright.state.store import StateStore
    from stackwright.operations.importing import ImportCandidate, ImportResult
    from stackwright.operations.refresh import RefreshOutcome
    from stackwright.workflow.pause import PreparedEdit
    from stackwright.workflow.plan_file import SavedPlan
    from stackwright.workflow.policies import Violation
    from stackwright.workflow.rotation import Rotated

Kind = Literal["up", "destroy", "rollback", "import", "refresh", "state-rm", "stack-rm", "pause", "resume",
               "apply", "rotate"]

COMMANDS: dict[str, str] = {
    "up": "up", "destroy": "destroy", "rollback": "rollback", "import": "import",
    "refresh": "refresh --yes", "state-rm": "state rm", "stack-rm": "stack rm", "pause": "env pause",
    "resume": "env resume", "apply": "apply", "rotate": "secrets rotate",
}
"""How each kind is spelled on the command line, for refusals."""

STATE_EDITS = ("import", "refresh", "state-rm", "stack-rm", "rotate")
"""Kinds that edit the recorded state without applying a plan; their audit events.
(``stack-rm`` removes the stack's state and history; the audit log, kept apart from
them by every state backend, records the removal. ``rotate`` re-encrypts what is
recorded, and the stack files.)"""


class ProtectedEnvironment(StackwrightError):
    """A protected environment changes only through an approved saved plan (or an
    emergency, where allowed)."""


# The classes below are loaded by every change: their methods are written, not
# generated (see stackwright.dataclass_methods); they behave as the ``@dataclass``
# they are declared.


@frozen_record
class ChangeRequest(FrozenCompared):
    """What to change and how; each kind reads the fields it needs."""

    kind: Kind
    targets: tuple[str, ...] = ()
    parallel: int = 16
    refresh: bool = False
    """``up``: read the live objects first and record drift."""
    allow_destroy: bool = False
    emergency: str | None = None
    """The reason for changing a protected environment without an approved plan."""
    checkpoint: int | None = None
    """``rollback``: the checkpoint to return to."""
    urn: str | None = None
    """``state-rm``: the resource to forget."""
    force: bool = False
    """``state-rm``: forget a protected resource, or one others depend on; ``stack-rm``:
    remove a stack that still records resources."""
    resource: tuple[str, str, str] | None = None
    """``import``: type, name and id of the object to adopt."""
    saved: SavedPlan | None = None
    """``apply``: the saved plan."""
    edit: PreparedEdit | None = None
    """``pause``/``resume``: the config edit, prepared."""
    key: str | None = None
    """``rotate``: the key to move the stack to (``--to``); None: a new key of its kind."""

    def __init__(self, kind: Kind, targets: tuple[str, ...] = (), parallel: int = 16, refresh: bool = False,
                 allow_destroy: bool = False, emergency: str | None = None, checkpoint: int | None = None,
                 urn: str | None = None, force: bool = False, resource: tuple[str, str, str] | None = None,
                 saved: SavedPlan | None = None, edit: PreparedEdit | None = None, key: str | None = None) -> None:
        for name, value in (("kind", kind), ("targets", targets), ("parallel", parallel), ("refresh", refresh),
                            ("allow_destroy", allow_destroy), ("emergency", emergency),
                            ("checkpoint", checkpoint), ("urn", urn), ("force", force),
                            ("resource", resource), ("saved", saved), ("edit", edit), ("key", key)):
            object.__setattr__(self, name, value)


@frozen_record
class Prompt(FrozenCompared):
    """What a person confirms: the plan (None for a state edit) and what policies said;
    for ``import``, the object as read and what will be recorded of it."""

    request: ChangeRequest
    plan: Plan | None
    violations: list[Violation] = field(default_factory=list)
    imported: ImportCandidate | None = None

    def __init__(self, request: ChangeRequest, plan: Plan | None, violations: list[Violation] | None = None,
                 imported: ImportCandidate | None = None) -> None:
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "violations", [] if violations is None else violations)
        object.__setattr__(self, "imported", imported)


Confirm = Callable[[Prompt], bool]
Refused = Callable[[Plan, "list[Violation]"], None]
"""Told the plan and the violations when mandatory policies refuse it (to show them)."""


@dataclass(init=False, repr=False, eq=False)
class ChangeResult(Compared):
    """What a change did; the field of its kind is set."""

    request: ChangeRequest
    outcome: UpdateOutcome | None = None
    violations: list[Violation] = field(default_factory=list)
    imported: ImportResult | None = None
    refreshed: RefreshOutcome | None = None
    checkpoint: int | None = None
    """``state-rm``: the checkpoint that recorded it."""
    cancelled: bool = False
    rotated: Rotated | None = None

    def __init__(self, request: ChangeRequest, outcome: UpdateOutcome | None = None,
                 violations: list[Violation] | None = None, imported: ImportResult | None = None,
                 refreshed: RefreshOutcome | None = None, checkpoint: int | None = None,
                 cancelled: bool = False, rotated: Rotated | None = None) -> None:
        self.request = request
        self.outcome = outcome
        self.violations = [] if violations is None else violations
        self.imported = imported
        self.refreshed = refreshed
        self.checkpoint = checkpoint
        self.cancelled = cancelled
        self.rotated = rotated

    @property
    def ok(self) -> bool:
        if self.outcome is not None:
            return self.outcome.ok and not self.outcome.cancelled
        if self.refreshed is not None:
            return not self.refreshed.result.errors
        return not self.cancelled


def change(session: StackSession | None, request: ChangeRequest, *, confirm: Confirm,
           sink: EventSink | None = None, refused: Refused | None = None,
           desired: DesiredGraph | None = None) -> ChangeResult:
    """Carry out ``request`` on ``session``'s stack through the gateway's sequence (see
    the module's docstring); raises a ``StackwrightError`` when a step refuses, having
    changed nothing. ``session`` is None only for ``pause``/``resume``, whose prepared
    edit opens the stack once the edited file is written. ``desired``: for ``up``, the
    program's graph from a run of it that this change follows at once (a sharded run
    runs it when it claims the stack), instead of running it again."""
    with attempted(session, request) as attempt:
        events = attempt.watch(sink if sink is not None else EventSink())
        confirm = attempt.asking(confirm)
        if request.kind in ("pause", "resume"):
            return _config_edit(request, confirm, events, refused, attempt)
        if session is None:
            raise StackwrightError(f"{request.kind} needs an open stack")
        if request.kind == "rotate":
            return _rotate(session, request, confirm, attempt)
        if request.kind in STATE_EDITS:
            return _state_edit(session, request, confirm, events, attempt)
        if request.kind == "apply":
            return _apply_saved(session, request, confirm, events)
        return _planned(session, request, confirm, events, refused, desired, attempt)


# --- the checks -------------------------------------------------------------------------


class Judge:
    """The check every plan-applying kind runs on the plan it would apply, before the
    prompt: policies, then protection. Keeps the violations for the prompt."""

    def __init__(self, session: StackSession, request: ChangeRequest, refused: Refused | None,
                 attempt: Attempt | None = None) -> None:
        self.session = session
        self.request = request
        self.refused = refused
        self.attempt = attempt
        self.violations: list[Violation] = []

    def __call__(self, plan: Plan) -> None:
        if self.attempt is not None:
            self.attempt.plan = plan
        if not plan.has_changes:
            require_unprotected(self.session, self.request)
            return
        from stackwright.workflow.policies import blocking, evaluate, refuse_blocking

        env = environment_for(self.session.project, self.session.stack)
        self.violations = evaluate(plan, self.session.project, env, allow_destroy=self.request.allow_destroy,
                                   providers=self.session.providers)
        if blocking(self.violations):
            if self.refused is not None:
                self.refused(plan, self.violations)
            refuse_blocking(self.violations)
        require_unprotected(self.session, self.request)


def require_unprotected(session: StackSession, request: ChangeRequest) -> None:
    """Refuse, in one line, any kind but ``apply`` in a protected environment, unless it
    is an emergency the environment allows."""
    _require_unprotected(environment_for(session.project, session.stack), session.stack, request)


def may_create(project: Project, stack: str, request: ChangeRequest) -> bool:
    """Whether ``request``, a change of a stack not in the state yet (`run up` of a stack
    the workspace lists), may create it first: not where protection would refuse the
    change (a stack of a protected environment appears only when its approved plan is
    applied, or by an explicit `stack init`), nor when its stack file does not tell its
    environment. Such a stack is left uncreated; ``check_new_stack`` refuses its change."""
    try:
        _require_unprotected(environment_for(project, stack), stack, request)
    except StackwrightError:
        return False
    return True


def check_new_stack(request: ChangeRequest, where: Where) -> None:
    """The change of ``where``'s stack, which is not in the state and which the change
    would have created (``may_create``): if protection refuses it (or the stack file
    cannot be read), raise, recording the failed attempt in the stack's audit log as
    every change records one, although the stack does not exist."""
    with attempted(None, request, Where(where.project, where.stack, where.who, where.store, new=True)) as attempt:
        attempt.phase = OPENING
        env = environment_for(where.project, where.stack)
        attempt.phase = PLANNING
        _require_unprotected(env, where.stack, request)


def _require_unprotected(env: Environment, stack: str, request: ChangeRequest) -> None:
    if not env.protected or request.kind == "apply":
        return
    if request.emergency is None:
        raise ProtectedEnvironment(refusal(env, stack, request.kind))
    if not env.allow_emergency:
        raise ProtectedEnvironment(
            f"environment {env.name!r} is protected and does not allow emergency changes "
            f"(`allow_emergency: true` is not set under environments.{env.name} in stackwright.yaml); "
            f"{_instead(env, request.kind)}")
    if not request.emergency.strip():
        raise ProtectedEnvironment("--emergency needs a reason, e.g. --emergency \"restore the site\"")


def refusal(env: Environment, stack: str, kind: str) -> str:
    """The one line that refuses a change of a protected environment, naming the
    commands to use instead."""
    emergency = ', or --emergency "reason" (allowed here)' if env.allow_emergency else ""
    return (f"environment {env.name!r} is protected: `stackwright {COMMANDS.get(kind, kind)}` may not change "
            f"stack {stack!r}; {_instead(env, kind)}{emergency}")


def _instead(env: Environment, kind: str) -> str:
    if kind == "stack-rm":  # no saved plan removes a stack
        return f"to remove it, first make environments.{env.name} unprotected in stackwright.yaml"
    return "use `stackwright plan --out FILE`, `stackwright approve FILE`, `stackwright apply FILE`"


def _audit(request: ChangeRequest) -> dict[str, Any]:
    """What the change's audit event adds: the emergency's reason."""
    return {"emergency": request.emergency} if request.emergency is not None else {}


def _confirmed(request: ChangeRequest, confirm: Confirm, judge: Judge) -> Callable[[Plan], bool]:
    return lambda plan: confirm(Prompt(request, plan, judge.violations))


# --- kinds that apply a plan --------------------------------------------------------------


def _planned(session: StackSession, request: ChangeRequest, confirm: Confirm, sink: EventSink,
             refused: Refused | None, desired: DesiredGraph | None = None,
             attempt: Attempt | None = None) -> ChangeResult:
    from stackwright.operations.update import destroy, up
    from stackwright.workflow.gate import check_gate

    if request.kind == "up":
        check_gate(session)
    judge = Judge(session, request, refused, attempt)
    common: dict[str, Any] = {"options": ApplyOptions(parallel=request.parallel), "sink": sink,
                              "confirm": _confirmed(request, confirm, judge), "check": judge,
                              "audit": _audit(request)}
    try:
        if request.kind == "up":
            outcome = up(session, targets=request.targets, refresh=request.refresh, desired=desired, **common)
        elif request.kind == "destroy":
            outcome = destroy(session, targets=request.targets, **common)
        elif request.kind == "rollback":
            from stackwright.operations.rollback import rollback

            if request.checkpoint is None:
                raise StackwrightError("rollback needs the checkpoint to return to")
            outcome = rollback(session, request.checkpoint, **common)
        else:
            raise StackwrightError(f"unknown kind of change {request.kind!r}")
    except PlanError as exc:
        if exc.plan is not None and refused is not None:  # refused for protected resources: shown first
            refused(exc.plan, [])
        raise
    return ChangeResult(request, outcome=outcome, violations=judge.violations, cancelled=outcome.cancelled)


def _apply_saved(session: StackSession, request: ChangeRequest, confirm: Confirm,
                 sink: EventSink) -> ChangeResult:
    """A saved plan: its own module checks the gate, policies and approvals in the
    gateway's order, then applies under the lock only if planning again gives it."""
    from stackwright.workflow.plan_file import apply_plan_file

    if request.saved is None:
        raise StackwrightError("apply needs a saved plan")
    outcome = apply_plan_file(session, request.saved, options=ApplyOptions(parallel=request.parallel),
                              sink=sink, confirm=lambda plan: confirm(Prompt(request, plan)))
    return ChangeResult(request, outcome=outcome, cancelled=outcome.cancelled)


def _config_edit(request: ChangeRequest, confirm: Confirm, sink: EventSink,
                 refused: Refused | None, attempt: Attempt | None = None) -> ChangeResult:
    """Pause or resume: the edit was prepared (and the gate checked); the apply of the
    edited config is judged like `up`, and a refusal puts the file back."""
    from stackwright.workflow.pause import carry_out

    if request.edit is None:
        raise StackwrightError(f"{request.kind} needs a prepared config edit")
    judges: list[Judge] = []

    def judge_for(session: StackSession) -> Judge:
        judges.append(Judge(session, request, refused, attempt))
        return judges[-1]

    def confirmed(plan: Plan) -> bool:
        return confirm(Prompt(request, plan, judges[-1].violations if judges else []))

    outcome = carry_out(request.edit, options=ApplyOptions(parallel=request.parallel), sink=sink,
                        confirm=confirmed, check=judge_for, audit=_audit(request))
    return ChangeResult(request, outcome=outcome, violations=judges[-1].violations if judges else [],
                        cancelled=outcome.cancelled)


# --- kinds that edit the recorded state ------------------------------------------------------


def _state_edit(session: StackSession, request: ChangeRequest, confirm: Confirm,
                sink: EventSink, attempt: Attempt | None = None) -> ChangeResult:
    """``import``, ``refresh --yes``, ``state rm`` and ``stack rm``: protection, the
    prompt (for ``import`` after reading the object, to show what will be recorded),
    then the edit (under the stack's lock, taken by the operation, but for ``stack rm``,
    which removes the lock with the rest), then the audit event."""
    require_unprotected(session, request)
    result = ChangeResult(request)
    if request.kind == "stack-rm":
        if not confirm(Prompt(request, None)):
            result.cancelled = True
            return result
        removed = _remove_stack(session, request)
        _done(attempt)
        _record(session, request, result, removed)
        return result
    candidate = _read_import(session, request) if request.kind == "import" else None
    if not confirm(Prompt(request, None, imported=candidate)):
        result.cancelled = True
        return result
    if candidate is not None:
        from stackwright.operations.importing import record_import

        result.imported = record_import(session, candidate, sink)
        result.checkpoint = result.imported.checkpoint
    elif request.kind == "refresh":
        from stackwright.operations.refresh import refresh

        result.refreshed = refresh(session, parallel=request.parallel, record=True, sink=sink)
        result.checkpoint = result.refreshed.checkpoint.number if result.refreshed.checkpoint else None
    else:
        result.checkpoint = _forget(session, request, sink)
    _done(attempt)
    _record(session, request, result)
    return result


def _rotate(session: StackSession, request: ChangeRequest, confirm: Confirm,
            attempt: Attempt | None = None) -> ChangeResult:
    """``secrets rotate``: no protection check (it changes no resource and no value,
    only how secrets are sealed: a protected environment allows it, audited), the
    prompt, the rotation under the lock of every stack it re-encrypts, then its audit
    event in each of them."""
    from stackwright.workflow.approvals import ROTATE
    from stackwright.workflow.rotation import rotate

    result = ChangeResult(request)
    if not confirm(Prompt(request, None)):
        result.cancelled = True
        return result
    result.rotated = rotate(session.project, session.store, session.stack, request.key, session.who)
    _done(attempt)
    data = {"result": "succeeded", "stack": session.stack, "key": result.rotated.key,
            "stacks": list(result.rotated.stacks), "config_values": result.rotated.config_values}
    for stack in result.rotated.stacks:
        if session.store.stack_exists(stack):
            session.store.record_event(stack, ROTATE, session.who, data)
    return result


def _read_import(session: StackSession, request: ChangeRequest) -> ImportCandidate:
    """The object ``import`` adopts, read before the prompt so that the person sees what
    will be recorded."""
    from stackwright.operations.importing import read_import

    if request.resource is None:
        raise StackwrightError("import needs a type, a name and an id")
    return read_import(session, *request.resource)


def _forget(session: StackSession, request: ChangeRequest, sink: EventSink) -> int | None:
    from stackwright.operations.state_edit import forget

    if request.urn is None:
        raise StackwrightError("state rm needs a URN")
    return forget(session, request.urn, force=request.force, sink=sink)


def _remove_stack(session: StackSession, request: ChangeRequest) -> dict[str, Any]:
    """Remove the stack's state and history; what its audit event records of it."""
    info = next((i for i in session.store.list_stacks() if i.name == session.stack), None)
    session.store.remove_stack(session.stack, force=request.force)
    return {"lineage": info.lineage if info else None, "resources": info.resource_count if info else 0,
            "force": request.force}


def _record(session: StackSession, request: ChangeRequest, result: ChangeResult,
            extra: dict[str, Any] | None = None) -> None:
    """The audit event of a state edit: who, what, the checkpoint, and an emergency's reason."""
    data: dict[str, Any] = {"result": "succeeded" if result.ok else "failed",
                            "checkpoint": result.checkpoint, **(extra or {}), **_audit(request)}
    if request.urn is not None:
        data["urn"] = request.urn
    if result.imported is not None:
        data["urn"] = result.imported.urn
    if result.refreshed is not None:
        data["drifted"] = sum(1 for d in result.refreshed.result.drift if d.kind != "outputs")
    session.store.record_event(session.stack, request.kind, session.who, data)


# --- changes that stop before applying --------------------------------------------------------

OPENING, PLANNING, CONFIRMING, APPLYING, DONE = "opening", "planning", "confirmation", "applying", "done"
"""How far a change got (``Attempt.phase``). From ``APPLYING`` on, the change's checkpoint
and its own audit event tell what happened; before, nothing would."""

MESSAGE_LIMIT = 2000
"""Characters of an error kept in its attempt's event: a provider may answer with pages."""


class Where:
    """The stack a change is for, known before (or without) an open session: enough to
    record its failed attempt in the stack's audit log."""

    __slots__ = ("project", "stack", "who", "store", "new")

    def __init__(self, project: Project, stack: str, who: str | None, store: StateStore | None = None,
                 new: bool = False) -> None:
        self.project = project
        self.stack = stack
        self.who = who
        self.store = store
        """The project's store, open already (a run's): recorded in, left open."""
        self.new = new
        """The change would have created the stack (`run up` of a stack the workspace lists)."""


class Attempt:
    """One change on its way through the gateway: how far it got, and the plan judged,
    whose secrets an error may quote. ``attempted`` records it if it fails before
    applying."""

    def __init__(self, request: ChangeRequest, session: StackSession | None, where: Where | None = None) -> None:
        self.request = request
        self.session = session
        self.where = where
        self.phase = PLANNING
        self.plan: Plan | None = None

    @property
    def creates(self) -> bool:
        """The change would have created its stack: `run up` of a stack the workspace
        lists, `apply` of a plan made for a new stack. Its attempt is recorded although
        the stack does not exist (yet)."""
        saved = self.request.saved
        return (self.where is not None and self.where.new) or (saved is not None and saved.new_stack)

    def watch(self, sink: EventSink) -> EventSink:
        """``sink``, relayed, noting when the apply starts."""
        return _ApplyWatch(sink, self)

    def asking(self, confirm: Confirm) -> Confirm:
        """``confirm``, noting that a person (or a refusal to ask) has the change meanwhile."""
        def asked(prompt: Prompt) -> bool:
            self.phase = CONFIRMING
            answer = confirm(prompt)
            self.phase = PLANNING
            return answer

        return asked

    def failed(self, exc: Exception) -> None:
        """Record ``exc`` as this attempt's end, unless the apply had started (its
        checkpoint tells), or it is a person leaving the prompt (as declining, it records
        nothing). A recording that fails is added to ``exc`` as a note, never in its place."""
        if self.phase in (APPLYING, DONE) or (self.phase == CONFIRMING and not isinstance(exc, StackwrightError)):
            return
        try:
            self._record(exc)
        except Exception as problem:  # noqa: BLE001 - told with the original error, which goes on
            exc.add_note(f"this failed attempt could not be recorded in the audit log: {one_line(problem)}")

    def _record(self, exc: Exception) -> None:
        session, close = (self.session, False) if self.session is not None else self._stand_in()
        if session is None:
            return
        try:
            store = session.store
            if not store.read_only and (self.creates or store.stack_exists(session.stack)):
                from stackwright.workflow.approvals import ATTEMPT

                store.record_event(session.stack, ATTEMPT, session.who, self._data(exc, session))
        finally:
            if close:
                session.close()

    def _stand_in(self) -> tuple[StackSession | None, bool]:
        """A session to record in when the change has none, and whether to close it: on
        the stack of a ``pause``/``resume`` edit (the one that applied it is closed by
        now), else on the stack's state alone, its stack file unread (it may be what
        failed): no config, so no secret of it to mask (none could be opened). None when
        the state store cannot be opened either."""
        where = self.where
        edit = self.request.edit
        if edit is not None:
            from stackwright.operations.session import open_session

            try:
                return open_session(edit.project, edit.stack, edit.who), True
            except StackwrightError:
                where = Where(edit.project, edit.stack, edit.who)
        if where is None:
            return None, False
        from stackwright.model.context import ConfigSource
        from stackwright.operations.session import open_store
        from stackwright.providers.registry import ProviderRegistry

        try:
            store = where.store if where.store is not None else open_store(where.project)
        except StackwrightError:
            return None, False
        session = StackSession(where.project, where.stack, store, ConfigSource({}, ""), ProviderRegistry(), where.who)
        return session, where.store is None

    def _data(self, exc: Exception, session: StackSession) -> dict[str, Any]:
        request = self.request
        data: dict[str, Any] = {"command": COMMANDS.get(request.kind, request.kind),
                                "stage": stage_of(exc, request.kind, self.phase),
                                "error": self._masked(one_line(exc), session), "error_type": type(exc).__name__}
        if request.targets:
            data["targets"] = sorted(request.targets)
        if request.saved is not None:
            data["plan_hash"] = request.saved.hash
        if request.checkpoint is not None:
            data["rollback_to"] = request.checkpoint
        if request.urn is not None:
            data["urn"] = request.urn
        return {**data, **_audit(request)}

    def _masked(self, message: str, session: StackSession) -> str:
        """``message`` with every secret of the stack's config and of the plan judged
        masked, then cut to ``MESSAGE_LIMIT`` (after masking: no part of a secret is left)."""
        from stackwright.model.values import mask_message

        secrets = session.config_secrets()
        if self.plan is not None:
            from stackwright.engine.apply import plan_secrets

            plan_secrets(self.plan, secrets)
        masked = mask_message(message, secrets)
        return masked if len(masked) <= MESSAGE_LIMIT else masked[:MESSAGE_LIMIT - 1] + "…"


class _ApplyWatch(MaskingSink):
    """Relays every event (a masking sink with nothing to mask) and moves its attempt
    on to ``APPLYING`` when the apply starts."""

    def __init__(self, inner: EventSink, attempt: Attempt) -> None:
        super().__init__(inner, set())
        self.attempt = attempt

    def apply_started(self) -> None:
        self.attempt.phase = APPLYING
        super().apply_started()


@contextmanager
def attempted(session: StackSession | None, request: ChangeRequest, where: Where | None = None) -> Iterator[Attempt]:
    """Record in the stack's audit log, as one ``attempt`` event, a change that fails in
    the block before applying: the command, who, the stage it stopped at and the error
    on one line. No checkpoint is made and the state's serial stays (saved plans pinned
    to it stay valid). Nothing is recorded for a stack that does not exist, unless the
    change would have created it (``Attempt.creates``), nor in a store opened read-only
    (which refuses every change anyway). The error goes on as it was.

    This is the one place the rule lives: ``change`` runs in it, and so does opening the
    stack for a change (``open_for``). ``session`` is None while the stack is not open:
    then ``where`` names it (or, for ``pause``/``resume``, the request's edit does)."""
    attempt = Attempt(request, session, where)
    try:
        yield attempt
    except Exception as exc:
        attempt.failed(exc)
        raise


def open_for(request: ChangeRequest, where: Where, opener: Callable[[], StackSession]) -> StackSession:
    """``opener()``: the session of ``where``'s stack that ``request`` will change. A
    failure to open it (its stack file is not valid YAML or has an unknown key, a secret
    in it cannot be decrypted, the project's environments are invalid) is a change that
    stopped before applying, recorded as ``attempted`` records any (stage ``opening``)."""
    with attempted(None, request, where) as attempt:
        attempt.phase = OPENING
        return opener()


def _done(attempt: Attempt | None) -> None:
    """The state edit was made: a failure to audit it now is no failed attempt."""
    if attempt is not None:
        attempt.phase = DONE


def stage_of(exc: Exception, kind: str, phase: str) -> str:
    """The step of the gateway's sequence ``exc`` stopped a change at, in words."""
    if phase == OPENING:
        return phase
    for types, stage in _stages():
        if isinstance(exc, types):
            return stage
    if phase == CONFIRMING:
        return phase
    return "state edit" if kind in STATE_EDITS else PLANNING


def _stages() -> tuple[tuple[tuple[type[Exception], ...], str], ...]:
    """Which errors say which step, most specific first (a policy's refusal of a saved
    plan is a refusal of the saved plan, but a policy's)."""
    from stackwright.errors import (
        ConfigError, GraphError, InputError, LockHeldError, ProgramError, ProviderError, StackNotApplied,
    )
    from stackwright.workflow.approvals import ApprovalError
    from stackwright.workflow.gate import GateClosed
    from stackwright.workflow.pause import PauseError
    from stackwright.workflow.plan_file import PlanFileError, PolicyBlocked
    from stackwright.workflow.policies import PolicyError

    return (((GateClosed,), "staging gate"), ((PolicyError, PolicyBlocked), "policy"),
            ((ProtectedEnvironment,), "protection"), ((ApprovalError,), "approval"),
            ((PlanFileError,), "saved plan"), ((PauseError,), "config edit"),
            ((ProgramError, ConfigError, InputError, GraphError, StackNotApplied), "program"),
            ((LockHeldError,), "lock"), ((ProviderError,), "provider"))


def one_line(exc: BaseException) -> str:
    """The error as the CLI's error line shows it, on one line (no hint)."""
    text = exc.headline() if isinstance(exc, StackwrightError) else f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
