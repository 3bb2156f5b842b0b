"""`stackwright run preview|plan|up|destroy`: one command over the stacks of a workspace.

    stackwright run preview --changed-since origin/main   # what a change touches
    stackwright run up --all --yes                         # everything, in order

Stacks come from ``stackwright-workspace.yaml`` and run one after another in this
process (``stackwright.workflow.multistack``), each printed as one block when it
finishes. With ``--format markdown|json`` that running commentary goes to stderr and
stdout holds one document for every stack's plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stackwright.cli.options import diff_option, emergency_option, parallel_option, who_option, yes_option
from stackwright.errors import ProjectError

if TYPE_CHECKING:
    from stackwright.graph import Graph
    from stackwright.program.workspace import Workspace
    from stackwright.workflow.multistack import StackResult
    from stackwright.state.store import StateStore
    from stackwright.workflow.shards import ShardOptions
    from stackwright.workflow.workspace import Selection

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("text", "json", "markdown")
STATUS_COLOURS = {"ok": "green", "failed": "red", "skipped": "yellow", "not-started": "yellow"}


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(run)


@click.group()
def run() -> None:
    """Preview, plan, apply or destroy many stacks of a workspace, in dependency order.

    Stacks and their dependencies come from stackwright-workspace.yaml (found in the
    current folder or a parent). They run one after another in this process,
    dependencies first (dependents first for destroy); a failed stack skips only the
    stacks that depend on it.
    """


def selection_options(fn: F) -> F:
    for option in reversed([
        click.option("--all", "select_every", is_flag=True, help="Every stack of the workspace."),
        click.option("--changed-since", "since", metavar="GIT_REF",
                     help="Stacks whose program, config or imported local code changed since "
                     "GIT_REF, and every stack that depends on them."),
        who_option,
    ]):
        fn = option(fn)
    return fn


def format_option(fn: F) -> F:
    return click.option("--format", "output", type=click.Choice(FORMATS), default="text",
                        show_default=True,
                        help="markdown or json: one document of every stack's plan on stdout "
                        "(progress on stderr), e.g. for a pull-request comment.")(fn)


@run.command("preview")
@selection_options
@format_option
@diff_option
def run_preview(select_every: bool, since: str | None, who: str | None, output: str,
                show_diff: bool) -> None:
    """Preview the selected stacks. Changes nothing.

    Stacks not created yet are previewed as creating everything; a stack that reads
    one planned earlier in this run sees its planned outputs.
    """
    context = _prepare(select_every, since, who, output)
    context.show_diff = show_diff
    _finish(context, _execute(context, "preview"))


@run.command("plan")
@selection_options
@format_option
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Save each stack's plan as DIR/<project>/<stack>.plan (as `stackwright plan --out`).")
def run_plan(select_every: bool, since: str | None, who: str | None, output: str,
             out_dir: Path | None) -> None:
    """Make the selected stacks' plans: saved to --out-dir, else shown like preview."""
    context = _prepare(select_every, since, who, output)
    _finish(context, _execute(context, "plan", out_dir=out_dir.resolve() if out_dir else None))


@run.command("up")
@selection_options
@yes_option()
@parallel_option
@click.option("--shard", metavar="I/K",
              help="Be worker I of K sharing this run through the shared state store "
              "(one CI matrix job each); needs --yes.")
@click.option("--run-id", metavar="ID",
              help="What the K workers of one run share (default with --shard: "
              "$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT).")
@click.option("--lease", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="With --shard: a worker's claim on a stack that is not renewed for this "
              "long is taken over by another worker.")
