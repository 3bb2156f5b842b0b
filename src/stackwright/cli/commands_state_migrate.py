"""state migrate: move stacks to another state backend."""

from __future__ import annotations

import click

from stackwright.cli.options import stack_option


def register(cli: click.Group) -> None:
    state = cli.commands.get("state")
    if not isinstance(state, click.Group):
        raise RuntimeError("`state migrate` needs the `state` group registered first")
    state.add_command(migrate)


@click.command("migrate")
@stack_option
@click.option("--to", "url", required=True, metavar="URL",
              help="The new store: postgresql://..., s3://bucket/prefix or sqlite:///path.")
@click.option("--all", "every", is_flag=True, help="Move every stack of the project.")
def migrate(stack_name: str | None, who: str | None, url: str, every: bool) -> None:
    """Copy the stack (or --all) to another state store with its history, audit log,
    approvals and plans; every record is read back and compared."""
    from stackwright.operations.session import identity, open_store
    from stackwright.operations.state_migrate import migrate as copy
    from stackwright.operations.state_migrate import open_target
    from stackwright.program.project import find_project, selected_stack
    from stackwright.state.backends import STATE_URL_ENV

    project = find_project()
    source = open_store(project)
    try:
        stacks = [s.name for s in source.list_stacks()] if every else [selected_stack(project, stack_name)]
        target = open_target(project, url)
        try:
            moved = copy(source, target, stacks, identity(who))
        finally:
            target.close()
    finally:
        source.close()
    for m in moved:
        click.echo(f"Copied stack {m.stack!r}: {m.resources} resources, {m.checkpoints} checkpoints, "
                   f"{m.events} audit events; every record read back and compared.")
    click.echo(f"Point `state: url:` in stackwright.yaml (or {STATE_URL_ENV}) at the new store; "
               "the old copy was left in place.")
