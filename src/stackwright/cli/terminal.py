"""How output meets the terminal: whether it is coloured (``--color``, ``NO_COLOR``) and
how tables are drawn (rich, imported only when a table is drawn).

The mode is set once, by the ``stackwright`` group, before any command runs; click's
``echo`` reads it through the context, rich through ``console()``, and the error
printer, which runs after the context is gone, through ``colour()``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

MODES = ("auto", "always", "never")

_mode = "auto"


def set_mode(mode: str) -> None:
    global _mode
    _mode = mode


def colour() -> bool | None:
    """True or False when decided (``--color always|never``, or ``NO_COLOR`` set and not
    empty, as https://no-color.org asks); None to colour only a terminal."""
    if _mode == "always":
        return True
    if _mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return None


def _apply_mode(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        set_mode(value)
        ctx.color = colour()
    return value


COLOUR_HELP = "Colour the output; auto colours a terminal unless NO_COLOR is set."


def colour_option(fn: Any) -> Any:
    """``--color auto|always|never`` on the ``stackwright`` group."""
    return click.option("--color", "colour_mode", type=click.Choice(MODES), default="auto",
                        show_default=True, expose_value=False, is_eager=True, callback=_apply_mode,
                        help=COLOUR_HELP)(fn)


def accept_colour_option(command: click.Command) -> None:
    """``--color`` after ``command`` (and its subcommands) too: ``stackwright preview
    --color never``. Given there, it overrides the one before the command."""
    command.params.append(click.Option(["--color", "colour_mode"], type=click.Choice(MODES), default=None,
                                       expose_value=False, is_eager=True, callback=_apply_mode,
                                       help=COLOUR_HELP))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_colour_option(sub)


def is_terminal(err: bool = False) -> bool:
    return (sys.stderr if err else sys.stdout).isatty()


def console(err: bool = False, width: int | None = None) -> Any:
    """A rich console that follows the colour mode: ``never`` draws no escape codes at
    all (no bold either), ``always`` draws them into a pipe too."""
    from rich.console import Console

    decided = colour()
    terminal = is_terminal(err) if decided is None else decided
    return Console(stderr=err, highlight=False, force_terminal=terminal, no_color=decided is False,
                   width=width)


Cell = str | tuple[str, str | None]
"""A table cell: its text, or its text and a rich style (``"green"``, ``"bold red"``)."""


def print_table(columns: list[str], rows: list[list[Cell]], *, right: tuple[str, ...] = ()) -> None:
    """A table with a bold header and no borders, one line per row whatever the width
    when the output is not a terminal (logs and scripts split it into lines), without
    trailing blanks. Cell texts are shown as they are (no rich markup)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) if isinstance(cell, str) else Text(cell[0], style=cell[1] or "")
                        for cell in row))
    out = console(width=None if is_terminal() else 10_000)
    with out.capture() as captured:
        out.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()), color=out.is_terminal)
