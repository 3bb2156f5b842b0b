"""The JSON documents `up`, `destroy`, `rollback`, `refresh` and `history` print with
``--json`` (docs/json-output.md). Each is one object with a ``schema`` number, as the
plan's view (docs/plan-json.md) has; fields are only ever added within a schema.
Secrets are masked as in the plan view; nothing here reveals one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from stackwright.model.values import masked, to_json
from stackwright.plan.plan import diff_json
from stackwright.state.records import Checkpoint, CheckpointDetail

if TYPE_CHECKING:
    from stackwright.engine.refresh import Drift
    from stackwright.operations.refresh import RefreshOutcome
    from stackwright.operations.update import UpdateOutcome
    from stackwright.workflow.policies import Violation

SCHEMA = 1


def update_view(outcome: UpdateOutcome, violations: Iterable[Violation]) -> dict[str, Any]:
    """What an `up`, `destroy` or `rollback` did: the result, the checkpoint it wrote,
    per-step failures, and the plan it applied (the `preview --json` document)."""
    from stackwright.workflow.policies import with_violations

    plan = outcome.plan
    applied = outcome.result
    return {
        "schema": SCHEMA, "kind": plan.kind, "stack": plan.stack, "project": plan.project,
        "result": update_result(outcome),
        "checkpoint": outcome.checkpoint.number if outcome.checkpoint else None,
        "duration": round(outcome.duration, 3),
        "done": dict(applied.done) if applied else {},
        "failures": [{"urn": f.urn, "action": f.action, "message": f.message, "hint": f.hint}
                     for f in (applied.failures if applied else [])],
        "skipped": list(applied.skipped) if applied else [],
        "not_started": list(applied.not_started) if applied else [],
        "recovered": {"adopted": list(outcome.recovery.adopted),
                      "forgotten": list(outcome.recovery.forgotten)},
        "plan": with_violations(plan, violations),
    }


def update_result(outcome: UpdateOutcome) -> str:
    """succeeded | failed | interrupted | cancelled (a declined prompt: nothing changed)."""
    if outcome.cancelled:
        return "cancelled"
    if outcome.result is None or outcome.result.ok:
        return "succeeded"
    return "interrupted" if outcome.result.interrupted else "failed"


def refresh_view(outcome: RefreshOutcome, stack: str, project: str, *, recorded: bool) -> dict[str, Any]:
    """What `refresh` read: the drift (changed or deleted outside Stackwright), the
    resources it could not read, and the checkpoint that recorded it (with ``--yes``)."""
    result = outcome.result
    drift = [d for d in result.drift if d.kind != "outputs"]
    return {
        "schema": SCHEMA, "kind": "refresh", "stack": stack, "project": project,
        "checked": result.checked, "drifted": len(drift), "recorded": recorded,
        "checkpoint": outcome.checkpoint.number if outcome.checkpoint else None,
        "drift": [drift_view(d) for d in drift],
        "errors": [{"urn": urn, "message": message} for urn, message in sorted(result.errors.items())],
    }


def drift_view(drift: Drift) -> dict[str, Any]:
    """One drifted resource; a diff's ``old`` is the recorded value, ``new`` the live one."""
    out: dict[str, Any] = {"urn": drift.urn, "type": drift.type, "kind": drift.kind}
    if drift.kind == "changed":
        out["diffs"] = [diff_json(d) for d in drift.diffs]
    return out


def history_view(stack: str, checkpoints: Iterable[Checkpoint]) -> dict[str, Any]:
    return {"schema": SCHEMA, "stack": stack, "checkpoints": [checkpoint_view(cp) for cp in checkpoints]}


def checkpoint_view(cp: Checkpoint) -> dict[str, Any]:
    return {
        "number": cp.number, "kind": cp.kind, "who": cp.who, "result": cp.result,
        "started_at": timestamp(cp.started_at), "finished_at": timestamp(cp.finished_at),
        "duration": round(cp.duration, 3), "counts": dict(cp.counts), "message": cp.message,
    }


def checkpoint_detail_view(stack: str, detail: CheckpointDetail) -> dict[str, Any]:
    """`history show N`: the checkpoint, each change (diffs were masked when recorded),
    and the stack outputs it recorded (a value left unknown is ``{"$unknown": true}``)."""
    return {
        "schema": SCHEMA, "stack": stack, "checkpoint": checkpoint_view(detail.checkpoint),
        "changes": [{"urn": c.urn, "type": c.type, "op": c.op, "diffs": to_json(masked(c.diffs)),
                     "error": c.error} for c in detail.changes],
        "outputs": to_json(masked(detail.outputs)),
    }


def timestamp(seconds: float) -> str:
    """ISO 8601 in UTC, to the second: `2026-12-01T13:14:17Z`."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
