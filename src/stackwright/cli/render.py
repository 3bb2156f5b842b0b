"""Text renderings of plans, drift and history for terminals and logs.

Colour comes from ``click.style``; ``click.echo`` strips it when the output is not a
terminal. Secrets are masked before anything is formatted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from stackwright.model.resource import urn_name, urn_parts
from stackwright.model.values import MASK, RECORDED_UNKNOWN_TEXT, UNKNOWN, UNKNOWN_TEXT, Secret, masked
from stackwright.plan.diff import PropertyDiff
from stackwright.plan.plan import RETAINED_TEXT, STATE_ONLY_VERB, Leftover, Op, Plan, Step
from stackwright.state.records import Checkpoint

if TYPE_CHECKING:
    from stackwright.workflow.policies import Violation

SYMBOLS = {
    Op.CREATE: ("+", "green"), Op.UPDATE: ("~", "yellow"), Op.REPLACE: ("+-", "magenta"),
    Op.DELETE: ("-", "red"), Op.SAME: (" ", None), Op.READ: (">", "cyan"),
}
VERBS = {Op.CREATE: "create", Op.UPDATE: "update", Op.REPLACE: "replace",
         Op.DELETE: "delete", Op.SAME: "unchanged", Op.READ: "read"}


def value_text(value: Any, limit: int = 120, unknown: str = UNKNOWN_TEXT) -> str:
    if value is UNKNOWN:
        return unknown
    if isinstance(value, Secret):
        return MASK
    text = json.dumps(masked(value), default=lambda v: unknown if v is UNKNOWN else str(v))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plan_lines(plan: Plan, *, show_diff: bool = False, show_same: bool = False) -> list[str]:
    """The plan as a tree grouped by parent, then a summary line."""
    steps = [s for s in plan.steps if show_same or s.changes or s.notes]
    by_parent: dict[str | None, list[Step]] = {}
    for step in steps:
        by_parent.setdefault(step.parent, []).append(step)
    lines = [click.style(f"Stack {plan.stack} ({plan.project})", bold=True)]
    for parent, children in sorted(by_parent.items(), key=lambda kv: kv[0] or ""):
        indent = "    "
        if parent is not None:
            lines.append("  " + click.style(_node_label(parent), bold=True))
        else:
            indent = "  "
        for step in children:
            lines.append(indent + _step_line(step))
            if show_diff or step.op is Op.REPLACE:
                lines.extend(indent + "    " + line for line in diff_lines(step, full=show_diff))
            lines.extend(indent + "    " + line for line in option_lines(step))
            lines.extend(indent + "    " + click.style(f"warning: {w}", fg="red", bold=True) for w in step.warnings)
            lines.extend(indent + "    " + click.style(note, fg="cyan") for note in step.notes)
    lines.extend("  " + _leftover_line(leftover) for leftover in plan.leftovers)
    lines.extend(output_lines(plan, full=show_diff))
    lines.append(summary_line(plan))
    return lines


def _node_label(urn: str) -> str:
    _, _, type_token, path = urn_parts(urn)
    return f"{type_token} {path.replace('$', '/')}"


def _step_line(step: Step) -> str:
    symbol, colour = SYMBOLS[Op.UPDATE] if step.state_only else SYMBOLS[step.op]
    rename = f" (was {urn_name(step.previous_urn)})" if step.previous_urn else ""
    verb = STATE_ONLY_VERB if step.state_only else VERBS[step.op]
    verb += " (delete first)" if step.op is Op.REPLACE and step.delete_before_replace else ""
    verb += f" ({RETAINED_TEXT})" if step.retained else ""
    text = f"{symbol:<2} {step.type} {urn_name(step.urn)}{rename}  {verb}"
    return click.style(text, fg=colour) if colour else text


def _leftover_line(leftover: Leftover) -> str:
    return click.style(f"-  {leftover.type} {urn_name(leftover.urn)}  delete replaced object "
                       f"{leftover.id} (left by an earlier run)", fg="red")


def diff_lines(step: Step, *, full: bool) -> list[str]:
    """``full`` (``--diff``): every change, nested ones path by path and values whole
    (``cli/diff_view.py``); a create's inputs whole. Otherwise the properties that force
    a replacement, one line each."""
    if not full:
        return [_diff_line(d) for d in step.diffs if d.replaces]
    from stackwright.cli.diff_view import value_lines

    if step.op is Op.CREATE and step.inputs:
        lines: list[str] = []
        for key, value in sorted(step.inputs.items()):
            shown = value_lines(value)
            lines += [f"{key}: {shown[0]}", *("  " + line for line in shown[1:])]
        return lines
    return full_diff_lines(step.diffs, step.old_inputs, step.inputs)


def full_diff_lines(diffs: Iterable[PropertyDiff], old: Mapping[str, Any] | None,
                    new: Mapping[str, Any] | None) -> list[str]:
    """``diffs`` path by path: each input they touch is compared whole (``old`` with
    ``new``, when known), so that a list that grew shows the element added rather than
    both lists."""
    from stackwright.cli.diff_view import change_lines

    groups: dict[str, list[PropertyDiff]] = {}
    for d in diffs:
        groups.setdefault(_top(d.path), []).append(d)
    lines: list[str] = []
    for key, group in groups.items():
        replaces = any(d.replaces for d in group)
        if old is not None and new is not None and (key in old or key in new):
            kind = "add" if key not in old else "delete" if key not in new else "update"
            lines += change_lines(key, kind, old.get(key), new.get(key), replaces=replaces)
        else:
            for d in group:
                lines += change_lines(d.path, d.kind, d.old, d.new, replaces=d.replaces)
    return lines


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def option_lines(step: Step) -> list[str]:
    """``options: protect false => true`` — shown whatever ``--diff`` says, since an
    option change is often the whole change."""
    return [click.style(f"options: {d.path} {option_text(d.old)} => {option_text(d.new)}", fg="yellow")
            for d in step.option_diffs]


def option_text(value: Any) -> str:
    """Option values name resources by their short name."""
    if isinstance(value, list):
        return "[" + ", ".join(urn_name(v) for v in value) + "]"
    if isinstance(value, str):
        return urn_name(value)
    return value_text(value)


def _diff_line(d: PropertyDiff) -> str:
    note = click.style("  [forces replacement]", fg="magenta") if d.replaces else ""
    if d.kind == "add":
        return click.style(f"+ {d.path}: {value_text(d.new)}", fg="green") + note
    if d.kind == "delete":
        return click.style(f"- {d.path}: {value_text(d.old)}", fg="red") + note
    return click.style(f"~ {d.path}: {value_text(d.old)} => {value_text(d.new)}", fg="yellow") + note


def output_lines(plan: Plan, full: bool = False) -> list[str]:
    """The stack outputs that change; ``full`` (``--diff``): their values whole."""
    if not plan.outputs_change():
        return []
    limit = 1 << 62 if full else 120
    lines = ["  Outputs:"]
    for key in sorted(set(plan.outputs) | set(plan.old_outputs)):
        old, new = plan.old_outputs.get(key), plan.outputs.get(key)
        if old != new:
            was = f"{value_text(old, limit, RECORDED_UNKNOWN_TEXT)} => " if key in plan.old_outputs else ""
            lines.append(f"    {key}: {was}{value_text(new, limit)}")
    return lines


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    retained = sum(1 for s in plan.steps if s.retained) if counts.get(Op.DELETE.value) else 0
    parts = [f"{counts[op.value]} to {VERBS[op]}" + (f" ({retained} retained)" if op is Op.DELETE and retained else "")
             for op in (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE, Op.READ) if counts.get(op.value)]
    same = counts.get("same", 0)
    renames = sum(1 for s in plan.steps if s.previous_urn)
    if renames:
        parts.append(f"{renames} to rename")
    if counts.get(STATE_ONLY_VERB):
        parts.append(f"{counts[STATE_ONLY_VERB]} to {STATE_ONLY_VERB}")
    if plan.leftovers:
        parts.append(f"{len(plan.leftovers)} replaced object(s) to delete")
    if not parts:
        return click.style(f"No changes. {same} resources unchanged.", bold=True)
    return click.style("Resources: " + ", ".join(parts) + f", {same} unchanged", bold=True)


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def print_history(checkpoints: Iterable[Checkpoint]) -> None:
    """A table, one line per checkpoint, its result coloured."""
    from stackwright.cli.terminal import print_table

    rows = list(checkpoints)
    print_table(["#", "WHEN", "KIND", "WHO", "TIME", "RESULT", "CHANGES"],
                [[str(cp.number), when(cp.started_at), cp.kind, cp.who, f"{cp.duration:.1f}s",
                  (cp.result, RESULT_COLOURS.get(cp.result, "yellow")), counts_text(cp)] for cp in rows],
                right=("#", "TIME"))


RESULT_COLOURS = {"succeeded": "green", "failed": "red"}


def counts_text(cp: Checkpoint) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(cp.counts.items())) or "no changes"


def checkpoint_line(cp: Checkpoint, who_width: int = 0) -> str:
    result = click.style(f"{cp.result:<11}", fg=RESULT_COLOURS.get(cp.result, "yellow"))
    return (f"{cp.number:>4}  {when(cp.started_at)}  {cp.kind:<9} {cp.who:<{who_width}} "
            f"{cp.duration:7.1f}s  {result}  {counts_text(cp)}")


def mapping_lines(values: Mapping[str, Any], indent: str = "  ") -> list[str]:
    return [f"{indent}{k}: {value_text(v, limit=400)}" for k, v in sorted(values.items())]


def violation_lines(violations: list[Violation], *, blocks: str = "`up`") -> list[str]:
    """Policy violations after a plan: mandatory in red, advisory in yellow, then what
    they mean for ``blocks`` (the command they would stop)."""
    if not violations:
        return []
    lines = [click.style(f"Policy violations ({len(violations)}):", bold=True)]
    for v in violations:
        where = f" [{v.subject}]" if v.subject else ""
        lines.append(click.style(f"  {'x' if v.mandatory else '!'} {v.enforcement:<9} {v.policy}{where}: "
                                 f"{v.message}", fg="red" if v.mandatory else "yellow"))
    mandatory = sum(1 for v in violations if v.mandatory)
    if mandatory:
        lines.append(click.style(f"{mandatory} mandatory violation(s) will block {blocks}.", fg="red", bold=True))
    else:
        lines.append(click.style("Advisory only: these do not block.", fg="yellow"))
    return lines


def recorded_output_lines(outputs: Mapping[str, Any], indent: str = "") -> list[str]:
    """Stack outputs as recorded, secrets masked, unknown ones said to be unknown."""
    lines = []
    for key in sorted(outputs):
        value = outputs[key]
        text = value if isinstance(value, str) else value_text(value, 2000, RECORDED_UNKNOWN_TEXT)
        lines.append(f"{indent}{key}: {text}")
    return lines
