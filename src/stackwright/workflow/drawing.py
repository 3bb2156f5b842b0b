"""Pictures for the web view, drawn on the server as SVG by Graphviz's ``dot``.

Two drawings: the workspace's stacks (nodes coloured by status, edges from a stack to
the stacks it depends on) and one plan's resource DAG, laid out in waves: every step of
a wave can run at the same time once the wave before it is done, which is what
``--parallel`` exploits.

The DOT text is built here from plain values; ``dot`` (Debian's ``graphviz`` package)
only lays it out. Labels are quoted with ``quote`` so that a name cannot inject DOT.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from stackwright.errors import StackwrightError
from stackwright.plan.plan import Op, Plan
from stackwright.workflow.dashboard import StackSummary

STATUS_COLOURS: Mapping[str, tuple[str, str]] = {
    "applied": ("#2f9e62", "#e3f5ea"),
    "changed": ("#c98a10", "#fdf2d9"),
    "failed": ("#d2433f", "#fbe3e2"),
    "waiting": ("#6b55d6", "#ebe7fb"),
    "new": ("#7b8794", "#eef1f4"),
}
"""Per status: the stroke and the fill of a node (and of the legend on the pages)."""

OP_COLOURS: Mapping[Op, str] = {
    Op.CREATE: "#2f9e62", Op.UPDATE: "#c98a10", Op.REPLACE: "#6b55d6", Op.DELETE: "#d2433f",
    Op.SAME: "#9aa5b1", Op.READ: "#3d7fd9",
}
FONT = "DejaVu Sans"
DOT_TIMEOUT = 60.0


class DrawingError(StackwrightError):
    """``dot`` is missing or failed."""


def quote(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _header(name: str, rankdir: str) -> list[str]:
    return [f"digraph {quote(name)} {{",
            f'  graph [rankdir={rankdir}, bgcolor="transparent", nodesep=0.35, ranksep=0.6, '
            f'fontname={quote(FONT)}, pad=0.2];',
            f'  node [shape=box, style="rounded,filled", fontname={quote(FONT)}, fontsize=11, '
            'penwidth=1.6, margin="0.18,0.08"];',
            '  edge [color="#9aa5b1", arrowsize=0.7, penwidth=1.2];']


def workspace_dot(stacks: Sequence[StackSummary], gates: Iterable[tuple[str, str]] = ()) -> str:
    """Stacks grouped by project, each linked to the stacks it depends on (and, dashed,
    to the stacks whose environment gates it). Each node links to its stack's page."""
    lines = _header("stacks", "LR")
    by_project: dict[str, list[StackSummary]] = defaultdict(list)
    for summary in stacks:
        by_project[summary.project].append(summary)
    for index, (project, members) in enumerate(by_project.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label={quote(project)}; style="rounded,dashed"; color="#c5ccd3"; '
                     f'fontcolor="#52606d"; fontsize=12;')
        lines += [f"    {_stack_node(s)}" for s in members]
        lines.append("  }")
    known = {s.ref for s in stacks}
    for summary in stacks:
        lines += [f"  {quote(dep)} -> {quote(summary.ref)};" for dep in summary.depends_on if dep in known]
    lines += [f'  {quote(a)} -> {quote(b)} [style=dashed, color="#c98a10", tooltip="gate"];'
              for a, b in gates if a in known and b in known]
    return "\n".join([*lines, "}"])


def _stack_node(summary: StackSummary) -> str:
    stroke, fill = STATUS_COLOURS.get(summary.status, STATUS_COLOURS["new"])
    label = f"{summary.stack}\n{summary.environment} · {summary.resources} res · {summary.status}"
    href = f"/stacks/{summary.project}/{summary.stack}"
    return (f"{quote(summary.ref)} [label={quote(label)}, color={quote(stroke)}, fillcolor={quote(fill)}, "
            f"href={quote(href)}, target=\"_top\", tooltip={quote(summary.ref + ': ' + summary.status)}];")


def waves(plan: Plan) -> list[list[str]]:
    """The plan's changing steps in waves: a step's wave is one more than the latest
    wave among the changing steps it waits for."""
    changing = {s.urn: s for s in plan.steps if s.changes}
    wave: dict[str, int] = {}

    def depth(urn: str, seen: frozenset[str] = frozenset()) -> int:
        if urn not in wave:
            deps = [d for d in changing[urn].deps if d in changing and d not in seen]
            wave[urn] = 1 + max((depth(d, seen | {urn}) for d in deps), default=-1)
        return wave[urn]

    for urn in changing:
        depth(urn)
    out: list[list[str]] = [[] for _ in range(max(wave.values(), default=-1) + 1)]
    for urn in changing:
        out[wave[urn]].append(urn)
    return out


def plan_dot(plan: Plan) -> str:
    """The changing steps of ``plan`` as a DAG, one column per wave."""
    from stackwright.model.resource import urn_name

    steps = {s.urn: s for s in plan.steps if s.changes}
    lines = _header("plan", "LR")
    for number, wave in enumerate(waves(plan), start=1):
        lines.append(f"  subgraph cluster_wave{number} {{")
        lines.append(f'    label={quote(f"wave {number} · {len(wave)} in parallel")}; style="rounded"; '
                     f'color="#dde3e8"; fontcolor="#52606d"; fontsize=11;')
        for urn in wave:
            step = steps[urn]
            colour = OP_COLOURS.get(step.op, "#9aa5b1")
            label = f"{step.op.value} {urn_name(urn)}\n{step.type}"
            lines.append(f"    {quote(urn)} [label={quote(label)}, color={quote(colour)}, "
                         f"fillcolor=\"white\", tooltip={quote(urn)}];")
        lines.append("  }")
    for urn, step in steps.items():
        lines += [f"  {quote(dep)} -> {quote(urn)};" for dep in step.deps if dep in steps]
    return "\n".join([*lines, "}"])


def svg(dot_source: str) -> str:
    """The drawing as an SVG element (no XML prolog), ready to put inside a page."""
    binary = shutil.which("dot")
    if binary is None:
        raise DrawingError("Graphviz's `dot` is not installed: the web view draws its graphs with it",
                           hint="apt-get install graphviz (or your system's graphviz package)")
    try:
        done = subprocess.run([binary, "-Tsvg"], input=dot_source, capture_output=True, text=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DrawingError(f"`dot` took longer than {DOT_TIMEOUT:.0f}s to lay out the graph") from None
    if done.returncode != 0:
        raise DrawingError(f"`dot` failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    text = done.stdout
    return text[text.index("<svg"):] if "<svg" in text else text
