"""config set|get|rm and secrets rotate: a stack's config values, secrets encrypted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from stackwright.cli.options import stack_option

if TYPE_CHECKING:
    from stackwright.program.project import Project


def register(cli: click.Group) -> None:
    for command in (config, secrets):
        cli.add_command(command)


def _project_and_stack(stack_name: str | None) -> tuple[Project, str]:
    import os

    from stackwright.program.project import find_project, selected_stack

    project = find_project()
    os.chdir(project.root)
    return project, selected_stack(project, stack_name)


@click.group()
def config() -> None:
    """Read and edit the stack's config in stacks/<stack>.yaml (comments are kept)."""


@config.command("set")
@stack_option
@click.argument("key")
@click.argument("value")
@click.option("--secret", is_flag=True, help="Store VALUE encrypted with the stack's key.")
@click.option("--string", "as_text", is_flag=True, help="Store VALUE as text even when it is a number or boolean.")
def config_set(stack_name: str | None, who: str | None, key: str, value: str, secret: bool, as_text: bool) -> None:
    """Set KEY (dotted for nested: db.port) to VALUE, stored as typed. VALUE is a number
    or boolean when written as `config get` prints one (3, -2, 2.5, true, false), else
    text (1.10, 0777, no, several lines...)."""
    from stackwright.workflow.config_values import set_value

    project, stack = _project_and_stack(stack_name)
    set_value(project, stack, key, value, secret=secret, as_text=as_text)
    click.echo(f"Set {key}{' (secret)' if secret else ''} in stacks/{stack}.yaml.")


@config.command("get")
@stack_option
@click.argument("key")
@click.option("--show-secrets", is_flag=True, help="Print a secret value in plain text.")
def config_get(stack_name: str | None, who: str | None, key: str, show_secrets: bool) -> None:
    """Print KEY's value (a secret masked unless --show-secrets)."""
    from stackwright.workflow.config_values import get_value

    project, stack = _project_and_stack(stack_name)
    value = get_value(project, stack, key, show_secrets=show_secrets)
    click.echo(value if isinstance(value, str) else json.dumps(value))


@config.command("rm")
@stack_option
@click.argument("key")
def config_rm(stack_name: str | None, who: str | None, key: str) -> None:
    """Remove KEY."""
    from stackwright.workflow.config_values import remove_value

    project, stack = _project_and_stack(stack_name)
    remove_value(project, stack, key)
    click.echo(f"Removed {key} from stacks/{stack}.yaml.")


@click.group()
def secrets() -> None:
    """The keys that encrypt the stack's secrets."""


@secrets.command("rotate")
@stack_option
@click.option("--to", "to", metavar="KEY", help="Move to another key: local, passphrase, awskms://alias/NAME, "
              "age:age1...,age1... (default: a new key of the same kind).")
def secrets_rotate(stack_name: str | None, who: str | None, to: str | None) -> None:
    """Re-encrypt the stack's secret config values and state under a new key. A new
    local key or passphrase is the whole project's: every stack that uses it is
    re-encrypted too."""
    from stackwright.cli.common import open_stack
    from stackwright.workflow.gateway import ChangeRequest, change

    session = open_stack(stack_name, who, open_secrets=False)
    try:
        result = change(session, ChangeRequest("rotate", key=to), confirm=lambda prompt: True)
    finally:
        session.close()
    done = result.rotated
    assert done is not None
    click.echo(f"Re-encrypted stack {done.stack}'s state and {done.config_values} secret config value(s) "
               f"with {done.key}.")
    if done.stacks[1:]:
        click.echo(f"Re-encrypted with it, as they used the same key: {', '.join(done.stacks[1:])}.")
