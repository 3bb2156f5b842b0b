"""Saved plans: `stackwright plan --out FILE` and `stackwright apply FILE`.

A plan file is an envelope around the whole ``Plan`` (``Plan.to_json``, secrets
encrypted by ``seal``), which pins everything the change depends on — the stack's
lineage and state serial, the program and config digests, the provider versions — and
holds every step with its exact inputs and what the state recorded before it. Apply
runs the saved steps themselves, and refuses unless every pin still holds and planning
again now gives the very same steps, so what was reviewed and approved is what runs
(values it left unknown, read from another stack applied since, aside: ``plan.compare``).
The format is in docs/plan-file.md.

The file ends in a SHA-256 of the canonical JSON of everything else, and must read
back byte for byte as Stackwright writes it: any edited byte makes it another plan
(and approvals name plans by that hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink
from stackwright.errors import StackwrightError, StateError
from stackwright.model.resource import urn_name
from stackwright.model.values import from_json, to_json
from stackwright.operations.keyring import Keyring
from stackwright.operations.session import StackSession, require_no_pending
from stackwright.operations.update import Confirm, UpdateOutcome, apply_saved, preview, preview_new
from stackwright.plan.compare import Reads, compare, reads_nothing, reads_of
from stackwright.plan.plan import Plan, Step
from stackwright.program.digest import ProgramDigest, config_digest
from stackwright.state.records import Snapshot, StackRecord
from stackwright.workflow import approvals, policies
from stackwright.workflow.environments import environment_for
from stackwright.workflow.gate import check_gate
from stackwright.workflow.secrets import decrypt_tree, encrypt_tree, stack_keyring

FORMAT = "stackwright-plan"
VERSION = 2
HASH_KEY = "hash"
PROGRAM_FILES_KEY = "program_files"
NEW_STACK_KEY = "new_stack"
MAX_CHANGES = 3
NEW_PLAN_HINT = "make a new plan with `stackwright plan --out FILE`, review it and apply that"


class PlanFileError(StackwrightError):
    """A saved plan may not be applied (or approved); the message says why."""


class PlanTampered(PlanFileError):
    """The file is not byte for byte what `plan` wrote."""


class WrongTarget(PlanFileError):
    """The plan is for another project, stack, or incarnation (lineage) of the stack."""


class StalePlan(PlanFileError):
    """The stack's state moved on since the plan was made."""


class SourceChanged(PlanFileError):
    """The program, its config or the providers are not those the plan was made with."""


class PlanDiffers(PlanFileError):
    """Planning now would do something the saved plan does not say."""


