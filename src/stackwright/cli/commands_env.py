"""env status|pause|resume: what an environment's rules say about a stack, and scaling a
stack to zero and back through its config; ci github: the workflows that run the
reviewed-change flow (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stackwright.cli.common import confirm_or_fail, echo_lines
from stackwright.cli.options import diff_option, emergency_option, who_option, yes_option


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(env)
    cli.add_command(ci)


@click.group()
def env() -> None:
    """Environments: gate status, pause and resume."""


@env.command("status")
@click.argument("stack_name", metavar="STACK", required=False)
def status(stack_name: str | None) -> None:
    """Show STACK's environment, whether its gate is open, and whether it is paused."""
    from stackwright.cli.common import open_stack
    from stackwright.workflow.gate import evaluate_gate, refusal_message
    from stackwright.workflow.pause import pause_record

    session = open_stack(stack_name)
    try:
        verdict = evaluate_gate(session.project, session.store, session.stack, session.program_fingerprint().digest)
        record = pause_record(session.project, session.stack)
    finally:
        session.close()
    click.echo(f"stack {verdict.stack}: environment {verdict.environment}")
    if verdict.gate is None:
        click.echo("gate: none")
    elif verdict.passed:
        click.echo(click.style(f"gate: open ({verdict.gate} applied this program)", fg="green"))
    else:
        click.echo(click.style(f"gate: closed: {refusal_message(verdict)}", fg="yellow"))
    click.echo(f"paused: since {record.at} by {record.by}" if record else "paused: no")


@env.command("pause")
@click.argument("stack_name", metavar="STACK")
@yes_option()
@diff_option
@who_option
@emergency_option
def pause(stack_name: str, yes: bool, show_diff: bool, who: str | None, emergency: str | None) -> None:
    """Scale STACK to zero: write its environment's `pause:` values into the stack's
    config (keeping the old ones in a `paused:` section), preview, confirm, apply."""
    from stackwright.workflow.pause import prepare_pause

    project = _project(stack_name)
    _carry_out(prepare_pause(project, stack_name, who, emergency), yes, show_diff, emergency)


@env.command("resume")
@click.argument("stack_name", metavar="STACK")
@yes_option()
@diff_option
@who_option
@emergency_option
def resume(stack_name: str, yes: bool, show_diff: bool, who: str | None, emergency: str | None) -> None:
    """Undo `env pause`: restore the saved values in STACK's config, preview, confirm, apply."""
    from stackwright.workflow.pause import prepare_resume

    project = _project(stack_name)
    _carry_out(prepare_resume(project, stack_name, who, emergency), yes, show_diff, emergency)


def _project(stack_name: str) -> Any:
    """The project, with the working directory at its root (the program and the local
    provider resolve relative paths against it), and the stack name checked."""
    import os

    from stackwright.program.project import check_stack_name, find_project

    check_stack_name(stack_name)
    project = find_project()
    os.chdir(project.root)
    return project


def _carry_out(edit: Any, yes: bool, show_diff: bool, emergency: str | None) -> None:
    """Show the config edit, then pass it through the change gateway (preview, policies,
    protection, confirm, apply); on failure, say how to finish or undo, since the edit
    stays in the stack file."""
    from stackwright.cli.commands_update import _report, _show_refused, _sink
    from stackwright.cli.render import plan_lines, violation_lines
    from stackwright.workflow.gateway import ChangeRequest, change

    verb = "Pausing" if edit.action == "pause" else "Resuming"
    click.echo(f"{verb} stack {edit.stack} (environment {edit.environment.name}): {edit.shown}")
    echo_lines([change_line(c) for c in edit.changes])

    def confirm(prompt: Any) -> bool:
        echo_lines(plan_lines(prompt.plan, show_diff=show_diff))
        if prompt.violations:
            echo_lines(violation_lines(prompt.violations))
        return confirm_or_fail(f"Do you want to {edit.action} {edit.stack}?", yes)

    request = ChangeRequest(edit.action, edit=edit, emergency=emergency)
    sink = _sink()
    try:
        outcome: Any = change(None, request, confirm=confirm, sink=sink, refused=_show_refused(show_diff)).outcome
    except BaseException:
        if edit.file.path.read_text(encoding="utf-8") != edit.file.text:  # the apply had started
            for line in failure_lines(edit):
                click.echo(click.style(line, fg="yellow"), err=True)
        raise
    if outcome.cancelled:
        click.echo(f"{edit.shown} is unchanged.")
    try:
        _report(outcome, edit.action.capitalize(), sink.shown)  # exits 1 after a failed apply or a declined prompt
    finally:
        if not outcome.ok:
            for line in failure_lines(edit):
                click.echo(click.style(line, fg="yellow"), err=True)
    if not outcome.cancelled:
        click.echo(done_line(edit))


def change_line(change: Any) -> str:
    """``  platform.node_groups[name=general].desired_size: 2 -> 0``."""
    before = "(absent)" if change.created else _value(change.before)
    after = "(removed)" if change.removed else _value(change.after)
    return f"  {change.path}: {before} -> {after}"


