"""new, stack init|ls|select|rm, unlock, local-cloud."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from stackwright.cli.options import emergency_option, stack_option, who_option, yes_option
from stackwright.errors import ProjectError, StackwrightError


def register(cli: click.Group) -> None:
    for command in (new, stack, unlock, local_cloud):
        cli.add_command(command)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name).")
@click.option("--stack", "stack_name", default="dev", show_default=True, help="First stack to create.")
def new(directory: Path, name: str | None, stack_name: str) -> None:
    """Scaffold a runnable project in DIRECTORY, with a first stack selected."""
    from stackwright.operations.scaffold import scaffold

    project = scaffold(directory, name or directory.resolve().name, stack_name)
    click.echo(f"Created project {project.name!r} in {directory} with stack {stack_name!r}.")
    click.echo(f"Next: cd {directory} && stackwright preview && stackwright up")


@click.group()
def stack() -> None:
    """Create, list, select and remove stacks."""


def _project() -> object:
    from stackwright.program.project import find_project

    return find_project()


@stack.command("init")
@click.argument("name")
def stack_init(name: str) -> None:
    """Create stack NAME (e.g. dev, staging, production, dev-alex) and select it."""
    from stackwright.operations.scaffold import init_stack
    from stackwright.program.project import find_project

    project = find_project()
    init_stack(project, name)
    click.echo(f"Created stack {name!r} (config in stacks/{name}.yaml) and selected it.")


@stack.command("ls")
def stack_ls() -> None:
    """List the project's stacks."""
    from stackwright.cli.render import when
    from stackwright.cli.terminal import Cell, print_table
    from stackwright.operations.session import open_store
    from stackwright.program.project import current_stack_file, find_project

    project = find_project()
    marker = current_stack_file(project)
    current = marker.read_text().strip() if marker.exists() else None
    store = open_store(project)
    try:
        stacks = store.list_stacks()
    finally:
        store.close()
    rows: list[list[Cell]] = [[(info.name + "*", "bold") if info.name == current else info.name,
                               str(info.resource_count),
                               when(info.last_update) if info.last_update else "never"] for info in stacks]
    print_table(["NAME", "RESOURCES", "LAST UPDATE"], rows, right=("RESOURCES",))


@stack.command("select")
@click.argument("name")
def stack_select(name: str) -> None:
    """Make NAME the stack commands act on by default."""
    from stackwright.operations.session import open_store
    from stackwright.program.project import check_stack_name, find_project, select_stack

    project = find_project()
    store = open_store(project)
    try:
        if not store.stack_exists(check_stack_name(name)):
            raise ProjectError(f"no stack named {name!r}", hint=f"create it with `stackwright stack init {name}`")
    finally:
        store.close()
    select_stack(project, name)
    click.echo(f"Selected stack {name!r}.")


@stack.command("rm")
@click.argument("name")
@yes_option("Remove without asking.")
@click.option("--force", is_flag=True, help="Remove even if it still records resources (they are NOT deleted).")
@emergency_option
@who_option
def stack_rm(name: str, yes: bool, force: bool, emergency: str | None, who: str | None) -> None:
    """Remove stack NAME's state and history (run `destroy` first to delete its resources).

    Asks first (``--yes`` does not); refused in a protected environment (an emergency
    only where it is allowed); the audit log, which stays, records the removal."""
    from stackwright.cli.common import confirm_or_fail, open_stack
    from stackwright.program.project import current_stack_file
    from stackwright.workflow.gateway import ChangeRequest, change

    request = ChangeRequest("stack-rm", force=force, emergency=emergency)
    session = open_stack(name, who, open_secrets=False, change=request)
    try:
        question = _removal_question(session)
        result = change(session, request, confirm=lambda prompt: confirm_or_fail(question, yes))
    finally:
        session.close()
    if result.cancelled:
        click.echo("Cancelled; nothing was changed.", err=True)
        raise SystemExit(1)
    marker = current_stack_file(session.project)
    if marker.exists() and marker.read_text().strip() == name:
        marker.unlink()
    click.echo(f"Removed stack {name!r}.")


def _removal_question(session: Any) -> str:
    """The prompt names what is lost: the history, and the resources it still records
    (which stay in the cloud, no longer managed)."""
    info = next((i for i in session.store.list_stacks() if i.name == session.stack), None)
    count = info.resource_count if info else 0
    kept = f" It still records {count} resource(s); they are NOT deleted." if count else ""
    return f"Remove stack {session.stack!r} with its state and history?{kept}"


@click.command()
@stack_option
@click.option("--force", is_flag=True, help="Clear it even if the holder may still run.")
def unlock(stack_name: str | None, who: str | None, force: bool) -> None:
    """Clear a stale lock after confirming its holder is gone."""
    from stackwright.cli.common import open_stack
    from stackwright.operations.session import lock_is_stale

    session = open_stack(stack_name, who)
    try:
        info = session.store.read_lock(session.stack)
        if info is None:
            click.echo(f"Stack {session.stack!r} is not locked.")
            return
        holder = f"{info.owner} (pid {info.pid} on {info.host}, {info.operation}, {time.time() - info.acquired_at:.0f}s ago)"
        if not force and not lock_is_stale(info):
            raise StackwrightError(
                f"the lock is held by {holder}, which may still be running",
                hint="if you are sure it is gone (e.g. another machine), run `stackwright unlock --force`")
        session.store.break_lock(session.stack)
    finally:
        session.close()
    click.echo(f"Cleared the lock held by {holder}.")


@click.group("local-cloud")
def local_cloud() -> None:
    """Run the local AWS emulator (moto's server) on 127.0.0.1."""


@local_cloud.command("start")
@click.option("--port", type=int, help="Port on 127.0.0.1 (default 4599 or $STACKWRIGHT_LOCAL_CLOUD_PORT).")
def local_cloud_start(port: int | None) -> None:
    """Start this user's emulator (or show the one running); any project or folder."""
    from stackwright.providers.registry import local_emulator

    cloud = local_emulator().start(port=port)
    click.echo(f"Local cloud running at {cloud.url} (pid {cloud.pid}, log {cloud.log}).")


@local_cloud.command("stop")
def local_cloud_stop() -> None:
    from stackwright.providers.registry import local_emulator

    stopped = local_emulator().stop()
    click.echo("Local cloud stopped." if stopped else "The local cloud was not running.")


@local_cloud.command("status")
def local_cloud_status() -> None:
    from stackwright.providers.registry import local_emulator

    cloud = local_emulator().status()
    if cloud is None:
        click.echo("The local cloud is not running.")
        raise SystemExit(3)
    click.echo(f"Local cloud running at {cloud.url} (pid {cloud.pid}, log {cloud.log}).")