class PolicyBlocked(PlanFileError):
    """Mandatory policy violations; ``violations`` lists them all."""

    def __init__(self, message: str, violations: list[policies.Violation], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.violations = violations


# --- the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedPlan:
    """A plan file read back and verified against its hash."""

    document: Mapping[str, Any]
    path: Path

    @property
    def hash(self) -> str:
        return str(self.document[HASH_KEY])

    @property
    def stack(self) -> str:
        return self.pins.stack

    @property
    def short(self) -> str:
        return self.hash[:approvals.SHORT]

    @property
    def new_stack(self) -> bool:
        """Made for a stack the state did not have yet: its apply creates the stack."""
        return self.document.get(NEW_STACK_KEY) is True

    def get(self, name: str) -> Any:
        """A field of the envelope (None when absent)."""
        return self.document.get(name)

    @cached_property
    def pins(self) -> Plan:
        """The plan with its secrets still sealed: enough for its pins, and to show it."""
        return self.plan(None)

    def plan(self, key: Keyring | None) -> Plan:
        """The Plan the file holds, exactly as it was written; with ``key=None``
        secrets stay sealed (``Secret(None)``), which is enough to show it."""
        try:
            return Plan.from_json(unseal(self.document["plan"], key))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanTampered(f"{self.path} is not a valid plan file ({exc!r})",
                               hint=NEW_PLAN_HINT) from None


def seal(plan: Plan, key: Keyring) -> Any:
    """``plan.to_json()`` with every secret encrypted: with ``unseal``, the one place a
    plan file's secrets are handled."""
    return encrypt_tree(from_json(plan.to_json()), key)


def unseal(sealed: Any, key: Keyring | None) -> Any:
    """Inverse of ``seal``: the JSON ``Plan.from_json`` reads."""
    return to_json(decrypt_tree(sealed, key))


def content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of all but the hash."""
    body = {k: v for k, v in document.items() if k != HASH_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render(document: Mapping[str, Any]) -> bytes:
    """The one byte form of a plan file: indented, sorted keys, ASCII (other
    characters escaped), final newline."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
    return (text + "\n").encode("utf-8")


def write_plan_file(path: Path, document: Mapping[str, Any]) -> None:
    """Atomically: a reader never sees half a plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(render(document))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_plan_file(path: Path) -> SavedPlan:
    """The verified plan, or PlanTampered naming what is wrong with the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror}",
                            hint="pass the file `stackwright plan --out` wrote") from None
    document = _parse(path, data)
    version = document.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise PlanFileError(f"{path} is a version {version} plan file; this Stackwright reads "
                            f"version {VERSION}", hint="apply it with the Stackwright that made it")
    if document.get(HASH_KEY) != content_hash(document):
        raise PlanTampered(f"{path} was altered after it was written: its content hash does not match",
                           hint=NEW_PLAN_HINT)
    if render(document) != data:
        raise PlanTampered(f"{path} was altered after it was written: it is not byte for byte "
                           "as Stackwright wrote it", hint=NEW_PLAN_HINT)
    if isinstance(version, int) and not isinstance(version, bool) and version < VERSION:
        raise PlanFileError(f"{path} is a version {version} plan file, which this Stackwright no "
                            "longer applies", hint=NEW_PLAN_HINT)
    if version != VERSION:
        raise PlanTampered(f"{path} is not a valid plan file (version {version!r})", hint=NEW_PLAN_HINT)
    return SavedPlan(document, path)


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlanTampered(f"{path} is not a readable Stackwright plan file (altered or truncated)",
                           hint=NEW_PLAN_HINT)
    return document


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON, and `plan` never writes them."""
    raise ValueError(name)


def plan_document(plan: Plan, session: StackSession, *, key: Keyring,
                  violations: list[policies.Violation], allow_destroy: bool,
                  program_files: Mapping[str, str] | None = None, new_stack: bool = False) -> dict[str, Any]:
    """The plan file's content, hash included (docs/plan-file.md): the sealed plan and
    what its review needs besides."""
    document: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "id": uuid.uuid4().hex,
        "created_by": session.who, "created_at": approvals.iso_time(time.time()),
        "environment": environment_for(session.project, session.stack).name,
        "allow_destroy": allow_destroy,
        "violations": [_violation_json(v) for v in violations],
        "summary": plan.counts(),
        "plan": seal(plan, key),
    }
    if program_files is not None:
        document[PROGRAM_FILES_KEY] = dict(program_files)
    if new_stack:
        document[NEW_STACK_KEY] = True
    document[HASH_KEY] = content_hash(document)
    return document


def _relative_decls(plan: Plan, session: StackSession) -> Plan:
    """Declaration sites relative to the project: the file travels to other machines."""
    def relative(decl: str | None) -> str | None:
        if not decl or ":" not in decl:
            return decl
        file, _, line = decl.rpartition(":")
        return f"{session.project.relative(file)}:{line}"

    return replace(plan, steps=tuple(replace(s, decl=relative(s.decl)) for s in plan.steps))


def _violation_json(v: policies.Violation) -> dict[str, Any]:
    return {"policy": v.policy, "message": v.message, "urn": v.urn, "mandatory": v.mandatory}


# --- making a plan file -----------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """What `plan` wrote, for the CLI to show."""

    plan: Plan
    saved: SavedPlan
    violations: list[policies.Violation] = field(default_factory=list)


def save_plan(session: StackSession, path: Path, *, allow_destroy: bool = False,
              key: str | None = None, new: bool = False, refresh: bool = False) -> Written:
    """Plan as `preview` does (``refresh``: against the live objects; so too when the
    last plain ``refresh`` found drift), check policies, record a ``plan`` audit event,
    write the file (where the state is read-only, the event is refused and no file is
    left behind).

    ``new``: the stack is not in the state yet. The plan creates everything, against
    an empty state of serial 0 and a lineage chosen now, which its apply gives the
    stack it creates (``create_planned_stack``)."""
    if not new:
        require_no_pending(session)
    program = session.program_fingerprint()
    check_gate(session, program.digest)
    started = time.monotonic()
    plan = _relative_decls(preview_new(session, str(uuid.uuid4())) if new else preview(session, refresh=refresh),
                           session)
    preview_seconds = round(time.monotonic() - started, 3)
    violations = policies.evaluate(plan, session.project, environment_for(session.project, session.stack),
                                   allow_destroy=allow_destroy)
    _refuse_blocking(violations, "plan not written")
    # The files the plan's digest was made from, to tell which changed; left out if
    # one changed while planning (the plan pins the digest taken before the program ran).
    files = program.files if program.digest == plan.program_digest else None
    document = plan_document(plan, session, key=stack_keyring(session), violations=violations,
                             allow_destroy=allow_destroy, program_files=files, new_stack=new)
    session.store.record_event(session.stack, approvals.PLAN, session.who, {
        "plan_hash": document[HASH_KEY], "program_digest": plan.program_digest,
        "config_digest": plan.config_digest,
        "base_serial": plan.base_serial, "lineage": plan.lineage, "counts": plan.counts(), "path": str(path),
        **({"refreshed": True} if plan.refreshed else {}),
        "environment": document["environment"], "advisories": len(violations),
        "preview_seconds": preview_seconds, **({NEW_STACK_KEY: True} if new else {}),
        **({approvals.CO_AUTHORS: list(session.co_authors)} if session.co_authors else {}),
        **approvals.author_signature(session, document[HASH_KEY], key),
    })
    write_plan_file(path, document)
    return Written(plan, SavedPlan(document, path), violations)


def _refuse_blocking(violations: list[policies.Violation], what: str) -> None:
    blocked = policies.blocking(violations)
    if blocked:
        raise PolicyBlocked(
            f"{what}: {len(blocked)} mandatory policy violation(s): "
            + "; ".join(f"{v.policy}: {v.message}" for v in blocked[:3])
            + (f"; and {len(blocked) - 3} more" if len(blocked) > 3 else ""),
            blocked, hint="fix the resources, or make the policy advisory for this "
            "environment in stackwright.yaml (or pass --allow-destroy if you mean to delete)",
        )


# --- applying a plan file ---------------------------------------------------------------


def check_target(session: StackSession, saved: SavedPlan) -> None:
    """The plan must be for this project and this incarnation of this stack (read
    without opening any secret: reviewers need no key). A plan made for a new stack
    fits it while it does not exist, and once its apply created it."""
    lineage = next((s.lineage for s in session.store.list_stacks() if s.name == session.stack), None)
    if lineage is None:
        if not saved.new_stack:
            raise WrongTarget(f"stack {session.stack!r} was removed since plan {saved.short} was made",
                              hint=NEW_PLAN_HINT)
        lineage = saved.pins.lineage
    for name, plan_value, here in (("project", saved.pins.project, session.project.name),
                                   ("stack", saved.stack, session.stack),
                                   ("lineage", saved.pins.lineage, lineage)):
        if plan_value != here:
            raise WrongTarget(f"plan {saved.short} is for {name} {plan_value!r}, not {here!r}"
                              f"{_since(saved) if name == 'lineage' else ''}", hint=NEW_PLAN_HINT)


def _since(saved: SavedPlan) -> str:
    if saved.new_stack:
        return " (the plan was made for a new stack, and another stack of that name was created since)"
    return " (the stack was removed and created again since)"


def create_planned_stack(session: StackSession, saved: SavedPlan) -> bool:
    """Create the stack a plan for a new stack was made for: empty, at serial 0, with the
    lineage the plan pins, so that applying the plan again after a refusal under the
    lock finds the same stack. False if an apply of this plan created it meanwhile."""
    record = StackRecord(session.stack, saved.pins.lineage, 0, time.time(), None, "{}", [], [], [], [])
    try:
        session.store.import_stack(record)
    except StateError:
        if not session.store.stack_exists(session.stack):
            raise
        check_target(session, saved)  # created meanwhile: by an apply of this very plan, or refused
        return False
    return True


def check_sources(session: StackSession, saved: SavedPlan) -> None:
    """The program and the stack's config must be those the plan was made from."""
    program = session.program_fingerprint()
    if saved.pins.program_digest != program.digest:
        _source_changed(saved, "program", _program_changes(saved, program))
    if saved.pins.config_digest != config_digest(session.project, session.stack):
        _source_changed(saved, "config", session.project.relative(session.project.stack_file(session.stack)))


