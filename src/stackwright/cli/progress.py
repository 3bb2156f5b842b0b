"""Progress listeners: plain lines for logs and CI, a live table on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from stackwright.engine.events import EventSink
from stackwright.model.resource import urn_name, urn_parts

STATUS_COLOURS = {"ok": "green", "failed": "red", "skipped": "yellow", "not started": "yellow"}


def _label(urn: str) -> str:
    return f"{urn_parts(urn)[2]} {urn_name(urn)}"


class Notices(EventSink):
    """What a command says while it runs besides step progress: a stale lock taken over
    (on stderr). The quiet commands (``refresh``, ``import``, ``state rm``) use it alone."""

    def lock_taken_over(self, stack: str, holder: str) -> None:
        click.echo(click.style(f"Took over the lock of stack {stack!r} left by {holder}: that process is "
                               "gone from this host; what it left unfinished is resolved first.",
                               fg="yellow"), err=True)


class PlainProgress(Notices):
    """One line per finished step; safe for logs (no cursor movement). With ``err`` on
    stderr, leaving stdout to a JSON document."""

    def __init__(self, verbose: bool = False, err: bool = False) -> None:
        self.verbose = verbose
        self.err = err
        self.shown: set[tuple[str, str]] = set()
        """The failed steps (urn, action) whose error a line printed: the summary after
        the apply names them without repeating the error."""

    def step_started(self, urn: str, action: str) -> None:
        if self.verbose:
            click.echo(f"  {action:<16} {_label(urn)} ...", err=self.err)

    def step_finished(self, urn: str, action: str, status: str, elapsed: float,
                      error: str | None = None) -> None:
        detail = self._detail(urn, action, status, error)
        line = f"  {action:<16} {_label(urn)}  {status} ({elapsed:.1f}s){detail}"
        click.echo(click.style(line, fg=STATUS_COLOURS.get(status)), err=self.err)

    def _detail(self, urn: str, action: str, status: str, error: str | None) -> str:
        if not error:
            return ""
        if status == "failed":
            self.shown.add((urn, action))
        return f": {error}"

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        click.echo(f"  {action:<16} {_label(urn)}  retry {attempt} in {delay:.1f}s: {error}", err=self.err)

    def stopping(self) -> None:
        click.echo(click.style("Interrupted: no new steps start; waiting for the steps in flight...",
                               fg="yellow"), err=True)


class LiveProgress(PlainProgress):
    """A live table of steps in flight (resource, action, status, elapsed) above
    finished lines. A step is "queued" while prepared and waiting for a free call slot
    (see ``--parallel``), then "running"."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.live import Live

        from stackwright.cli.terminal import console as terminal_console

        self.console = console or terminal_console()
        self.running: dict[str, tuple[str, float]] = {}
        self.calling: set[str] = set()
        self.said: dict[str, str] = {}
        """The last progress message of each running step (what it waits for)."""
        self.lock = threading.Lock()
        self.live = Live(console=self.console, refresh_per_second=8,
                         transient=True, get_renderable=self._table)
        self.started = False

    def _start(self) -> None:
        """Begin drawing at the first step, after any confirmation prompt."""
        if not self.started:
            self.started = True
            self.live.start()

    def apply_finished(self) -> None:
        if self.started:
            self.started = False
            self.live.stop()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("resource")
        table.add_column("action")
        table.add_column("status")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        with self.lock:
            rows = sorted(((urn in self.calling, urn, action, start, self.said.get(urn, "running"))
                           for urn, (action, start) in self.running.items()),
                          key=lambda row: (not row[0], row[3]))[:20]
        for calling, urn, action, start, said in rows:
            table.add_row(_label(urn), action, said if calling else "queued", f"{now - start:.1f}s")
        return table

    def step_started(self, urn: str, action: str) -> None:
        self._start()
        with self.lock:
            self.running[urn] = (action, time.monotonic())

    def call_started(self, urn: str) -> None:
        with self.lock:
            self.calling.add(urn)

    def step_log(self, urn: str, message: str) -> None:
        with self.lock:
            if urn in self.running:
                self.said[urn] = message

    def step_finished(self, urn: str, action: str, status: str, elapsed: float,
                      error: str | None = None) -> None:
        with self.lock:
            self.running.pop(urn, None)
            self.calling.discard(urn)
            self.said.pop(urn, None)
        colour = STATUS_COLOURS.get(status, "white")
        from rich.markup import escape

        detail = escape(self._detail(urn, action, status, error))
        self.console.print(f"  {action:<16} {escape(_label(urn))}  [{colour}]{status}[/] ({elapsed:.1f}s){detail}",
                           markup=True, highlight=False)

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.console.print(f"  {action:<16} {_label(urn)}  retry {attempt} in {delay:.1f}s: {error}",
                           markup=False)


def progress_for_terminal(err: bool = False) -> PlainProgress:
    """A live table on a terminal, plain lines otherwise (logs, CI, ``--color never``,
    whose terminal gets no escape codes); with ``err``, plain lines on stderr."""
    from stackwright.cli.terminal import colour

    if err:
        return PlainProgress(err=True)
    if sys.stdout.isatty() and colour() is not False:
        return LiveProgress()
    return PlainProgress()
