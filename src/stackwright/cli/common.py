"""Helpers shared by the CLI commands: opening the project and stack, confirming."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from stackwright.errors import StackwrightError


def open_stack(stack_name: str | None, who: str | None = None, open_secrets: bool = True,
               may_be_new: bool = False, change: Any = None) -> Any:
    """The stack's session. With ``change`` (a ``ChangeRequest``), a failure to open the
    stack once it is known which one (its stack file, a secret in it, the project's
    environments) is that change's failed attempt, recorded in the audit log as the
    change gateway records one; a project that cannot be loaded, or a stack not named
    nor selected, leaves no state to record in."""
    from stackwright.operations.session import open_session
    from stackwright.program.project import find_project, selected_stack
    from stackwright.workflow.environments import check_environments

    project = find_project()
    # The program and the local provider resolve relative paths against the working
    # directory: make it the project's root even when started from a subfolder.
    os.chdir(project.root)
    try:
        stack = selected_stack(project, stack_name)
    except StackwrightError:
        check_environments(project)  # that error first, as without a stack
        raise

    def opened() -> Any:
        check_environments(project)
        return open_session(project, stack, who, open_secrets=open_secrets, may_be_new=may_be_new)

    if change is None:
        return opened()
    from stackwright.workflow.gateway import Where, open_for

    return open_for(change, Where(project, stack, who), opened)


def confirm_or_fail(question: str, yes: bool, err: bool = False) -> bool:
    """``--yes`` answers; otherwise ask on a terminal (on stderr with ``err``, when
    stdout carries a JSON document); refuse when nobody can answer."""
    if yes:
        return True
    refuse_without_terminal()
    return click.confirm(question, default=False, err=err)


def refuse_without_terminal() -> None:
    """Nobody can answer a prompt when stdin is not a terminal: say so, since
    ``echo y | stackwright up`` would otherwise look like a command that did nothing."""
    if not sys.stdin.isatty():
        raise StackwrightError("refusing to change anything without confirmation: standard input is not a "
                               "terminal, so there is nobody to ask (piped input is not taken as an answer)",
                               hint="pass --yes to go ahead without asking")


def echo_lines(lines: list[str], err: bool = False) -> None:
    click.echo("\n".join(lines), err=err)


def echo_json(document: object) -> None:
    """One JSON document on stdout (docs/json-output.md), nothing else there."""
    import json

    click.echo(json.dumps(document, indent=2, sort_keys=True))