@emergency_option
def run_up(select_every: bool, since: str | None, who: str | None, yes: bool, parallel: int,
           shard: str | None, run_id: str | None, lease: float, emergency: str | None) -> None:
    """Apply the selected stacks, dependencies first.

    Without --yes, previews them all and asks once. Stacks the workspace file lists but
    that do not exist yet are created first, except in a protected environment (the
    apply of their approved plan creates them). With --shard I/K, K workers started with
    the same selection and run id apply the stacks between them (docs/workspaces.md).
    """
    from stackwright.workflow.multistack import initialize

    sharding = _shard_options(shard, run_id, lease, yes)
    context = _prepare(select_every, since, who, "text")
    if not context.selection:
        return
    if sharding is None and not _confirmed(context, yes, "Apply"):
        _cancelled()
    stores: dict[str, StateStore] | None = {} if sharding is not None else None
    created = initialize(context.workspace, context.selection.refs, keep=stores, emergency=emergency)
    if created:
        click.echo(f"Created {len(created)} new stack(s): {', '.join(created)}")
    if sharding is not None:
        _run_shard(context, sharding, parallel, emergency, stores or {})
        return
    _finish(context, _execute(context, "up", parallel=parallel, emergency=emergency))


def _cancelled() -> None:
    """A declined prompt: nothing changed, and the command fails."""
    click.echo("Cancelled; nothing was changed.", err=True)
    raise SystemExit(1)


def _shard_options(shard: str | None, run_id: str | None, lease: float,
                   yes: bool) -> ShardOptions | None:
    """The worker's ``ShardOptions``, or None without --shard."""
    import os

    from stackwright.workflow.shards import Shard, ShardOptions

    if shard is None:
        if run_id is not None:
            raise click.UsageError("--run-id goes with --shard I/K")
        return None
    if not yes:
        raise click.UsageError("--shard needs --yes: workers apply without asking")
    if lease <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--lease")
    if run_id is None and os.environ.get("GITHUB_RUN_ID"):
        run_id = f"{os.environ['GITHUB_RUN_ID']}-{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    if not run_id:
        raise click.UsageError("--shard needs --run-id ID (the same for every worker of the run)")
    try:
        parsed = Shard.parse(shard)
    except ProjectError as exc:
        raise click.BadParameter(f"{exc.message}: {exc.hint}", param_hint="--shard") from exc
    return ShardOptions(parsed, run_id, lease=lease)


def _run_shard(context: _Context, sharding: ShardOptions, parallel: int,
               emergency: str | None, stores: dict[str, StateStore]) -> None:
    """This worker's part of the run, then the whole run's outcome."""
    from stackwright.cli.main import end_at_once
    from stackwright.workflow.multistack import Listener, RunOptions, subgraph
    from stackwright.workflow.shards import run_shard, shard_summary

    end_at_once()
    started = time.monotonic()
    graph = subgraph(context.graph, context.selection.refs)
    listener = Listener(started=lambda ref: context.say(f"... {ref}: up started"),
                        finished=lambda result: _echo_result(context, result, "up"))
    options = RunOptions("up", context.who, parallel=parallel, emergency=emergency)
    results, done = run_shard(context.workspace, graph, options, sharding, listener, stores)
    counts = shard_summary(done, graph.deps)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    bad = {ref: d for ref, d in done.items() if d.status != "ok"}
    context.say(click.style(
        f"run up (shard {sharding.shard}, run {sharding.run_id}): {len(graph.deps)} stack(s) in "
        f"{time.monotonic() - started:.1f}s: {parts}; {len(results)} done by this worker",
        fg="red" if bad else "green", bold=True))
    for ref, fate in bad.items():
        why = f" (needs {fate.cause}, which failed)" if fate.cause else ""
        context.say(click.style(f"  {fate.status:<11} {ref}{why} [{fate.worker}]",
                                fg=STATUS_COLOURS.get(fate.status)))
    if bad:
        raise SystemExit(1)


@run.command("destroy")
@selection_options
@yes_option("Destroy without asking.")
@parallel_option
@click.option("--allow-destroy", is_flag=True,
              help="Let policy no-destroy-stateful pass deleting stateful resources (buckets, tables, clusters). "
                   "A protected resource stays refused: remove protect=True in the program and run `up` first.")
