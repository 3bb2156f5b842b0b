"""Saved plans and their review: plan, apply, approve, reject, audit (issue 5).

The file argument is resolved before the project is opened, because opening it makes
the project's root the working directory.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import click

from stackwright.cli.common import confirm_or_fail, echo_lines, open_stack
from stackwright.cli.options import diff_option, parallel_option, stack_option, yes_option


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    for command in (plan, apply, approve, reject, audit):
        cli.add_command(command)


PLAN_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command()
@stack_option
@click.option("-o", "--out", "out", type=PLAN_FILE, required=True, help="Write the plan to this file.")
@click.option("--allow-destroy", is_flag=True, help="Let the plan delete stateful resources (policy).")
@click.option("--key", metavar="PATH", help="Sign the plan with this SSH key (default: $STACKWRIGHT_SIGNING_KEY); "
              "that key then cannot approve it where self-approval is off.")
@click.option("--refresh", is_flag=True, help="Read the live objects first and plan against them "
              "(`apply` reads them again and records them).")
@diff_option
def plan(stack_name: str | None, who: str | None, out: Path, allow_destroy: bool, key: str | None,
         refresh: bool, show_diff: bool) -> None:
    """Make a plan, check policies, and save it for review and `apply` (the plan `preview` shows)."""
    from stackwright.cli.render import plan_lines
    from stackwright.workflow.plan_file import PolicyBlocked, save_plan

    path = out.resolve()
    key_path = str(Path(key).expanduser().resolve()) if key else None
    session = open_stack(stack_name, who)
    try:
        written = save_plan(session, path, allow_destroy=allow_destroy, key=key_path, refresh=refresh)
    except PolicyBlocked as exc:
        click.echo("\n".join(_violation_lines(exc.violations)), err=True)
        raise
    finally:
        session.close()
    echo_lines(plan_lines(written.plan, show_diff=show_diff))
    if written.violations:
        echo_lines(_violation_lines(written.violations))
    click.echo(f"Plan saved to {out} (made by {session.who})")
    click.echo(click.style(f"Plan hash: {written.saved.hash}", bold=True))


def _violation_lines(violations: list[Any]) -> list[str]:
    lines = []
    for v in violations:
        label = "mandatory" if v.mandatory else "advisory"
        where = f" [{v.urn}]" if v.urn else ""
        colour = "red" if v.mandatory else "yellow"
        lines.append(click.style(f"  policy {v.policy} ({label}): {v.message}{where}", fg=colour))
    return lines


def _read(path: Path) -> Any:
    from stackwright.workflow.plan_file import read_plan_file

    return read_plan_file(path.resolve())


def _open_for(saved: Any, stack_name: str | None, who: str | None, open_secrets: bool = True,
              change: Any = None) -> Any:
    """The stack the plan names; ``--stack``, if given, must agree with it. ``change``:
    as for ``open_stack``."""
    from stackwright.workflow.plan_file import WrongTarget

    if stack_name is not None and stack_name != saved.stack:
        raise WrongTarget(f"plan {saved.short} is for stack {saved.stack!r}, not {stack_name!r}",
                          hint=f"apply it with --stack {saved.stack}, or make a plan for {stack_name}")
    return open_stack(saved.stack, who, open_secrets=open_secrets, may_be_new=saved.new_stack, change=change)


@click.command()
@stack_option
@click.argument("file", type=PLAN_FILE)
@yes_option()
@parallel_option
def apply(stack_name: str | None, who: str | None, file: Path, yes: bool, parallel: int) -> None:
    """Apply exactly the saved plan FILE, if it is still current and approved."""
    from stackwright.cli.commands_update import _parallel, _sink
    from stackwright.workflow.gateway import ChangeRequest, change

    saved = _read(file)
    request = ChangeRequest("apply", parallel=_parallel(parallel), saved=saved)
    session = _open_for(saved, stack_name, who, change=request)
    sink = _sink()
    try:
        result = change(session, request, confirm=_confirmer(saved, yes), sink=sink)
    finally:
        session.close()
    _report(result.outcome, saved, sink.shown)


def _confirmer(saved: Any, yes: bool) -> Any:
    from stackwright.cli.render import plan_lines

    def confirm(prompt: Any) -> bool:
        echo_lines(plan_lines(prompt.plan))
        return confirm_or_fail(f"Apply plan {saved.short}?", yes)

    return confirm


def _report(outcome: Any, saved: Any, shown: Collection[tuple[str, str]] = ()) -> None:
    """Success in one line; a failure lists each failed step with its hint (a value
    the plan fixed that came out different says to make a new plan), naming without
    repeating it one whose error the progress printed (in ``shown``)."""
    from stackwright.cli.commands_update import failure_lines

    if outcome.cancelled:
        click.echo("Cancelled; nothing was changed.", err=True)
        raise SystemExit(1)
    if outcome.result is None:
        # Steps the plan changes but found unneeded are shown here: no prompt showed them.
        click.echo(f"Plan {saved.short} changes nothing{' now' if outcome.notes else ''}.")
        for note in outcome.notes:
            click.echo(click.style(f"  {note}", fg="cyan"))
        return
    result = outcome.result
    number = f" (checkpoint {outcome.checkpoint.number})" if outcome.checkpoint else ""
    done = ", ".join(f"{v} {k}" for k, v in sorted(result.done.items())) or "nothing"
    if result.ok:
        click.echo(click.style(f"Applied plan {saved.short} in {outcome.duration:.1f}s{number}: {done}.",
                               fg="green", bold=True))
        return
    echo_lines(failure_lines(result.failures, shown), err=True)
    state = "was interrupted" if result.interrupted else "failed"
    skipped = f"; {len(result.skipped)} skipped" if result.skipped else ""
    click.echo(click.style(f"error: apply of plan {saved.short} {state}{number}: {done} done, "
                           f"{len(result.failures)} failed{skipped}.", fg="red", bold=True), err=True)
    raise SystemExit(1)


@click.command()
@stack_option
@click.argument("file", type=PLAN_FILE)
@click.option("-m", "--comment", default="", help="Why; recorded with the approval.")
@click.option("--key", metavar="PATH", help="Sign with this SSH key (default: $STACKWRIGHT_SIGNING_KEY, "
              "git's user.signingkey in protected environments).")
@click.option("--github-event", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="In GitHub Actions: approve as the commenter this event payload names ($GITHUB_EVENT_PATH).")
def approve(stack_name: str | None, who: str | None, file: Path, comment: str, key: str | None,
            github_event: Path | None) -> None:
    """Approve the saved plan FILE: signed with your SSH key (required in protected
    environments), recorded in the stack's audit log."""
    _review(stack_name, who, file, comment, approving=True,
            key=str(Path(key).expanduser().resolve()) if key else None,
            github_event=github_event.resolve() if github_event else None)


