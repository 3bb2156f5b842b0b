"""Approvals, rejections and the audit log of saved plans.

Everything is an append-only event in the stack's state backend, so that the record
of who planned, approved, rejected and applied what lives where the state lives, not
in a file anyone can edit. An approval names a plan by its content hash: change one
byte of the plan and it is another plan, with no approvals.

The author of a plan is whoever recorded its ``plan`` event, not what the file says:
the file's hash is plain SHA-256, which anyone who edits it can recompute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from stackwright.errors import StackwrightError
from stackwright.operations.session import StackSession
from stackwright.program.project import Project
from stackwright.state.records import Event
from stackwright.state.store import StateStore
from stackwright.workflow.environments import Environment, environment_for, may_approve

PLAN, APPROVE, REJECT, APPLY = "plan", "approve", "reject", "apply"
AUDITED = (PLAN, APPROVE, REJECT, APPLY, "up", "destroy", "rollback")
"""Event kinds `audit` lists: saved plans and their reviews, and every apply."""
SHORT = 12
"""Hex digits of a plan hash shown to people: enough to tell plans apart."""


class ApprovalError(StackwrightError):
    """Base of the refusals of this module."""


class UnknownPlan(ApprovalError):
    """The plan's hash is not in the stack's audit log."""


class ApprovalRefused(ApprovalError):
    """This identity may not approve or reject this plan."""


class NotApproved(ApprovalError):
    """The plan lacks approvals, or was rejected, and may not be applied."""


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a plan stands: who made it, who approved it, whether it was rejected."""

    plan_hash: str
    environment: Environment
    author: str
    approved_by: tuple[str, ...]
    """Distinct identities whose approval counts (eligible under the environment's rules)."""
    rejection: Event | None
    """A rejection later than the last approval: the plan may not be applied."""

    @property
    def needed(self) -> int:
        return self.environment.approvals_needed

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.approved_by))


def plan_event(store: StateStore, stack: str, plan_hash: str) -> Event:
    """The ``plan`` event that recorded this plan: proof it was made by `plan` against
    this stack's backend, and the identity of its author."""
    for event in reversed(store.events(stack, kinds=(PLAN,))):
        if event.data.get("plan_hash") == plan_hash:
            return event
    raise UnknownPlan(
        f"plan {plan_hash[:SHORT]} was never recorded for stack {stack!r}",
        hint="it was made against another state backend, or edited and re-hashed; "
        "make it with `stackwright plan --out FILE`",
    )


def status(session: StackSession, plan_hash: str) -> ApprovalStatus:
    """The plan's approvals and rejections as the environment's rules count them now."""
    env = environment_for(session.project, session.stack)
    author = plan_event(session.store, session.stack, plan_hash).who
    reviews = [e for e in session.store.events(session.stack, kinds=(APPROVE, REJECT))
               if e.data.get("plan_hash") == plan_hash]
    approvals = [e for e in reviews if e.kind == APPROVE]
    last_approval = approvals[-1].id if approvals else 0
    rejection = next((e for e in reversed(reviews) if e.kind == REJECT and e.id > last_approval), None)
    eligible = [e.who for e in approvals if _eligible(session.project, env, e.who, author)]
    return ApprovalStatus(plan_hash, env, author, tuple(dict.fromkeys(eligible)), rejection)


def _eligible(project: Project, env: Environment, who: str, author: str) -> bool:
    return may_approve(project, env, who) and (who != author or env.self_approval_allowed)


def approve(session: StackSession, plan_hash: str, comment: str = "") -> ApprovalStatus:
    """Record ``session.who``'s approval, refusing the author (unless the environment
    allows self-approval) and anyone the environment does not list as an approver."""
    current = status(session, plan_hash)
    env, who = current.environment, session.who
    if who == current.author and not env.self_approval_allowed:
        raise ApprovalRefused(
            f"{who} made plan {plan_hash[:SHORT]} and may not approve it: environment "
            f"{env.name!r} does not allow self-approval",
            hint=f"ask {who_may_approve(session.project, env, current.author)} to approve it",
        )
    if not may_approve(session.project, env, who):
        raise ApprovalRefused(
            f"{who} is not an approver of environment {env.name!r}",
            hint=f"approvers: {', '.join(env.approvers)} (set in stackwright.yaml)",
        )
    _record(session, APPROVE, plan_hash, current.author, comment)
    return status(session, plan_hash)


