"""Pause and resume: scale an environment's stack to zero and back through its own config.

An environment declares what "paused" means as config paths and values::

    staging:
      pause: {"platform.node_groups[*].desired_size": 0, "platform.node_groups[*].min_size": 0}

``pause`` writes those values into ``stacks/<stack>.yaml`` and keeps the values they
replace in a ``paused:`` section of the same file — reviewed and versioned with it, and
never out of step with it — then previews and applies like ``up``. ``resume`` writes the
saved values back, removes the section, and applies again. The file is edited in
round-trip mode, so comments and order survive both.

Edits happen in two phases so that a caller can show the config changes first:
``prepare_pause``/``prepare_resume`` check and edit in memory; ``carry_out`` writes the
file and applies. An edit whose apply was never confirmed is undone; once the apply has
started the edit stays (the resources may already be scaled), and the caller says how to
finish or undo it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink
from stackwright.errors import ProjectError, StackwrightError
from stackwright.operations.session import StackSession, open_session
from stackwright.operations.update import Check, Confirm, UpdateOutcome, up
from stackwright.plan.plan import Plan
from stackwright.program.project import Project
from stackwright.workflow.config_paths import Slot, expand, resolve
from stackwright.workflow.environments import Environment, environment_for
from stackwright.workflow.gate import check_gate
from stackwright.workflow.stack_file import StackFile, add_key, remove_key

PAUSED = "paused"
"""The stack file's section that holds the values a pause replaced."""

NOTE = "written by `stackwright env pause`; `stackwright env resume` restores these values"

Action = Literal["pause", "resume"]


class PauseError(StackwrightError):
    """Pausing a paused stack, resuming a running one, or an environment with no ``pause:``."""


@dataclass(frozen=True)
class ConfigChange:
    """One setting a pause or resume rewrites; ``before``/``after`` are None when absent."""

    path: str
    before: Any
    after: Any
    created: bool = False
    """The key did not exist before this edit."""
    removed: bool = False
    """The key is removed by this edit (it did not exist before the pause)."""


@dataclass(frozen=True)
class PauseRecord:
    """The ``paused:`` section: when, by whom, and what to put back."""

    at: str
    by: str
    values: dict[str, Any]
    absent: list[str]


@dataclass
class PreparedEdit:
    """A pause or resume checked and made in memory, not yet written or applied."""

    action: Action
    project: Project
    stack: str
    who: str
    environment: Environment
    file: StackFile
    shown: str
    """The stack file's path as messages show it."""
    changes: list[ConfigChange]


# --- reading ------------------------------------------------------------------------------


def read_record(file: StackFile) -> PauseRecord | None:
    """The stack's pause record, or None when it is not paused."""
    section = file.data.get(PAUSED)
    if section is None:
        return None
    if not isinstance(section, Mapping) or not isinstance(section.get("values", {}), Mapping):
        raise ProjectError(f"`{PAUSED}:` must be a mapping with `values:`", file=str(file.path),
                           hint="it is written by `stackwright env pause`; restore the values by hand and delete it")
    return PauseRecord(at=str(section.get("at", "")), by=str(section.get("by", "")),
                       values=dict(section.get("values") or {}),
                       absent=[str(p) for p in section.get("absent") or []])


def pause_record(project: Project, stack: str) -> PauseRecord | None:
    """Whether ``stack`` is paused, for status displays; None when it is not (or has no file)."""
    path = project.stack_file(stack)
    return read_record(StackFile.load(path, project.relative(path))) if path.exists() else None


# --- preparing ----------------------------------------------------------------------------


def prepare_pause(project: Project, stack: str, who: str | None = None,
                  emergency: str | None = None) -> PreparedEdit:
    """Check that ``stack`` can be paused and set its environment's pause values in memory."""
    return _prepare(project, stack, who, "pause", _pausable, _pause, emergency)


def prepare_resume(project: Project, stack: str, who: str | None = None,
                   emergency: str | None = None) -> PreparedEdit:
    """Check that ``stack`` is paused and put its saved values back in memory."""
    return _prepare(project, stack, who, "resume", _paused_record,
                    lambda edit: _resume(edit, _paused_record(edit)), emergency)


def _pausable(edit: PreparedEdit) -> None:
    record = read_record(edit.file)
    stack = edit.stack
    if record is not None:
        raise PauseError(f"stack {stack!r} is already paused (since {record.at} by {record.by})",
                         file=edit.shown,
                         hint=f"resume it with `stackwright env resume {stack}`; if the pause's apply failed, "
                         f"finish it with `stackwright up --stack {stack}`")
    if not edit.environment.pause:
        raise PauseError(f"environment {edit.environment.name!r} declares no `pause:` settings",
                         file=str(edit.project.root / "stackwright.yaml"),
                         hint=f'add e.g. `pause: {{"platform.node_groups[*].desired_size": 0}}` '
                         f"under environments.{edit.environment.name}")


def _paused_record(edit: PreparedEdit) -> PauseRecord:
    record = read_record(edit.file)
    if record is None:
        raise PauseError(f"stack {edit.stack!r} is not paused ({edit.shown} has no `{PAUSED}:` section)",
                         file=edit.shown, hint=f"pause it with `stackwright env pause {edit.stack}`")
    return record