@click.command()
@stack_option
@click.argument("file", type=PLAN_FILE)
@click.option("-m", "--comment", default="", help="Why; recorded with the rejection.")
def reject(stack_name: str | None, who: str | None, file: Path, comment: str) -> None:
    """Reject the saved plan FILE: it may not be applied unless approved again."""
    _review(stack_name, who, file, comment, approving=False)


def _review(stack_name: str | None, who: str | None, file: Path, comment: str, *, approving: bool,
            key: str | None = None, github_event: Path | None = None) -> None:
    from stackwright.cli.render import plan_lines
    from stackwright.workflow import approvals
    from stackwright.workflow.plan_file import check_target

    saved = _read(file)
    session = _open_for(saved, stack_name, who, open_secrets=False)
    try:
        check_target(session, saved)
        if approving:
            status = approvals.approve(session, saved.hash, comment, key=key, github_event=github_event)
        else:
            status = approvals.reject(session, saved.hash, comment)
        serial = next((s.serial for s in session.store.list_stacks() if s.name == session.stack), 0)
    finally:
        session.close()
    echo_lines(plan_lines(saved.plan(None)))
    if approving:
        needed = (f"{len(status.approved_by)} of {status.needed} needed" if status.needed
                  else f"environment {status.environment.name} needs none")
        shown = approvals.github_commenter(github_event)[0] if github_event else session.who
        click.echo(click.style(f"Approved plan {saved.short} as {shown} ({needed}).", fg="green"))
    else:
        click.echo(click.style(f"Rejected plan {saved.short} as {session.who}.", fg="yellow"))
    if serial != saved.pins.base_serial:
        click.echo(click.style("note: the stack changed since this plan was made; applying it "
                               "will be refused", fg="yellow"), err=True)


@click.command()
@click.option("-s", "--stack", "stack_name", metavar="STACK", help="Only this stack (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def audit(stack_name: str | None, as_json: bool) -> None:
    """Plans, approvals, rejections, applies and changes that failed before applying: when,
    who, which plan, what came of it."""
    from stackwright.cli.render import when
    from stackwright.operations.session import open_store
    from stackwright.program.project import find_project
    from stackwright.workflow.approvals import SHORT, audit as audit_rows

    store = open_store(find_project())
    try:
        rows = audit_rows(store, stack_name)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if not rows:
        click.echo("No plans, approvals, applies or failed attempts recorded yet.")
        return
    for r in rows:
        click.echo(f"{when(r.at)}  {r.stack:<12} {r.kind:<8} {r.who:<24} "
                   f"{(r.plan_hash[:SHORT] or '-'):<{SHORT}}  {r.detail}")
