"""`stackwright run preview|plan|up`: one command over the stacks of a workspace.

    stackwright run preview --changed-since origin/main   # what a change touches
    stackwright run up --all --yes --parallel-stacks 8     # everything, in order

Stacks come from ``stackwright-workspace.yaml``; each runs as its own `stackwright`
process in its project's folder (see ``stackwright.workflow.multistack``), its output
printed in one block when it finishes. With ``--format markdown|json`` that running
commentary goes to stderr and stdout holds one document for every stack's plan.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stackwright.cli.main import diff_option, who_option, yes_option
from stackwright.errors import StackwrightError

if TYPE_CHECKING:
    from stackwright.graph import Graph
    from stackwright.program.workspace import ProjectEntry, Workspace
    from stackwright.workflow.multistack import Job, Listener, Review, StackResult
    from stackwright.workflow.workspace import Selection

F = TypeVar("F", bound=Callable[..., Any])
CHILD = (sys.executable, "-m", "stackwright.cli.main")
FORMATS = ("text", "json", "markdown")
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
def run_preview(select_every: bool, since: str | None, parallel_stacks: int, who: str | None,
                output: str, show_diff: bool) -> None:
    """Preview the selected stacks. Changes nothing."""
    context = _prepare(select_every, since, parallel_stacks, who, output)
    if output == "text":
        _preview(context, ["--diff"] if show_diff else [])
    else:
        _review(context)


@run.command("plan")
@selection_options
@format_option
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Save each stack's plan as DIR/<project>/<stack>.plan (`stackwright plan --out`).")
def run_plan(select_every: bool, since: str | None, parallel_stacks: int, who: str | None,
             output: str, out_dir: Path | None) -> None:
    """Make the selected stacks' plans: saved to --out-dir, else shown like preview."""
    context = _prepare(select_every, since, parallel_stacks, who, output)
    plan_args = _plan_command_args() if out_dir is not None else None
    if out_dir is not None and plan_args is None:
        context.say(click.style("Saved plans need `stackwright plan --out FILE`, which this "
                                "version does not have: showing previews, no plan files written.",
                                fg="yellow"))
    if out_dir is not None and plan_args is not None:
        _save_plans(context, out_dir.resolve(), plan_args)
    elif output == "text":
        _preview(context, [])
    else:
        _review(context)


@run.command("up")
@selection_options
@yes_option()
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
    context = _prepare(select_every, since, parallel_stacks, who, "text")
    if not context.selection:
        return
    if not yes:
        _preview(context, [])
        confirm_or_fail(f"Apply these {len(context.selection.refs)} stack(s)?", yes)
    created = initialize(context.workspace, context.selection.refs)
    if created:
        click.echo(f"Created {len(created)} new stack(s): {', '.join(created)}")
    _execute(context, "up", lambda ref: context.job(ref, ["up", "-s", _stack(ref), "--yes"]))


@run.command("preview-new", hidden=True)
@click.option("-s", "--stack", "stack_name", required=True)
@who_option
def preview_new(stack_name: str, who: str | None) -> None:
    """Preview a stack that is not initialized yet (a step of `run preview`)."""
    from stackwright.cli.common import echo_lines
    from stackwright.cli.render import plan_lines
    from stackwright.program.project import check_stack_name, find_project
    from stackwright.workflow.multistack import preview_new_stack

    plan = preview_new_stack(find_project(), check_stack_name(stack_name), who)
    click.echo(f"Stack {stack_name} is not initialized yet; `stackwright run up` creates it.")
    echo_lines(plan_lines(plan))


