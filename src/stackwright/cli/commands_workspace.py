"""`stackwright run preview|plan|up`: one command over the stacks of a workspace.

    stackwright run preview --changed-since origin/main   # what a change touches
    stackwright run up --all --yes --parallel-stacks 8     # everything, in order

Stacks come from ``stackwright-workspace.yaml``; each runs as its own `stackwright`
process in its project's folder (see ``stackwright.workflow.multistack``), its output
printed in one block when it finishes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stackwright.errors import StackwrightError

if TYPE_CHECKING:
    from stackwright.graph import Graph
    from stackwright.program.workspace import Workspace
    from stackwright.workflow.multistack import Job, Listener, StackResult
    from stackwright.workflow.workspace import Selection

F = TypeVar("F", bound=Callable[..., Any])
CHILD = (sys.executable, "-m", "stackwright.cli.main")
STATUS_COLOURS = {"ok": "green", "failed": "red", "skipped": "yellow", "not-started": "yellow"}


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(run)


@click.group()
def run() -> None:
    """Preview, plan or apply many stacks of a workspace, in dependency order.

    Stacks and their dependencies come from stackwright-workspace.yaml (found in the
    current folder or a parent). Independent stacks run in parallel; a failed stack
    skips only the stacks that depend on it.
    """


def selection_options(fn: F) -> F:
    for option in reversed([
        click.option("--all", "select_every", is_flag=True, help="Every stack of the workspace."),
        click.option("--changed-since", "since", metavar="GIT_REF",
                     help="Stacks whose program, config or imported local code changed since "
                     "GIT_REF, and every stack that depends on them."),
        click.option("--parallel-stacks", default=4, show_default=True, metavar="N",
                     help="At most N stacks at once."),
        click.option("--as", "who", metavar="NAME", help="Who is acting (default: "
                     "$STACKWRIGHT_USER, git user.email, login)."),
    ]):
        fn = option(fn)
    return fn


@run.command("preview")
@selection_options
@click.option("--diff", "show_diff", is_flag=True, help="Show property-level diffs.")
def run_preview(select_every: bool, since: str | None, parallel_stacks: int, who: str | None,
                show_diff: bool) -> None:
    """Preview the selected stacks. Changes nothing."""
    context = _prepare(select_every, since, parallel_stacks)
    _preview(context, who, ["--diff"] if show_diff else [])


@run.command("plan")
@selection_options
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Save each stack's plan as DIR/<project>/<stack>.plan (with `stackwright plan --out`).")
def run_plan(select_every: bool, since: str | None, parallel_stacks: int, who: str | None,
             out_dir: Path | None) -> None:
    """Make the selected stacks' plans: saved to --out-dir, else shown like preview."""
    context = _prepare(select_every, since, parallel_stacks)
    plan_args = _plan_command_args() if out_dir is not None else None
    if out_dir is None or plan_args is None:
        if out_dir is not None:
            click.echo(click.style("Saved plans need `stackwright plan --out FILE`, which this "
                                   "version does not have: showing previews, no plan files written.",
                                   fg="yellow"))
        _preview(context, who, [])
        return
    folder = out_dir.resolve()

    def job(ref: str) -> Job:
        entry, stack = context.entry_and_stack(ref)
        target = folder / entry.name / f"{stack}.plan"
        target.parent.mkdir(parents=True, exist_ok=True)
        return context.job(ref, ["plan", plan_args[0], stack, plan_args[1], str(target)])

    _execute(context, "plan", job, who)


@run.command("up")
@selection_options
@click.option("-y", "--yes", is_flag=True, help="Apply without asking.")
def run_up(select_every: bool, since: str | None, parallel_stacks: int, who: str | None,
           yes: bool) -> None:
    """Apply the selected stacks, dependencies first.

    Without --yes, previews them all and asks once. Stacks the workspace file lists but
    that do not exist yet are created first.
    """
    from stackwright.cli.common import confirm_or_fail
    from stackwright.workflow.multistack import initialize

    if not yes and not sys.stdin.isatty():
        raise StackwrightError("refusing to change anything without confirmation",
                               hint="pass --yes to apply without asking")
    context = _prepare(select_every, since, parallel_stacks)
    if not context.selection:
        return
    if not yes:
        _preview(context, who, [], exit_on_failure=True)
        confirm_or_fail(f"Apply these {len(context.selection.refs)} stack(s)?", yes)
    created = initialize(context.workspace, context.selection.refs)
    if created:
        click.echo(f"Created {len(created)} new stack(s): {', '.join(created)}")
    _execute(context, "up", lambda ref: context.job(ref, ["up", "-s", _stack(ref), "--yes"]), who)


