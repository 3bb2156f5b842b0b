"""Options several commands share. Command modules import them from here, never from
``cli.main``, which imports every command module when it loads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def stack_option(fn: F) -> F:
    fn = click.option("-s", "--stack", "stack_name", metavar="STACK",
                      help="The stack to act on (default: the selected one).")(fn)
    return who_option(fn)


def who_option(fn: F) -> F:
    return click.option("--as", "who", metavar="NAME",
                        help="Who is acting (default: $STACKWRIGHT_USER, git user.email, login).")(fn)


def diff_option(fn: F) -> F:
    return click.option("--diff", "show_diff", is_flag=True, help="Show property-level diffs.")(fn)


def yes_option(help: str = "Apply without asking.") -> Callable[[F], F]:
    return click.option("-y", "--yes", is_flag=True, help=help)


def parallel_option(fn: F) -> F:
    return click.option("-p", "--parallel", default=16, show_default=True, metavar="N",
                        help="At most N provider calls at once.")(fn)


def emergency_option(fn: F) -> F:
    return click.option("--emergency", metavar="REASON", default=None,
                        help="Change a protected environment without an approved plan, where it sets "
                        "`allow_emergency: true`; the audit log records who, the reason and the plan.")(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout (docs/json-output.md); "
                        "progress and prompts go to stderr.")(fn)


def exit_code_option(what: str) -> Callable[[F], F]:
    """``--exit-code``: 0 for nothing found, 2 when ``what``, 1 for an error."""
    return click.option("--exit-code", "exit_code", is_flag=True,
                        help=f"Exit 2 when {what}, 0 when not; 1 is an error.")
