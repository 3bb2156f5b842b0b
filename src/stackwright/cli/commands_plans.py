"""Commands for plans (issue 5). Filled in by the workflow work."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