def _source_changed(saved: SavedPlan, name: str, where: str) -> NoReturn:
    raise SourceChanged(f"the {name} changed since plan {saved.short} was made ({where})",
                        hint=f"restore the {name} the plan was made from, or {NEW_PLAN_HINT}")


def _program_changes(saved: SavedPlan, program: ProgramDigest) -> str:
    """Which files changed, from the digests the plan file lists per file (a plan
    without them, or whose list is not the pinned digest's, names none)."""
    before = saved.get(PROGRAM_FILES_KEY)
    if (not isinstance(before, dict) or not all(isinstance(v, str) for v in before.values())
            or ProgramDigest(before).digest != saved.pins.program_digest):
        return "one of its files or stackwright.yaml"
    changes = program.changes(before)
    more = f"; and {len(changes) - MAX_CHANGES} more" if len(changes) > MAX_CHANGES else ""
    return "; ".join(changes[:MAX_CHANGES]) + more


def check_stale(saved: SavedPlan, snapshot: Snapshot) -> None:
    if snapshot.serial != saved.pins.base_serial:
        raise StalePlan(
            f"stack {saved.stack!r} changed since plan {saved.short} was made "
            f"(state serial {saved.pins.base_serial}, now {snapshot.serial})",
            hint=NEW_PLAN_HINT)