def _prepare(project: Project, stack: str, who: str | None, action: Action,
             validate: Callable[[PreparedEdit], object], changes: Callable[[PreparedEdit], list[ConfigChange]],
             emergency: str | None) -> PreparedEdit:
    """Open the stack (it must exist), load its file, ``validate`` the request, check the
    stack's gate (pausing applies the program on disk as `up` does), then make the
    ``changes`` in memory. A refusal is a change that stopped before applying: the
    change gateway records it."""
    from stackwright.workflow.gateway import ChangeRequest, Where, attempted, open_for

    request = ChangeRequest(action, emergency=emergency)
    session = open_for(request, Where(project, stack, who), lambda: open_session(project, stack, who))
    try:
        with attempted(session, request):
            path = project.stack_file(stack)
            shown = project.relative(path)
            edit = PreparedEdit(action, project, stack, session.who, environment_for(project, stack),
                                StackFile.load(path, shown), shown, [])
            validate(edit)
            check_gate(session)
            edit.changes = changes(edit)
    finally:
        session.close()
    return edit


def _pause(edit: PreparedEdit) -> list[ConfigChange]:
    """Every slot the pause paths reach, set to its pause value; the old values saved."""
    config = edit.file.config(edit.shown)
    targets: dict[str, tuple[Slot, Any]] = {}
    for pattern, value in edit.environment.pause.items():
        for slot in expand(config, pattern):
            targets[slot.path] = (slot, value)
    if not targets:
        raise PauseError(f"the `pause:` paths of environment {edit.environment.name!r} match nothing "
                         f"in the config", file=edit.shown,
                         hint="check the paths against the stack's `config:` (e.g. platform.node_groups[*].desired_size)")
    changes = [ConfigChange(path, copy.deepcopy(slot.value), value, created=not slot.exists)
               for path, (slot, value) in targets.items()]
    for slot, value in targets.values():
        _put(slot, copy.deepcopy(value))
    edit.file.data[PAUSED] = _record_section(edit.who, changes)
    return changes


def _record_section(who: str, changes: list[ConfigChange]) -> CommentedMap:
    section = CommentedMap()
    section["note"] = NOTE
    section["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    section["by"] = who
    section["values"] = CommentedMap((c.path, c.before) for c in changes if not c.created)
    absent = [c.path for c in changes if c.created]
    if absent:
        section["absent"] = CommentedSeq(absent)
    return section


def _resume(edit: PreparedEdit, record: PauseRecord) -> list[ConfigChange]:
    """The saved values back in place, keys the pause created removed, the record gone.
    Every path is resolved before anything changes, so a stale one changes nothing."""
    config = edit.file.config(edit.shown)
    try:
        restore = [(resolve(config, path), value) for path, value in record.values.items()]
        drop = [resolve(config, path) for path in record.absent]
    except ProjectError as exc:
        raise PauseError(f"cannot resume: {exc.message}", file=edit.shown,
                         hint=f"restore the values listed under `{PAUSED}:` by hand, then delete that section") from None
    changes = [ConfigChange(slot.path, copy.deepcopy(slot.value), value, created=not slot.exists)
               for slot, value in restore]
    changes += [ConfigChange(slot.path, copy.deepcopy(slot.value), None, removed=True)
                for slot in drop if slot.exists]
    for slot, value in restore:
        _put(slot, copy.deepcopy(value))
    for slot in drop:
        if slot.exists and isinstance(slot.container, MutableMapping):
            remove_key(slot.container, str(slot.key))
    remove_key(edit.file.data, PAUSED)
    return changes


def _put(slot: Slot, value: Any) -> None:
    """Set a slot's value in place (comments on its line stay), or add its key."""
    if slot.exists or not isinstance(slot.container, MutableMapping):
        slot.container[slot.key] = value
    else:
        add_key(slot.container, str(slot.key), value)


# --- carrying out ---------------------------------------------------------------------------


def carry_out(edit: PreparedEdit, *, options: ApplyOptions, sink: EventSink, confirm: Confirm,
              check: Callable[[StackSession], Check] | None = None,
              audit: dict[str, Any] | None = None) -> UpdateOutcome:
    """Write the edited stack file, then plan, confirm and apply it like `up`; ``check``
    makes the plan check `up` runs (policies) for the session the apply uses.

    If nothing was confirmed (declined, no terminal, refused by a check, the program
    failed) the file is put back as it was. Once confirmed, the edit stays even if the
    apply fails.
    """
    confirmed = False

    def confirm_and_note(plan: Plan) -> bool:
        nonlocal confirmed
        confirmed = confirm(plan)
        return confirmed

    edit.file.save()
    try:
        session = open_session(edit.project, edit.stack, edit.who)
        try:
            outcome = up(session, options=options, sink=sink, confirm=confirm_and_note,
                         check=check(session) if check is not None else None, audit=audit)
        finally:
            session.close()
    except BaseException:
        if not confirmed:
            edit.file.restore()
        raise
    if outcome.cancelled:
        edit.file.restore()
    return outcome