@run.command("review", hidden=True)
@click.option("-s", "--stack", "stack_name", required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@who_option
def review(stack_name: str, out: Path, who: str | None) -> None:
    """Preview one stack and save plan and violations for `run` to render (a step of
    `run preview --format ...`)."""
    from stackwright.cli.common import echo_lines
    from stackwright.cli.render import plan_lines, violation_lines
    from stackwright.program.project import check_stack_name, find_project
    from stackwright.workflow.multistack import review_stack, save_review

    path = out.resolve()
    plan, violations = review_stack(find_project(), check_stack_name(stack_name), who)
    save_review(path, (plan, violations))
    echo_lines(plan_lines(plan))
    if violations:
        echo_lines(violation_lines(violations))


# --- one run: the workspace, the selection, the stacks' processes ----------------------


class _Context:
    """The workspace, its stack graph and the selection one `run` acts on."""

    def __init__(self, workspace: Workspace, graph: Graph[str], selection: Selection,
                 parallel: int, who: str | None, output: str) -> None:
        self.workspace = workspace
        self.graph = graph
        self.selection = selection
        self.parallel = parallel
        self.who = who
        self.output = output

    def say(self, text: str) -> None:
        """Commentary: on stdout, unless stdout is for the document."""
        click.echo(text, err=self.output != "text")

    def entry(self, ref: str) -> ProjectEntry:
        entry = self.workspace.project(ref.rpartition("/")[0])
        assert entry is not None, ref
        return entry

    def job(self, ref: str, args: list[str]) -> Job:
        from stackwright.workflow.multistack import Job

        debug = ["--debug"] if "--debug" in sys.argv else []
        return Job(argv=(*CHILD, *debug, *args), cwd=self.entry(ref).root)


def _stack(ref: str) -> str:
    return ref.rpartition("/")[2]


def _prepare(select_every: bool, since: str | None, parallel: int, who: str | None,
             output: str) -> _Context:
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
    context = _Context(workspace, graph, selection, parallel, who, output)
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


def _preview(context: _Context, extra: list[str]) -> None:
    """Each stack's own `preview`; stacks not created yet are previewed as new."""
    from stackwright.workflow.multistack import initialized

    if not context.selection:
        return
    existing = initialized(context.workspace, context.selection.refs)

    def job(ref: str) -> Job:
        if ref in existing:
            return context.job(ref, ["preview", "-s", _stack(ref), *extra])
        return context.job(ref, ["run", "preview-new", "-s", _stack(ref)])

    _execute(context, "preview", job)


def _review(context: _Context) -> None:
    """Preview every stack, then print one document of all their plans."""
    import tempfile

    from stackwright.workflow.multistack import load_review

    if not context.selection:
        return
    with tempfile.TemporaryDirectory(prefix="stackwright-run-") as folder:
        paths = {ref: Path(folder) / f"{i}.review" for i, ref in enumerate(context.selection.refs)}
        results = _execute(context, "preview", lambda ref: context.job(
            ref, ["run", "review", "-s", _stack(ref), "--out", str(paths[ref])]), exit_on_failure=False)
        reviews = {ref: load_review(paths[ref]) for ref, r in results.items() if r.ok}
    _emit(context, reviews, results)


def _save_plans(context: _Context, folder: Path, plan_args: tuple[str, str]) -> None:
    """`stackwright plan --out` for every stack, into ``folder/<project>/<stack>.plan``."""
    if not context.selection:
        return
    targets = {ref: folder / context.entry(ref).name / f"{_stack(ref)}.plan"
               for ref in context.selection.refs}
    for target in targets.values():
        target.parent.mkdir(parents=True, exist_ok=True)
    stack_opt, out_opt = plan_args
    results = _execute(context, "plan", lambda ref: context.job(
        ref, ["plan", stack_opt, _stack(ref), out_opt, str(targets[ref])]),
        exit_on_failure=context.output == "text")
    if context.output != "text":
        reviews = {ref: _saved_review(targets[ref]) for ref, r in results.items() if r.ok}
        _emit(context, reviews, results)


def _saved_review(path: Path) -> Review:
    from stackwright.workflow.plan_file import read_plan_file
    from stackwright.workflow.policies import Violation

    saved = read_plan_file(path)
    violations = [Violation(str(v["policy"]), str(v["message"]), v.get("urn"), bool(v["mandatory"]))
                  for v in saved.get("violations") or []]
    return saved.plan(None), violations


def _emit(context: _Context, reviews: Mapping[str, Review],
          results: Mapping[str, StackResult]) -> None:
    """The document on stdout; exit 1 afterwards if a stack did not succeed."""
    from stackwright.workflow.markdown import render_stacks
    from stackwright.workflow.policies import with_violations

    missing = [r for r in results.values() if not r.ok]
    if context.output == "markdown":
        text = render_stacks([(ref, plan, v) for ref, (plan, v) in reviews.items()])
        click.echo(text.rstrip("\n") + _markdown_missing(missing))
    else:
        document = {
            "stacks": [{"ref": ref, **with_violations(plan, v)} for ref, (plan, v) in reviews.items()],
            "not_done": [{"ref": r.ref, "status": r.status, "cause": r.cause} for r in missing],
        }
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    if missing:
        raise SystemExit(1)


def _markdown_missing(missing: list[StackResult]) -> str:
    if not missing:
        return ""
    lines = ["", "", f"**{len(missing)} stack(s) have no plan here** (see the job log):", ""]
    for result in missing:
        why = f", needs `{result.cause}`" if result.cause else ""
        lines.append(f"- `{result.ref}`: {result.status}{why}")
    return "\n".join(lines)


def _execute(context: _Context, action: str, job_for: Callable[[str], Job],
             exit_on_failure: bool = True) -> dict[str, StackResult]:
    """Run ``action`` over the selection, print each stack's block and a summary."""
    from stackwright.workflow.multistack import Listener, child_env, run_stacks, subgraph

    started = time.monotonic()
    graph = subgraph(context.graph, context.selection.refs)
    listener = Listener(started=lambda ref: context.say(f"... {ref}: {action} started"),
                        finished=lambda result: _echo_result(context, result, action))
    env = child_env(context.who)
    if len(graph.deps) == 1:
        ref = next(iter(graph.deps))
        results = {ref: _run_here(ref, job_for(ref), env, listener)}
    else:
        results = run_stacks(graph, job_for, parallel=context.parallel, env=env, listener=listener)
    failed = _echo_summary(context, list(results.values()), action, time.monotonic() - started)
    if failed and exit_on_failure:
        raise SystemExit(1)
    return results


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


def _echo_result(context: _Context, result: StackResult, action: str) -> None:
    colour = STATUS_COLOURS.get(result.status)
    if result.status == "skipped":
        context.say(click.style(f"--- {result.ref}: skipped ({result.cause} failed)", fg=colour))
        return
    title = f"--- {result.ref} ({action}): {result.status} in {result.seconds:.1f}s"
    context.say(click.style(title, fg=colour, bold=True))
    body = result.output.rstrip("\n")
    if body:
        context.say("\n".join("    " + line for line in body.splitlines()))


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
        why = f" (needs {result.cause}, which failed)" if result.cause else ""
        context.say(click.style(f"  {result.status:<11} {result.ref}{why}",
                                fg=STATUS_COLOURS.get(result.status)))
    return len(bad)


def _plan_command_args() -> tuple[str, str] | None:
    """The stack and output options of `stackwright plan`, if this version has it."""
    context = click.get_current_context()
    root = context.find_root().command
    command = root.get_command(context, "plan") if isinstance(root, click.Group) else None
    if command is None:
        return None
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    stack = next((o for o in ("-s", "--stack") if o in options), None)
    out = next((o for o in ("--out", "-o") if o in options), None)
    return (stack, out) if stack and out else None