@emergency_option
def run_destroy(select_every: bool, since: str | None, who: str | None, yes: bool,
                parallel: int, allow_destroy: bool, emergency: str | None) -> None:
    """Delete every resource of the selected stacks, dependents first."""
    context = _prepare(select_every, since, who, "text")
    if not context.selection:
        return
    if not yes:
        from stackwright.cli.common import confirm_or_fail, refuse_without_terminal

        refuse_without_terminal()

        if not confirm_or_fail(f"Destroy every resource of these {len(context.selection.refs)} stack(s)?", yes):
            _cancelled()
    _finish(context, _execute(context, "destroy", parallel=parallel, emergency=emergency,
                              allow_destroy=allow_destroy))


def _confirmed(context: _Context, yes: bool, verb: str) -> bool:
    """``--yes``, or a preview of every selected stack and one question."""
    from stackwright.cli.common import confirm_or_fail, refuse_without_terminal

    if yes:
        return True
    refuse_without_terminal()
    results = _execute(context, "preview")
    if any(not r.ok for r in results.values()):
        raise SystemExit(1)
    return confirm_or_fail(f"{verb} these {len(context.selection.refs)} stack(s)?", yes)


# --- one run: the workspace, the selection, the stacks ---------------------------------


class _Context:
    """The workspace, its stack graph and the selection one `run` acts on."""

    def __init__(self, workspace: Workspace, graph: Graph[str], selection: Selection,
                 who: str, output: str) -> None:
        self.workspace = workspace
        self.graph = graph
        self.selection = selection
        self.who = who
        self.output = output
        self.show_diff = False

    def say(self, text: str) -> None:
        """Commentary: on stdout, unless stdout is for the document."""
        click.echo(text, err=self.output != "text")


def _prepare(select_every: bool, since: str | None, who: str | None, output: str) -> _Context:
    """Load the workspace, build the graph, select the stacks and say which and why."""
    from stackwright.operations.session import identity
    from stackwright.workflow.workspace import (
        require_workspace, select_all, select_changed, stack_graph,
    )

    if select_every and since is not None:
        raise click.UsageError("--all and --changed-since are exclusive: choose one")
    if not select_every and since is None:
        raise click.UsageError("choose the stacks: --all, or --changed-since GIT_REF")
    workspace = require_workspace()
    graph = stack_graph(workspace)
    selection = select_all(graph) if since is None else select_changed(workspace, graph, since)
    context = _Context(workspace, graph, selection, identity(who), output)
    _echo_selection(context)
    return context


def _echo_selection(context: _Context) -> None:
    selection = context.selection
    for note in selection.notes:
        context.say(click.style(note, fg="yellow"))
    if selection.since is None:
        context.say(click.style(f"Selected all {selection.total} stacks.", bold=True))
        return
    context.say(click.style(f"Selected {len(selection.refs)} of {selection.total} stacks "
                            f"(changed since {selection.since}):", bold=True))
    width = max((len(ref) for ref in selection.refs), default=0)
    for ref, reasons in selection.reasons.items():
        context.say(f"  {ref:<{width}}  {'; '.join(reasons)}")
    if not selection:
        context.say("Nothing to do.")


def _execute(context: _Context, action: str, *, parallel: int = 16,
             out_dir: Path | None = None, emergency: str | None = None,
             allow_destroy: bool = False) -> dict[str, StackResult]:
    """Run ``action`` over the selection, print each stack's block and a summary."""
    from stackwright.workflow.multistack import Listener, RunOptions, run_stacks, subgraph

    if not context.selection:
        return {}
    if parallel < 1:
        raise click.BadParameter("must be at least 1", param_hint="--parallel")
    started = time.monotonic()
    graph = subgraph(context.graph, context.selection.refs)
    listener = Listener(started=lambda ref: context.say(f"... {ref}: {action} started"),
                        finished=lambda result: _echo_result(context, result, action))
    from stackwright.cli.progress import Notices

    options = RunOptions(action, context.who, parallel=parallel, out_dir=out_dir, emergency=emergency,
                         allow_destroy=allow_destroy, sink=Notices)
    results = run_stacks(context.workspace, graph, options, listener)
    _echo_summary(context, list(results.values()), action, time.monotonic() - started)
    return results


def _finish(context: _Context, results: Mapping[str, StackResult]) -> None:
    """The document on stdout (``--format``); exit 1 if a stack did not succeed."""
    if context.output != "text" and results:
        _emit(context, results)
    if any(not r.ok for r in results.values()):
        raise SystemExit(1)


