"""outputs, history, state ls|show|rm."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from stackwright.cli.common import confirm_or_fail, echo_json, echo_lines, open_stack
from stackwright.cli.options import emergency_option, json_option, stack_option, yes_option

if TYPE_CHECKING:
    from stackwright.operations.session import StackSession
    from stackwright.state.records import Event


def register(cli: click.Group) -> None:
    for command in (outputs, history, state):
        cli.add_command(command)


@click.command()
@stack_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--show-secrets", is_flag=True, help="Print secret outputs in plain text.")
def outputs(stack_name: str | None, who: str | None, as_json: bool, show_secrets: bool) -> None:
    """Print the stack's outputs."""
    from stackwright.cli.render import recorded_output_lines
    from stackwright.model.values import masked, reveal, to_json

    session = open_stack(stack_name, who)
    try:
        values = session.store.snapshot(session.stack).outputs
    finally:
        session.close()
    shown = reveal(values) if show_secrets else masked(values)
    if as_json:
        click.echo(json.dumps(to_json(shown), indent=2, sort_keys=True))
        return
    echo_lines(recorded_output_lines(shown))


@click.group(invoke_without_command=True)
@stack_option
@json_option
@click.pass_context
def history(ctx: click.Context, stack_name: str | None, who: str | None, as_json: bool) -> None:
    """List checkpoints: who, when, what changed, how long, result."""
    ctx.obj = {"stack": stack_name, "who": who, "json": as_json}
    if ctx.invoked_subcommand is not None:
        return
    from stackwright.cli.render import print_history

    session = open_stack(stack_name, who)
    try:
        checkpoints = session.store.history(session.stack)
        attempts = [] if as_json else _failed_attempts(session)
    finally:
        session.close()
    if as_json:
        from stackwright.workflow.json_views import history_view

        echo_json(history_view(session.stack, checkpoints))
        return
    if not checkpoints:
        click.echo("No checkpoints yet.")
    else:
        print_history(checkpoints)
    if attempts:  # on stderr: stdout stays the table, whose last line is the last checkpoint
        click.echo(_attempts_line(session.stack, attempts), err=True)


def _failed_attempts(session: StackSession) -> list[Event]:
    """Changes that stopped before applying: they made no checkpoint, and history
    points to the audit log, which records them."""
    from stackwright.workflow.approvals import ATTEMPT

    return session.store.events(session.stack, kinds=(ATTEMPT,))


def _attempts_line(stack: str, attempts: list[Event]) -> str:
    from stackwright.cli.render import when

    last = attempts[-1]
    return click.style(
        f"{len(attempts)} attempt(s) to change stack {stack} failed before applying anything and made no "
        f"checkpoint (the last: `{last.data.get('command')}` stopped at {last.data.get('stage')} on "
        f"{when(last.at)} by {last.who}); `stackwright audit` lists them.", fg="yellow")


@history.command("show")
@click.argument("number", type=int)
@json_option
@click.pass_context
def history_show(ctx: click.Context, number: int, as_json: bool) -> None:
    """Show what changed in checkpoint NUMBER."""
    from stackwright.cli.diff_view import change_lines
    from stackwright.cli.render import checkpoint_line, recorded_output_lines

    session = open_stack(ctx.obj["stack"], ctx.obj["who"])
    try:
        detail = session.store.checkpoint(session.stack, number)
    finally:
        session.close()
    if as_json or ctx.obj["json"]:
        from stackwright.workflow.json_views import checkpoint_detail_view

        echo_json(checkpoint_detail_view(session.stack, detail))
        return
    click.echo(checkpoint_line(detail.checkpoint))
    if detail.checkpoint.message:
        click.echo(f"  {detail.checkpoint.message}")
    for change in detail.changes:
        error = click.style(f"  FAILED: {change.error}", fg="red") if change.error else ""
        click.echo(f"  {change.op:<16} {change.urn}{error}")
        for diff in change.diffs:
            for line in change_lines(str(diff.get("path")), str(diff.get("kind")), diff.get("old"), diff.get("new")):
                click.echo(f"      {line}")
    if detail.outputs:
        echo_lines(["  outputs:", *recorded_output_lines(detail.outputs, "    ")])


@click.group()
def state() -> None:
    """Inspect or edit the recorded state directly."""


@state.command("ls")
@stack_option
def state_ls(stack_name: str | None, who: str | None) -> None:
    """List recorded resources: URN, type and id."""
    session = open_stack(stack_name, who)
    try:
        snapshot = session.store.snapshot(session.stack)
    finally:
        session.close()
    for record in snapshot.resources.values():
        click.echo(f"{record.urn}  {record.id}")
    click.echo(f"{len(snapshot.resources)} resources, serial {snapshot.serial}")


@state.command("show")
@stack_option
@click.argument("urn", metavar="URN|NAME")
def state_show(stack_name: str | None, who: str | None, urn: str) -> None:
    """Show one resource's recorded inputs and outputs (secrets masked): its URN, or
    a name that names one resource as --target does (NAME, type::NAME, parent$NAME)."""
    from stackwright.cli.render import mapping_lines
    from stackwright.errors import StateError
    from stackwright.plan.planner import named_by

    session = open_stack(stack_name, who)
    try:
        resources = session.store.snapshot(session.stack).resources
    finally:
        session.close()
    matches = named_by(urn, list(resources), option="")  # more than one: an error listing them
    if not matches:
        raise StateError(f"no recorded resource {urn}", hint="`stackwright state ls` lists them")
    record = resources[matches[0]]
    click.echo(f"{record.urn}\n  type: {record.type}\n  id: {record.id}")
    if record.parent:
        click.echo(f"  parent: {record.parent}")
    if record.deps:
        click.echo(f"  depends on: {', '.join(record.deps)}")
    # Every recorded option: the boolean ones as flags, the others (ignore_changes,
    # aliases) by name; record.options holds only those not at their defaults.
    flags = [f for f in ("protect", "retain_on_delete", "external") if getattr(record, f)]
    flags += [name for name, value in record.options.items() if value is True]
    if flags:
        click.echo(f"  flags: {', '.join(flags)}")
    for name, value in record.options.items():
        if isinstance(value, bool) or value is None or value == [] or value == {}:
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else json.dumps(value, sort_keys=True)
        click.echo(f"  {name}: {shown}")
    echo_lines(["  inputs:", *mapping_lines(record.inputs, "    "),
                "  outputs:", *mapping_lines(record.outputs, "    ")])


@state.command("rm")
@stack_option
@click.argument("urn")
@yes_option("Forget without asking.")
@click.option("--force", is_flag=True, help="Remove even if it is protected or other resources depend on it.")
@emergency_option
def state_rm(stack_name: str | None, who: str | None, urn: str, yes: bool, force: bool,
             emergency: str | None) -> None:
    """Forget a resource without deleting it (it stays in the cloud)."""
    from stackwright.cli.commands_update import run_state_edit
    from stackwright.workflow.gateway import ChangeRequest

    request = ChangeRequest("state-rm", urn=urn, force=force, emergency=emergency)
    question = f"Forget {urn}? The object itself is not deleted."
    number = run_state_edit(stack_name, who, request, lambda prompt: confirm_or_fail(question, yes)).checkpoint
    click.echo(f"Forgot {urn} (checkpoint {number}).")