@run.command("preview-new", hidden=True)
@click.option("-s", "--stack", "stack_name", required=True)
@click.option("--as", "who")
def preview_new(stack_name: str, who: str | None) -> None:
    """Preview a stack that is not initialized yet (used by `run preview`)."""
    from stackwright.cli.common import echo_lines
    from stackwright.cli.render import plan_lines
    from stackwright.program.project import check_stack_name, find_project
    from stackwright.workflow.multistack import preview_new_stack

    project = find_project()
    plan = preview_new_stack(project, check_stack_name(stack_name), who)
    click.echo(f"Stack {stack_name} is not initialized yet; `stackwright run up` creates it.")
    echo_lines(plan_lines(plan))


class _Context:
    """The workspace, its stack graph and the selection one `run` acts on."""

    def __init__(self, workspace: Workspace, graph: Graph[str], selection: Selection,
                 parallel: int) -> None:
        self.workspace = workspace
        self.graph = graph
        self.selection = selection
        self.parallel = parallel

    def entry_and_stack(self, ref: str) -> tuple[Any, str]:
        project_key, _, stack = ref.rpartition("/")
        return self.workspace.project(project_key), stack

    def job(self, ref: str, args: list[str]) -> Job:
        from stackwright.workflow.multistack import Job

        entry, _ = self.entry_and_stack(ref)
        debug = ["--debug"] if "--debug" in sys.argv else []
        return Job(argv=(*CHILD, *debug, *args), cwd=entry.root)


def _stack(ref: str) -> str:
    return ref.rpartition("/")[2]


def _prepare(select_every: bool, since: str | None, parallel: int) -> _Context:
    """Load the workspace, build the graph, select the stacks and say which and why."""
    from stackwright.workflow.workspace import (
        require_workspace, select_all, select_changed, stack_graph,
    )

    if parallel < 1:
        raise click.BadParameter("must be at least 1", param_hint="--parallel-stacks")
    if select_every == (since is not None):
        raise click.UsageError("choose the stacks: --all, or --changed-since GIT_REF")
    workspace = require_workspace()
    graph = stack_graph(workspace)
    selection = select_all(graph) if since is None else select_changed(workspace, graph, since)
    _echo_selection(selection)
    return _Context(workspace, graph, selection, parallel)


def _echo_selection(selection: Selection) -> None:
    for note in selection.notes:
        click.echo(click.style(note, fg="yellow"))
    if selection.since is None:
        click.echo(click.style(f"Selected all {selection.total} stacks.", bold=True))
        return
    count = len(selection.refs)
    click.echo(click.style(f"Selected {count} of {selection.total} stacks (changed since "
                           f"{selection.since}):", bold=True))
    width = max((len(ref) for ref in selection.refs), default=0)
    for ref, reasons in selection.reasons.items():
        click.echo(f"  {ref:<{width}}  {'; '.join(reasons)}")
    if not count:
        click.echo("Nothing to do.")


def _preview(context: _Context, who: str | None, extra: list[str],
             exit_on_failure: bool = True) -> None:
    from stackwright.workflow.multistack import initialized

    if not context.selection:
        return
    existing = initialized(context.workspace, context.selection.refs)

    def job(ref: str) -> Job:
        if ref in existing:
            return context.job(ref, ["preview", "-s", _stack(ref), *extra])
        return context.job(ref, ["run", "preview-new", "-s", _stack(ref)])

    _execute(context, "preview", job, who, exit_on_failure=exit_on_failure)


