"""Plans as Markdown for review: a pull-request comment, a CI job summary.

``render_plan`` renders one stack's plan; ``render_stacks`` renders several (one
comment for a change that touches dev, staging and production). The page leads with
what a reviewer must not miss — counts per stack, then every replacement and delete,
then policy violations — and puts each resource's property diff in a collapsible
``<details>``. Secrets are masked; values computed during apply read
``(known after apply)``. The objects a Helm release renders are grouped under their
release, with the chart version change and, per object, the fields that change
(``spec.template.spec.containers[0].image``), so infrastructure and chart changes are
reviewed on one page. The text stays under GitHub's comment limit: the largest diffs
are folded first (their changed fields listed without values), then resources that
still do not fit are left out, and a note says how many and where to see them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackwright.model.resource import urn_name, urn_parts
from stackwright.model.values import MASK, RECORDED_UNKNOWN_TEXT, UNKNOWN, UNKNOWN_TEXT, Secret, masked
from stackwright.plan.diff import PropertyDiff
from stackwright.plan.plan import STATE_ONLY_VERB, Op, Plan, Step
from stackwright.workflow.policies import Violation, blocking

__all__ = ["GITHUB_COMMENT_LIMIT", "MARKER", "StackPlan", "render_plan", "render_stacks"]

GITHUB_COMMENT_LIMIT = 65_536
"""GitHub refuses issue and pull-request comments longer than this many characters."""

MARKER = "<!-- stackwright:plan -->"
"""First line of every rendering, so a CI job can find and update its own comment."""

StackPlan = tuple[str, Plan, Sequence[Violation]]
"""One stack's part of a review: its name, its plan and the policy violations."""

VALUE_LIMIT = 200
"""Longest value shown in a diff cell; a file's whole content helps no reviewer."""
MESSAGE_LIMIT = 1000
"""Longest policy message or provider note shown."""
ROW_LIMIT = 50
"""Most properties listed for one resource."""
NOTE_RESERVE = 600
"""Room kept free for the truncation note."""
FOLDED_PATHS = 20
"""Most changed fields named in a folded diff."""
CHART_TYPE = "k8s:helm:Chart"
CHART_LABEL = "helm.sh/chart"
IMAGE_PATH = re.compile(r"(initC|c)ontainers\[\d+\]\.image$")

SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.REPLACE: "+-", Op.DELETE: "-", Op.SAME: " ", Op.READ: ">"}
VERB = {Op.CREATE: "create", Op.UPDATE: "update", Op.REPLACE: "replace", Op.DELETE: "delete",
        Op.SAME: "unchanged", Op.READ: "read"}
COUNTED = (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE)
DESTRUCTIVE = frozenset({Op.REPLACE, Op.DELETE})