def reject(session: StackSession, plan_hash: str, comment: str = "") -> ApprovalStatus:
    """Record a rejection: the plan may not be applied until approved again. Its author
    may withdraw it; otherwise only those who may approve may reject."""
    current = status(session, plan_hash)
    env, who = current.environment, session.who
    if who != current.author and not may_approve(session.project, env, who):
        raise ApprovalRefused(
            f"{who} is not an approver of environment {env.name!r} and may not reject its plans",
            hint=f"approvers: {', '.join(env.approvers)} (set in stackwright.yaml)",
        )
    _record(session, REJECT, plan_hash, current.author, comment)
    return status(session, plan_hash)


def _record(session: StackSession, kind: str, plan_hash: str, author: str, comment: str) -> Event:
    data = {"plan_hash": plan_hash, "author": author, "comment": comment,
            "environment": environment_for(session.project, session.stack).name}
    return session.store.record_event(session.stack, kind, session.who, data)


def require_approved(session: StackSession, plan_hash: str) -> ApprovalStatus:
    """Refuse a plan that was rejected after its last approval, or that lacks the
    approvals its environment needs (protected environments need at least one)."""
    current = status(session, plan_hash)
    short = plan_hash[:SHORT]
    if current.rejection is not None:
        reason = current.rejection.data.get("comment") or "no comment"
        raise NotApproved(
            f"plan {short} was rejected by {current.rejection.who} {when(current.rejection.at)}: {reason}",
            hint="make a new plan that addresses it, or have the plan approved again",
        )
    if current.missing:
        have = f", approved by {', '.join(current.approved_by)}" if current.approved_by else ""
        raise NotApproved(
            f"environment {current.environment.name!r} needs {current.needed} approval(s) of plan "
            f"{short}; {current.missing} missing{have}",
            hint=f"ask {who_may_approve(session.project, current.environment, current.author)} "
            "to run `stackwright approve FILE`",
        )
    return current


def who_may_approve(project: Project, env: Environment, author: str) -> str:
    """The people a refusal should send the author to, in words."""
    if env.approvers:
        listed = ", ".join(env.approvers)
        return listed if env.self_approval_allowed else f"{listed} (not {author}, the author)"
    return "anyone" if env.self_approval_allowed else f"anyone but {author} (the author)"


# --- the audit log ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """One line of `stackwright audit`."""

    at: float
    stack: str
    kind: str
    who: str
    plan_hash: str
    detail: str
    data: dict[str, Any]
    """The event's details verbatim, for `audit --json`."""

    def to_json(self) -> dict[str, Any]:
        return {"at": iso_time(self.at), "stack": self.stack, "kind": self.kind, "who": self.who,
                "plan_hash": self.plan_hash or None, "detail": self.detail, "data": self.data}


def audit(store: StateStore, stack: str | None = None) -> list[AuditRow]:
    """Plans, approvals, rejections and applies, oldest first."""
    return [AuditRow(e.at, e.stack, e.kind, e.who, str(e.data.get("plan_hash") or ""), _detail(e), e.data)
            for e in store.events(stack, kinds=AUDITED)]


def _detail(event: Event) -> str:
    data = event.data
    if event.kind in (APPROVE, REJECT):
        return str(data.get("comment") or "")
    if event.kind == PLAN:
        counts = data.get("counts") or {}
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no changes"
        return f"{summary} -> {data.get('path', '')}"
    result = str(data.get("result", ""))
    checkpoint = data.get("checkpoint")
    return f"{result} (checkpoint {checkpoint})" if checkpoint else result


def when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("at %Y-%m-%d %H:%M")


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