def _value(value: Any) -> str:
    import json

    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def failure_lines(edit: Any) -> list[str]:
    """What to do next: the config edit stays, so say how to finish it and how to undo it."""
    stack = edit.stack
    if edit.action == "pause":
        return [f"The paused values stay in {edit.shown} (the old ones are saved under `paused:`).",
                f"Fix the cause and finish with `stackwright up --stack {stack}`, "
                f"or restore the saved values with `stackwright env resume {stack}`."]
    return [f"The saved values are back in {edit.shown} and the `paused:` section is gone.",
            f"Fix the cause and finish resuming with `stackwright up --stack {stack}`."]


def done_line(edit: Any) -> str:
    if edit.action == "pause":
        return (f"Paused {edit.stack}; `stackwright env resume {edit.stack}` restores the saved values "
                f"(kept in {edit.shown} under `paused:`).")
    return f"Resumed {edit.stack}."


@click.group()
def ci() -> None:
    """Continuous integration: workflows that preview, plan, approve and apply."""


@ci.command("github")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the workflows (default: .github/workflows of the repository).")
@click.option("--branch", default="main", show_default=True, help="The branch whose pushes are planned.")
@click.option("--source", default=None, metavar="git+URL@COMMIT",
              help="The Stackwright CI installs, pinned to a commit; written to "
              "stackwright-requirements.txt next to the workflows (default: the file already there, "
              "a requirements.txt beside the workspace file that pins stackwright, or the commit "
              "this Stackwright was installed from).")
@click.option("--install", default=None, metavar="CMD",
              help="Install Stackwright with this shell command instead of a pinned requirement.")
@click.option("--python", "python_version", default="3.11", show_default=True, help="Python version in CI.")
@click.option("--approver", "approvers", multiple=True, metavar="LOGIN",
              help="GitHub login allowed to /approve (repeatable; default: owners, members, collaborators).")
@click.option("--shards", type=int, default=0, metavar="K",
              help="Also write stackwright-up.yml: `run up --all` split across a matrix of K jobs.")
@click.option("--mutation", is_flag=True,
              help="Write only mutation.yml: `make mutation` every Monday and by hand, for a repository "
              "whose Makefile (at its root) has a `mutation` target, such as Stackwright's own; "
              "needs no workspace.")
@click.option("--force", is_flag=True, help="Overwrite workflow files Stackwright did not write.")
def ci_github(directory: Path | None, branch: str, source: str | None, install: str | None,
              python_version: str, approvers: tuple[str, ...], shards: int, mutation: bool,
              force: bool) -> None:
    """Write GitHub Actions workflows for the workspace: read-only preview on pull
    requests, plans and a review issue on pushes, approve and apply on `/approve`; with
    --shards K, a hand-started `run up --all` over K parallel jobs. With --mutation, only
    the scheduled `make mutation` workflow of the repository."""
    if mutation:
        _refuse_change_flow_options()
        _write_mutation_workflow(directory, python_version, force)
        return
    from stackwright.program.workspace import require_workspace
    from stackwright.workflow.ci_github import (
        PLAN_LABEL, default_directory, settings_for, workflows, write_workflows,
    )

    workspace = require_workspace()
    folder = directory or default_directory(workspace)
    settings = settings_for(workspace, folder, branch=branch, install=install, source=source,
                            python=python_version, approvers=approvers, shards=shards)
    for path in write_workflows(folder, workflows(settings), force=force):
        click.echo(f"Wrote {path}")
    click.echo("Next: set the repository variables STACKWRIGHT_STATE_URL (s3://bucket/prefix), "
               "STACKWRIGHT_AWS_ROLE, STACKWRIGHT_AWS_READ_ONLY_ROLE and AWS_REGION and the secret "
               f"STACKWRIGHT_PASSPHRASE (docs/ci.md), then commit the files. Plans wait for approval "
               f"in issues labelled {PLAN_LABEL}.")


def _refuse_change_flow_options() -> None:
    """--mutation writes no change-flow workflow: an option for those would be ignored."""
    from click.core import ParameterSource

    context = click.get_current_context()
    flow = ("branch", "source", "install", "approvers", "shards")
    given = [param.opts[0] for param in context.command.params
             if param.name in flow and context.get_parameter_source(param.name) is not ParameterSource.DEFAULT]
    if given:
        raise click.UsageError(f"{', '.join(given)}: not with --mutation, which writes only mutation.yml")


def _write_mutation_workflow(directory: Path | None, python_version: str, force: bool) -> None:
    """mutation.yml for the repository around the working directory: no workspace needed."""
    from stackwright.workflow.ci_github import mutation_workflow, repository_root, write_workflows

    root = repository_root(Path.cwd()) or Path.cwd()
    folder = directory or root / ".github" / "workflows"
    for path in write_workflows(folder, mutation_workflow(root, python_version), force=force):
        click.echo(f"Wrote {path}")


@ci.command("plan-files")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def ci_plan_files(folder: Path) -> None:
    """List the plans `run plan --out-dir FOLDER` saved, dependencies first: one line per
    plan, its project's folder and the plan file (absolute, tab-separated)."""
    from stackwright.program.workspace import require_workspace
    from stackwright.workflow.ci_github import ordered_plan_files

    if not folder.is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint="FOLDER")
    for project, plan in ordered_plan_files(require_workspace(), folder):
        click.echo(f"{project}\t{plan}")