def _execute(context: _Context, action: str, job_for: Callable[[str], Job], who: str | None,
             exit_on_failure: bool = True) -> None:
    """Run ``action`` over the selection, print each stack's block and a summary."""
    from stackwright.workflow.multistack import Listener, child_env, run_stacks, subgraph

    started = time.monotonic()
    graph = subgraph(context.graph, context.selection.refs)
    listener = Listener(started=lambda ref: click.echo(f"... {ref}: {action} started"),
                        finished=lambda result: _echo_result(result, action))
    if len(graph.deps) == 1:
        ref = next(iter(graph.deps))
        results = {ref: _run_here(ref, job_for(ref), child_env(who), listener)}
    else:
        results = run_stacks(graph, job_for, parallel=context.parallel, env=child_env(who),
                             listener=listener)
    failed = _echo_summary(list(results.values()), action, time.monotonic() - started)
    if failed and exit_on_failure:
        raise SystemExit(1)


def _run_here(ref: str, job: Job, env: Mapping[str, str], listener: Listener) -> StackResult:
    """A lone stack runs in this process: the same command a child process would run,
    without a second interpreter start (a third of `run --changed-since` for one stack)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from stackwright.workflow.multistack import FAILED, OK, StackResult

    listener.started(ref)
    buffer = io.StringIO()
    started = time.monotonic()
    with _as_child(job.cwd, env), redirect_stdout(buffer), redirect_stderr(buffer):
        ok = _invoke(list(job.argv[len(CHILD):]))
    result = StackResult(ref, OK if ok else FAILED, buffer.getvalue(), time.monotonic() - started)
    listener.finished(result)
    return result


@contextmanager
def _as_child(cwd: Path, env: Mapping[str, str]) -> Iterator[None]:
    """The working directory and environment a child process would have, for a while."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _invoke(args: list[str]) -> bool:
    """Run a `stackwright` command line here; True when it succeeded. User errors are
    printed as `stackwright` prints them; bugs propagate with their traceback."""
    from stackwright.cli.main import cli

    try:
        cli.main(args=args, prog_name="stackwright", standalone_mode=False)
    except SystemExit as exc:
        return exc.code in (0, None)
    except click.exceptions.Exit as exc:
        return exc.exit_code == 0
    except click.ClickException as exc:
        exc.show()
        return False
    except StackwrightError as exc:
        click.echo(click.style("error: ", fg="red", bold=True) + exc.headline(), err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        return False
    return True


def _echo_result(result: StackResult, action: str) -> None:
    colour = STATUS_COLOURS.get(result.status)
    if result.status == "skipped":
        click.echo(click.style(f"--- {result.ref}: skipped ({result.cause} failed)", fg=colour))
        return
    title = f"--- {result.ref} ({action}): {result.status} in {result.seconds:.1f}s"
    click.echo(click.style(title, fg=colour, bold=True))
    body = result.output.rstrip("\n")
    if body:
        click.echo("\n".join("    " + line for line in body.splitlines()))


def _echo_summary(results: list[StackResult], action: str, seconds: float) -> int:
    """The counts, then every stack that did not succeed; returns how many."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    bad = [r for r in results if not r.ok]
    colour = "red" if bad else "green"
    click.echo(click.style(f"run {action}: {len(results)} stack(s) in {seconds:.1f}s: {parts}",
                           fg=colour, bold=True))
    for result in bad:
        why = f" (needs {result.cause}, which failed)" if result.cause else ""
        click.echo(click.style(f"  {result.status:<11} {result.ref}{why}",
                               fg=STATUS_COLOURS.get(result.status)))
    return len(bad)


def _plan_command_args() -> tuple[str, str] | None:
    """The stack and output options of `stackwright plan`, if this version has it."""
    root = click.get_current_context().find_root().command
    command = root.get_command(click.get_current_context(), "plan") if isinstance(root, click.Group) else None
    if command is None:
        return None
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    stack = next((o for o in ("-s", "--stack") if o in options), None)
    out = next((o for o in ("--out", "-o") if o in options), None)
    return (stack, out) if stack and out else None
