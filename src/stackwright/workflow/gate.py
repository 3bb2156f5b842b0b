"""The staging gate: a stack whose environment declares ``gate: staging`` may only be
updated with a program that staging has already applied successfully.

Config may differ (production has more nodes than staging); the program may not. The
evidence is the audit log: the latest ``up``/``apply`` event with result
``succeeded`` on any stack of the gating environment, compared by ``program_digest``.

Callers: the change gateway (``workflow.gateway``) for ``up`` and `run up`, before
planning; ``env pause|resume`` when preparing the edit; and the saved-plan
``plan``/``apply`` commands, which pass the digest their plan pins.
"""

from __future__ import annotations

import time

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import ProjectError, StackwrightError
from stackwright.operations.session import StackSession
from stackwright.program.digest import program_digest
from stackwright.program.project import Project
from stackwright.state.records import Event
from stackwright.state.store import StateStore
from stackwright.workflow.environments import environment_for, environment_name

APPLY_KINDS = ("up", "apply")
"""Events that apply the whole current program; rollback and destroy do not."""

SHOWN_DIGEST = 12
"""How many hex digits of a digest messages show: enough to tell programs apart."""


class GateClosed(StackwrightError):
    """The gating environment has not applied this program yet."""


# Every `up` loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as ``@dataclass(frozen=True)``.


@frozen_record
class GateVerdict(FrozenCompared):
    """What the gate found for one stack: enough to explain a refusal."""

    stack: str
    environment: str
    gate: str | None
    program_digest: str
    last_success: Event | None
    """The gating environment's latest successful apply, if any."""

    def __init__(self, stack: str, environment: str, gate: str | None, program_digest: str,
                 last_success: Event | None) -> None:
        object.__setattr__(self, "stack", stack)
        object.__setattr__(self, "environment", environment)
        object.__setattr__(self, "gate", gate)
        object.__setattr__(self, "program_digest", program_digest)
        object.__setattr__(self, "last_success", last_success)

    @property
    def passed(self) -> bool:
        """Ungated stacks always pass; gated ones need the same program as the gate's last success."""
        if self.gate is None:
            return True
        return self.last_success is not None and self.gated_digest == self.program_digest

    @property
    def gated_digest(self) -> str | None:
        """The program digest the gating environment last applied successfully."""
        if self.last_success is None:
            return None
        value = self.last_success.data.get("program_digest")
        return value if isinstance(value, str) else None


def evaluate_gate(project: Project, store: StateStore, stack: str,
                  digest: str | None = None) -> GateVerdict:
    """The gate's verdict for ``stack`` against program ``digest`` (default: the program
    on disk now). Reads only; a preview can use it to warn without refusing."""
    env = environment_for(project, stack)
    current = digest if digest is not None else program_digest(project)
    if env.gate is None:
        return GateVerdict(stack, env.name, None, current, None)
    if env.gate == env.name:
        raise ProjectError(f"environment {env.name!r} is gated on itself",
                           file=str(project.root / "stackwright.yaml"),
                           hint="set `gate:` to the environment that must apply a program first, e.g. staging")
    return GateVerdict(stack, env.name, env.gate, current, latest_success(project, store, env.gate))


def latest_success(project: Project, store: StateStore, environment: str) -> Event | None:
    """The newest successful whole-program apply on any stack of ``environment``.

    Targeted updates apply only part of the program, so they prove nothing about the rest.
    """
    names: dict[str, str] = {}
    for event in reversed(store.events(kinds=APPLY_KINDS)):
        if event.data.get("result") != "succeeded" or event.data.get("targets"):
            continue
        if event.stack not in names:
            names[event.stack] = environment_name(project, event.stack)
        if names[event.stack] == environment:
            return event
    return None


def check_gate(session: StackSession, program_digest: str | None = None) -> None:
    """Refuse to update ``session``'s stack unless its gate has applied this program.

    ``program_digest`` defaults to the program on disk; a saved plan passes the digest
    it pins, since that is the program it would apply.
    """
    digest = program_digest if program_digest is not None else session.program_fingerprint().digest
    verdict = evaluate_gate(session.project, session.store, session.stack, digest)
    if not verdict.passed:
        raise GateClosed(refusal_message(verdict), hint=refusal_hint(session.project, session.store, verdict))


def refusal_message(verdict: GateVerdict) -> str:
    """One line: which gate, what it last applied and when, and what this program is."""
    mine = verdict.program_digest[:SHOWN_DIGEST]
    head = f"stack {verdict.stack!r} ({verdict.environment}) is gated on {verdict.gate}"
    last = verdict.last_success
    if last is None:
        return f"{head}, which has never applied a program successfully; this program is {mine}"
    theirs = (verdict.gated_digest or "unknown")[:SHOWN_DIGEST]
    return (f"{head}: {verdict.gate} last succeeded {describe_time(last.at)} on stack {last.stack!r} "
            f"with program {theirs}; this program is {mine}")


def refusal_hint(project: Project, store: StateStore, verdict: GateVerdict) -> str:
    """What to run: an update of the gating environment's stack, then this one again."""
    stack = gate_stack(project, store, verdict)
    return f"apply this program to {verdict.gate} first (stackwright up --stack {stack}), then retry"


def gate_stack(project: Project, store: StateStore, verdict: GateVerdict) -> str:
    """The stack to name in the hint: the one that last succeeded, else a stack of the
    gating environment, else the environment's own name (the usual stack name)."""
    if verdict.last_success is not None:
        return verdict.last_success.stack
    gate = verdict.gate or ""
    for info in store.list_stacks():
        if environment_name(project, info.name) == gate:
            return info.name
    return gate


def describe_time(at: float, now: float | None = None) -> str:
    """``2024-05-01 14:03 (3h ago)``: absolute for the record, relative for the reader."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
    return f"at {stamp} ({ago(max(0.0, (now or time.time()) - at))})"


def ago(seconds: float) -> str:
    """A coarse age: seconds, minutes, hours or days."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