def render_plan(plan: Plan, violations: Sequence[Violation] = (), *,
                limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """One stack's plan as Markdown."""
    return render_stacks([(plan.stack, plan, violations)], limit=limit)


def render_stacks(stacks: Sequence[StackPlan], *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Several stacks' plans as one Markdown document of at most ``limit`` characters."""
    blocks = [Block(MARKER), Block(_title(stacks)), Block(_summary_table(stacks))]
    blocks += _destructive_blocks(stacks) + _violation_blocks(stacks)
    for stack, plan, _ in stacks:
        blocks += _stack_blocks(stack, plan)
    return _fit(blocks, limit)


# --- layout and truncation -----------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A piece of the page kept or dropped whole. ``counts`` names what it shows
    (``resource``, ``policy violation``...) for the truncation note; ``joined`` is
    the separator before it (a newline continues a list, a blank line starts a block)."""

    text: str
    counts: str | None = None
    joined: str = "\n\n"
    folded: str | None = None
    """A shorter text to show instead when the page is too long (fields without values)."""


def _fit(blocks: list[Block], limit: int) -> str:
    """The blocks in order until the next would pass ``limit``; then a note on the rest.
    Before anything is left out, the largest foldable blocks are folded."""
    budget = max(limit - NOTE_RESERVE, 0)
    blocks = _folded_to_fit(blocks, budget)
    out, used = "", 0
    for index, block in enumerate(blocks):
        piece = (block.joined if out else "") + block.text
        if used + len(piece) > budget:
            return out + "\n\n" + _truncation_note(blocks[index:], limit) + "\n"
        out += piece
        used += len(piece)
    return out + "\n"


def _folded_to_fit(blocks: list[Block], budget: int) -> list[Block]:
    total = sum(len(b.joined) + len(b.text) for b in blocks)
    if total <= budget:
        return blocks
    out = list(blocks)
    largest = sorted((i for i, b in enumerate(blocks) if b.folded is not None),
                     key=lambda i: (-len(blocks[i].text), i))
    for index in largest:
        block = out[index]
        assert block.folded is not None
        if len(block.folded) >= len(block.text):
            continue
        total -= len(block.text) - len(block.folded)
        out[index] = Block(block.folded, block.counts, block.joined)
        if total <= budget:
            break
    return out


def _truncation_note(left_out: Iterable[Block], limit: int) -> str:
    counted: dict[str, int] = {}
    for block in left_out:
        if block.counts:
            counted[block.counts] = counted.get(block.counts, 0) + 1
    what = ", ".join(f"{n:,} {kind}{'' if n == 1 else 's'}" for kind, n in counted.items()) or "the rest"
    return (f"> [!NOTE]\n> **Truncated:** {what} not shown, to stay under the "
            f"{limit:,}-character comment limit. Run `stackwright preview --diff` "
            "(or `--format json`) to see the whole plan.")


# --- head of the page ----------------------------------------------------------------


def _title(stacks: Sequence[StackPlan]) -> str:
    projects = sorted({plan.project for _, plan, _ in stacks})
    named = f" for {', '.join(_code(p) for p in projects)}" if projects else ""
    return f"## Stackwright plan{named}"


def _summary_table(stacks: Sequence[StackPlan]) -> str:
    rows = ["| Stack | Create | Update | Replace | Delete | Unchanged | Policies |",
            "|---|--:|--:|--:|--:|--:|---|"]
    for stack, plan, violations in stacks:
        counts = plan.counts()
        # Update counts options-only updates too: they are not unchanged.
        cells = [str(counts.get(op.value, 0) + (counts.get(STATE_ONLY_VERB, 0) if op is Op.UPDATE else 0))
                 for op in COUNTED]
        cells[2:4] = [f"**{c}**" if c != "0" else c for c in cells[2:4]]
        rows.append(f"| {_cell(_code(stack))} | {' | '.join(cells)} | {counts.get('same', 0)} "
                    f"| {_policy_cell(violations)} |")
    if not stacks:
        rows.append("| *(no stacks)* | | | | | | |")
    return "\n".join(rows)


def _policy_cell(violations: Sequence[Violation]) -> str:
    mandatory = len(blocking(list(violations)))
    advisory = len(violations) - mandatory
    parts = ([f"❌ {mandatory} mandatory"] if mandatory else []) + (
        [f"⚠️ {advisory} advisory"] if advisory else [])
    return " · ".join(parts) or "✅ pass"


def _destructive_blocks(stacks: Sequence[StackPlan]) -> list[Block]:
    """Every replacement and delete, before anything else: the changes that lose data."""
    lines = [(stack, step) for stack, plan, _ in stacks for step in plan.steps if step.op in DESTRUCTIVE]
    if not lines:
        return []
    head = Block(f"### ⚠️ {len(lines)} destructive change{'' if len(lines) == 1 else 's'}")
    items = [Block(_destructive_line(stack, step, len(stacks) > 1), "destructive change",
                   "\n" if i else "\n\n") for i, (stack, step) in enumerate(lines)]
    return [head, *items]


def _destructive_line(stack: str, step: Step, name_stack: bool) -> str:
    where = f"{_code(stack)}: " if name_stack else ""
    verb = "replace" + (" (delete first)" if step.delete_before_replace else "") \
        if step.op is Op.REPLACE else "delete"
    why = f" — {', '.join(_code(k) for k in step.replace_keys)} forces replacement" \
        if step.replace_keys else ""
    kept = " — retained in the cloud (retain_on_delete)" if step.op is Op.DELETE and step.retain_on_delete else ""
    warned = "".join(f"\n  - ⚠️ **{_text(w)}**" for w in step.warnings)
    return f"- **{verb}** {where}{_code(step.type)} {_code(urn_name(step.urn))}{why}{kept}{warned}"


def _violation_blocks(stacks: Sequence[StackPlan]) -> list[Block]:
    found = [(stack, v) for stack, _, violations in stacks for v in violations]
    if not found:
        return []
    items = [Block(_violation_line(stack, v, len(stacks) > 1), "policy violation", "\n" if i else "\n\n")
             for i, (stack, v) in enumerate(found)]
    blocked = sum(1 for _, v in found if v.mandatory)
    verdict = (f"> [!CAUTION]\n> {blocked} mandatory violation{'' if blocked == 1 else 's'} "
               "will block `up`." if blocked else
               "> [!NOTE]\n> Advisory only: these do not block `up`.")
    return [Block(f"### Policy violations ({len(found)})"), *items, Block(verdict)]


def _violation_line(stack: str, v: Violation, name_stack: bool) -> str:
    badge = "❌ **mandatory**" if v.mandatory else "⚠️ advisory"
    where = f" in {_code(stack)}" if name_stack else ""
    subject = f" · {_code(v.subject)}" if v.subject else ""
    return f"- {badge} {_code(v.policy)}{where}{subject}: {_text(v.message)}"


# --- one stack -----------------------------------------------------------------------


def _stack_blocks(stack: str, plan: Plan) -> list[Block]:
    changing = [s for s in plan.steps if s.changes]
    releases = _releases(changing)
    blocks = [Block(f"### {_code(stack)}: {_stack_summary(plan)}")]
    blocks += [_step_block(step) for step in changing if step.parent not in releases]
    for release, steps in releases.items():
        blocks.append(Block(_release_heading(release, steps)))
        blocks += [_step_block(step) for step in steps]
    blocks += [Block(f"- **delete replaced object** {_code(o.type)} {_code(urn_name(o.urn))} "
                     f"{_code(o.id)}, left by an earlier run", "resource") for o in plan.leftovers]
    if plan.outputs_change():
        blocks.append(Block(_outputs_details(plan), "output section"))
    return blocks


def _stack_summary(plan: Plan) -> str:
    counts = plan.counts()
    parts = [f"{counts[op.value]} to {VERB[op]}" for op in COUNTED if counts.get(op.value)]
    if plan.leftovers:
        parts.append(f"{len(plan.leftovers)} replaced object(s) to delete")
    if counts.get(STATE_ONLY_VERB):
        parts.append(f"{counts[STATE_ONLY_VERB]} to {STATE_ONLY_VERB}")
    same = counts.get("same", 0)
    if not parts and not plan.outputs_change():
        return f"no changes ({same} unchanged)"
    return ", ".join(parts or ["outputs change"]) + f", {same} unchanged"


def _step_block(step: Step) -> Block:
    return Block(_step_details(step), "resource", folded=_step_details(step, folded=True))


# --- Helm releases -------------------------------------------------------------------


def _releases(steps: Sequence[Step]) -> dict[str, list[Step]]:
    """The changing objects of each Helm release, by the release's URN."""
    found: dict[str, list[Step]] = {}
    for step in steps:
        if step.parent and urn_parts(step.parent)[2] == CHART_TYPE:
            found.setdefault(step.parent, []).append(step)
    return found


def _release_heading(release: str, steps: Sequence[Step]) -> str:
    namespaces = sorted({ns for s in steps for ns in [_namespace(s)] if ns})
    where = f" in {', '.join(_code(n) for n in namespaces)}" if namespaces else ""
    counts = ", ".join(f"{n} to {VERB[op]}" for op in COUNTED
                       for n in [sum(1 for s in steps if s.op is op)] if n)
    charts = _chart_versions(steps)
    version = f" — chart {charts}" if charts else ""
    images = sorted({f"{_value(d.old)} → {_value(d.new)}" for s in steps for d in s.diffs
                     if d.kind == "update" and IMAGE_PATH.search(d.path)})
    shown = f"\n\nImages: {', '.join(images)}" if images else ""
    return f"#### Helm release {_code(urn_name(release))}{where}{version}: {counts or 'options change'}{shown}"


def _chart_versions(steps: Sequence[Step]) -> str:
    """``app-0.3.0`` → ``app-0.4.0`` from the objects' ``helm.sh/chart`` labels."""
    old = sorted({v for s in steps for v in [_chart_label(s.old_inputs)] if v})
    new = sorted({v for s in steps if s.op is not Op.DELETE for v in [_chart_label(s.inputs)] if v})
    if old and new and old != new:
        return f"{', '.join(map(_code, old))} → {', '.join(map(_code, new))}"
    return ", ".join(map(_code, new or old))


def _chart_label(inputs: Mapping[str, Any] | None) -> str | None:
    labels = _manifest(inputs).get("metadata", {}).get("labels") or {}
    value = labels.get(CHART_LABEL) if isinstance(labels, Mapping) else None
    return value if isinstance(value, str) else None


def _manifest(inputs: Mapping[str, Any] | None) -> Mapping[str, Any]:
    manifest = (inputs or {}).get("manifest")
    return manifest if isinstance(manifest, Mapping) else {}


def _namespace(step: Step) -> str | None:
    metadata = _manifest(step.inputs or step.old_inputs).get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return namespace if isinstance(namespace, str) else None


# --- one resource --------------------------------------------------------------------


def _step_details(step: Step, folded: bool = False) -> str:
    rename = f" (was {html.escape(urn_name(step.previous_urn))})" if step.previous_urn else ""
    label = html.escape(f"{SYMBOL[Op.UPDATE if step.state_only else step.op]} {step.type} {urn_name(step.urn)}")
    verb = STATE_ONLY_VERB if step.state_only else VERB[step.op]
    verb += " (delete first)" if step.op is Op.REPLACE and step.delete_before_replace else ""
    body = [f"<details>\n<summary><code>{label}</code> {verb}{rename}</summary>", ""]
    if folded:
        body += _folded_paths(step)
    else:
        body += [f"URN: {_code(step.urn)}", "", *_property_table(step), *(f"- {_text(n)}" for n in step.notes)]
    return "\n".join(body).rstrip("\n") + "\n\n</details>"


def _folded_paths(step: Step) -> list[str]:
    """The changed fields without their values: what a too-long page keeps of a diff."""
    paths = [_path(step, d.path) for d in step.diffs] or [_path(step, k) for k in sorted(step.inputs or {})]
    named = ", ".join(_code(p) for p in paths[:FOLDED_PATHS]) + (
        f" and {len(paths) - FOLDED_PATHS} more" if len(paths) > FOLDED_PATHS else "")
    return [f"Folded to fit the comment limit: {len(paths)} field(s) change: {named or 'none'}."]


def _path(step: Step, path: str) -> str:
    """A Kubernetes object's fields are named as in its manifest (``spec.replicas``)."""
    if step.type.startswith("k8s:") and path.startswith("manifest."):
        return path[len("manifest."):]
    return path


def _property_table(step: Step) -> list[str]:
    """A create lists its inputs, a delete the inputs last recorded (what is lost),
    anything else old → new per changed property."""
    if step.op is Op.CREATE:
        return _table(("Property", "Value"), _input_rows(step, step.inputs))
    if step.op is Op.DELETE:
        return _table(("Property", "Last value"), _input_rows(step, step.old_inputs))
    rows = [_diff_row(step, d) for d in step.diffs]
    rows += [(f"{_code(d.path)} (option)", _value(d.old), _value(d.new)) for d in step.option_diffs]
    if not rows:
        return ["Only options or dependencies change."]
    return _table(("Property", "Old", "New"), rows)


def _input_rows(step: Step, inputs: Mapping[str, Any] | None) -> list[tuple[str, ...]]:
    """An object's fields one per row (``spec.replicas``); other resources' inputs."""
    if step.type.startswith("k8s:") and isinstance((inputs or {}).get("manifest"), Mapping):
        return [(_code(path), _value(v)) for path, v in _leaves((inputs or {})["manifest"])]
    return [(_code(k), _value(v)) for k, v in sorted((inputs or {}).items())]


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        return [leaf for k in sorted(value, key=str) for leaf in _leaves(value[k], f"{path}.{k}" if path else str(k))]
    if isinstance(value, list) and value and not all(isinstance(v, (str, int, float, bool)) for v in value):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["No properties."]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows[:ROW_LIMIT]]
    if len(rows) > ROW_LIMIT:
        lines.append(f"| *… {len(rows) - ROW_LIMIT} more* |" + " |" * (len(header) - 1))
    return lines


def _diff_row(step: Step, d: PropertyDiff) -> tuple[str, str, str]:
    path = _code(_path(step, d.path)) + (" **(forces replacement)**" if d.replaces else "")
    old = "" if d.kind == "add" else _value(d.old)
    new = "" if d.kind == "delete" else _value(d.new)
    return path, old, new


def _outputs_details(plan: Plan) -> str:
    rows = ["<details>\n<summary>Stack outputs</summary>", "",
            "| Output | Old | New |", "|---|---|---|"]
    for key in sorted(set(plan.outputs) | set(plan.old_outputs)):
        old, new = plan.old_outputs.get(key), plan.outputs.get(key)
        if old != new or key not in plan.old_outputs or key not in plan.outputs:
            rows.append(f"| {_cell(_code(key))} | {_cell(_value(old, RECORDED_UNKNOWN_TEXT) if key in plan.old_outputs else '')} "
                        f"| {_cell(_value(new) if key in plan.outputs else '')} |")
    return "\n".join(rows) + "\n\n</details>"


# --- values and escaping -------------------------------------------------------------


def _value(value: Any, unknown: str = UNKNOWN_TEXT) -> str:
    """A value for people: secrets masked, unknowns spelled out (``unknown``: what a
    recorded one says), long text shortened."""
    if value is UNKNOWN:
        return f"*{unknown}*"
    if isinstance(value, Secret):
        return _code(MASK)
    text = json.dumps(masked(value), default=lambda v: unknown if v is UNKNOWN else str(v))
    if len(text) > VALUE_LIMIT:
        text = text[: VALUE_LIMIT - 1] + "…"
    return _code(text)


def _code(text: str) -> str:
    """An inline code span that survives backticks in ``text``."""
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """Text safe inside a table cell: a pipe would end the cell, even in code."""
    return text.replace("|", "\\|")


_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _text(text: str) -> str:
    """Free text (a policy's message) on one line, shortened, with Markdown and HTML
    syntax neutralised: a message must not be able to restyle the page."""
    flat = " ".join(text.split())
    if len(flat) > MESSAGE_LIMIT:
        flat = flat[: MESSAGE_LIMIT - 1] + "…"
    return _SPECIAL.sub(r"\\\1", flat)