def check_providers(session: StackSession, saved: SavedPlan) -> None:
    pinned = saved.pins.providers
    now = session.providers.versions()
    for name in sorted(set(pinned) | set(now)):
        if pinned.get(name) != now.get(name):
            raise SourceChanged(
                f"provider {name!r} is version {now.get(name, 'not used')} now; plan {saved.short} "
                f"was made with {pinned.get(name, 'none')}",
                hint=f"install the provider version the plan was made with, or {NEW_PLAN_HINT}")


def check_same_plan(saved: Plan, now: Plan, reads: Reads = reads_nothing) -> Plan:
    """The plan to apply: ``saved``, where planning now gives nothing it does not say.
    A value it left unknown may be known now (another stack it reads was applied
    since); a step it changes only for such values, which came out as recorded, is
    left unchanged, noted (``plan.compare``). ``reads`` names the stacks read in a
    refusal."""
    compared = compare(saved, now, reads, settle=True)
    problems = compared.problems
    if problems:
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        raise PlanDiffers(f"applying would do something the plan did not say: {problems[0]}{more}",
                          hint=NEW_PLAN_HINT)
    if not compared.settled:
        return saved
    # The outputs too, as planned now: they differ from the saved ones only where those
    # were unknown, and a step left unchanged leaves its outputs as recorded.
    return replace(saved, steps=tuple(compared.settled.get(s.urn, s) for s in saved.steps), outputs=now.outputs)


def left_unchanged(saved: Plan, applied: Plan) -> list[Step]:
    """The steps of ``saved`` that ``check_same_plan`` left unchanged in ``applied``,
    as they are there (noted)."""
    ops = {s.urn: s.op for s in saved.steps}
    return [s for s in applied.steps if ops.get(s.urn, s.op) is not s.op]


def _already_confirmed(plan: Plan) -> bool:
    """Applying a plan for a new stack asks before it creates the stack, not again."""
    return True


def apply_plan_file(session: StackSession, saved: SavedPlan, *, options: ApplyOptions,
                    sink: EventSink, confirm: Confirm) -> UpdateOutcome:
    """Apply exactly the saved plan, or refuse with the first reason it may not run.

    Cheap checks first (target, sources), then the change gateway's order: staging
    gate, policies, approvals; then the program runs, and under the lock: the state
    serial, approvals again (a rejection may have just arrived) and planning again,
    which must give the very same steps. A plan made for a new stack creates the stack
    once confirmed, just before the lock.
    """
    check_target(session, saved)
    check_sources(session, saved)
    approvals.plan_event(session.store, session.stack, saved.hash)
    check_gate(session, saved.pins.program_digest)
    plan = saved.plan(stack_keyring(session))
    _refuse_blocking(policies.evaluate(plan, session.project, environment_for(session.project, session.stack),
                                       allow_destroy=bool(saved.get("allow_destroy"))), "plan not applied")
    approved = approvals.require_approved(session, saved.hash)
    desired = session.run_program()
    created = False
    if saved.new_stack and not session.store.stack_exists(session.stack):
        # Asked before the stack is made, so that "no" changes nothing.
        if plan.has_changes and not confirm(plan):
            return UpdateOutcome(plan=plan, cancelled=True)
        created = create_planned_stack(session, saved)
        confirm = _already_confirmed

    audit: dict[str, Any] = {"plan_hash": saved.hash, "path": str(saved.path),
                             "approved_by": list(approved.approved_by),
                             **({"created_stack": True} if created else {})}

    def verify(snapshot: Snapshot, now: Plan) -> Plan:
        check_stale(saved, snapshot)
        approvals.require_approved(session, saved.hash)
        applied = check_same_plan(plan, now, reads_of(desired))
        check_providers(session, saved)
        unchanged = sorted(s.urn for s in left_unchanged(plan, applied))
        if unchanged:
            audit["left_unchanged"] = unchanged  # read when the apply is audited, after this
        return applied

    outcome = apply_saved(session, plan, desired, options=options, sink=sink, confirm=confirm,
                          verify=verify, extra=audit)
    outcome.notes = tuple(f"{s.type} {urn_name(s.urn)}: {s.notes[-1]}" for s in left_unchanged(plan, outcome.plan))
    return outcome