def _emit(context: _Context, results: Mapping[str, StackResult]) -> None:
    from stackwright.workflow.markdown import render_stacks
    from stackwright.workflow.policies import with_violations

    planned = [(ref, r.plan, r.violations) for ref, r in results.items() if r.ok and r.plan is not None]
    missing = [r for r in results.values() if not r.ok]
    if context.output == "markdown":
        text = render_stacks(planned)
        click.echo(text.rstrip("\n") + _markdown_missing(missing))
        return
    document = {
        "stacks": [{"ref": ref, **with_violations(plan, v)} for ref, plan, v in planned],
        "not_done": [{"ref": r.ref, "status": r.status, "cause": r.cause} for r in missing],
    }
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def _markdown_missing(missing: list[StackResult]) -> str:
    if not missing:
        return ""
    lines = ["", "", f"**{len(missing)} stack(s) have no plan here** (see the job log):", ""]
    for result in missing:
        why = f", needs `{result.cause}`" if result.cause else ""
        lines.append(f"- `{result.ref}`: {result.status}{why}")
    return "\n".join(lines)


def _echo_result(context: _Context, result: StackResult, action: str) -> None:
    colour = STATUS_COLOURS.get(result.status)
    if result.status == "skipped":
        context.say(click.style(f"--- {result.ref}: skipped ({result.cause} failed)", fg=colour))
        return
    if result.status == "not-started":
        context.say(click.style(f"--- {result.ref}: not started (interrupted)", fg=colour))
        return
    title = f"--- {result.ref} ({action}): {result.status} in {result.seconds:.1f}s"
    context.say(click.style(title, fg=colour, bold=True))
    body = _result_lines(result, action, context.show_diff)
    if body:
        context.say("\n".join("    " + line for line in "\n".join(body).splitlines()))


def _result_lines(result: StackResult, action: str, show_diff: bool) -> list[str]:
    """What the stack's own command would have printed."""
    from stackwright.cli.commands_update import outcome_lines
    from stackwright.cli.render import plan_lines, violation_lines

    if result.error is not None:
        error = result.error
        headline = click.style("error: ", fg="red", bold=True) + error.headline()
        return ([headline] + ([f"  hint: {error.hint}"] if error.hint else [])
                + [f"  note: {note}" for note in getattr(error, "__notes__", ())])
    lines: list[str] = []
    if result.new:
        lines.append(f"Stack {result.ref} is not initialized yet"
                     + ("; nothing to destroy." if action == "destroy"
                        else "; applying its saved plan creates it." if result.plan_file is not None
                        else "; `stackwright run up` creates it."))
    if result.outcome is not None:
        recovery, body = outcome_lines(result.outcome, "Destroy" if action == "destroy" else "Update")
        lines += recovery + body
    elif result.plan is not None:
        lines += plan_lines(result.plan, show_diff=show_diff)
    if result.violations:
        lines += violation_lines(result.violations, blocks="`destroy`" if action == "destroy" else "`up`")
    if result.plan_file is not None:
        lines.append(f"Plan saved to {result.plan_file}")
    return lines


def _skip_reason(cause: str, action: str) -> str:
    """Why a stack was skipped: what it needs failed, or (destroy goes dependents first)
    a stack that depends on it failed to go."""
    return f" ({cause}, which depends on it, failed)" if action == "destroy" else f" (needs {cause}, which failed)"


def _echo_summary(context: _Context, results: list[StackResult], action: str,
                  seconds: float) -> int:
    """The counts, then every stack that did not succeed; returns how many."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    bad = [r for r in results if not r.ok]
    context.say(click.style(f"run {action}: {len(results)} stack(s) in {seconds:.1f}s: {parts}",
                            fg="red" if bad else "green", bold=True))
    for result in bad:
        why = _skip_reason(result.cause, action) if result.cause else ""
        context.say(click.style(f"  {result.status:<11} {result.ref}{why}",
                                fg=STATUS_COLOURS.get(result.status)))
    return len(bad)
