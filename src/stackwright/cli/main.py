"""The `stackwright` command. Thin: parse, call stackwright.operations, render.

Heavy modules (the engine, providers, rich) are imported inside commands so that
`stackwright --help` starts fast.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

import click

from stackwright.cli.terminal import accept_colour_option, colour, colour_option
from stackwright.errors import ProjectError, StackwrightError


def _exit_sooner() -> None:
    """Leave what is alive at exit to the operating system. The interpreter's own
    collections at exit scan every object, which took 0.1 to 0.3 s once psycopg was
    loaded (most of a short command's exit, and the tail of every worker of a sharded
    run); freeing memory the process is about to return gains nothing. Python never
    promised to finalize what is alive at exit: stores and files are closed
    explicitly. Registered first, so it runs after every other exit handler."""
    gc.freeze()


atexit.register(_exit_sooner)

_LEFT_TO_EXIT: list[object] = []
_LEFT_TO_EXIT.append(_LEFT_TO_EXIT)


def leave_to_exit(*objects: object) -> None:
    """Keep ``objects`` (a one-shot command's desired graph, snapshot and plan) until the
    process ends, in place of what the last call kept: freed one object at a time when
    the command returns, those of a 50,000-resource preview cost about 0.1 s. The list
    that holds them holds itself, and ``_exit_sooner`` freezes it, so the interpreter's
    exit does not free them either."""
    _LEFT_TO_EXIT[1:] = objects


_END_AT_ONCE: list[bool] = [False]


def end_at_once() -> None:
    """Let this command's process end without the interpreter's teardown once the
    command is done (see ``_end``). For a sharded `run up` worker: tearing down the
    modules and the run's plans and results took 20 to 50 ms, on the critical path of
    the last worker of the run and competing with the others ending at that moment."""
    _END_AT_ONCE[0] = True


def _end(status: int) -> NoReturn:
    """Exit handlers run and stdout and stderr are flushed, then the process ends.
    Stores and files are closed explicitly before a command returns; a thread that is
    not a daemon (a library's pool still working) gets the ordinary exit, which waits
    for it."""
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError as exc:  # what the ordinary exit reports (and its status) for a closed pipe
            os.write(2, f"could not write the output: {exc}\n".encode())
            status = status or 120
    os._exit(status)


def _exit_status(code: object) -> int:
    """``SystemExit.code`` as the process status, as the interpreter maps it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _debug_requested() -> bool:
    return "--debug" in sys.argv or os.environ.get("STACKWRIGHT_DEBUG") == "1"


def main() -> None:
    """Entry point: user errors in one or two lines, a traceback only with --debug."""
    _END_AT_ONCE[0] = False
    try:
        _main()
    except SystemExit as exc:
        if _END_AT_ONCE[0]:
            _end(_exit_status(exc.code))
        raise
    if _END_AT_ONCE[0]:
        _end(0)


def _main() -> None:
    try:
        cli.main(prog_name="stackwright", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc, exc.format_message(), _usage_hint(exc), _usage_status(exc))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except StackwrightError as exc:
        _fail(exc, exc.headline(), exc.hint)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a bug: said in one line, never hidden
        _fail(exc, f"internal error: {type(exc).__name__}: {exc}",
              "this is a bug in Stackwright: report it; run again with --debug to see the traceback")


def _fail(exc: Exception, headline: str, hint: str | None, status: int = 1) -> None:
    """The error in one or two lines (the traceback first with --debug, and then no
    advice to run with --debug), then its notes (what went wrong besides, such as
    recording it); exit ``status``: 1, or click's 2 for a command line it could not
    parse."""
    if _debug_requested():
        _print_traceback(exc)
        hint = _without_debug_advice(hint)
    click.echo(click.style("error: ", fg="red", bold=True) + headline, err=True, color=colour())
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    for note in getattr(exc, "__notes__", ()):
        click.echo(f"  note: {note}", err=True)
    sys.exit(status)


def _print_traceback(exc: Exception) -> None:
    """The traceback; a Stackwright error's last line is its headline alone, the hint
    being the error line's below."""
    import traceback

    lines = traceback.format_exception(exc)
    only = traceback.format_exception_only(exc)
    if isinstance(exc, StackwrightError) and lines[-len(only):] == only:
        lines[-len(only):] = [f"{type(exc).__module__}.{type(exc).__qualname__}: {exc.headline()}\n"]
    sys.stderr.write("".join(lines))


def _without_debug_advice(hint: str | None) -> str | None:
    """``hint`` without its parts (between semicolons) that say to run with --debug."""
    kept = [part for part in (hint or "").split("; ") if "--debug" not in part]
    return "; ".join(kept) or None


def _usage_status(exc: click.ClickException) -> int:
    """click's status (2 for a command line it could not parse), except that with
    ``--exit-code`` 2 means "changes found", so every error is 1."""
    return 1 if "--exit-code" in sys.argv else exc.exit_code


def _usage_hint(exc: click.ClickException) -> str | None:
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        return f"see `{exc.ctx.command_path} --help`"
    return None


COMMANDS: dict[str, str] = {
    **dict.fromkeys(("local-cloud", "new", "stack", "unlock"), "commands_stack"),
    **dict.fromkeys(("destroy", "import", "preview", "refresh", "rollback", "up"), "commands_update"),
    **dict.fromkeys(("history", "outputs", "state"), "commands_inspect"),
    **dict.fromkeys(("apply", "approve", "audit", "plan", "reject"), "commands_plans"),
    "run": "commands_workspace",
    **dict.fromkeys(("ci", "env"), "commands_env"),
    **dict.fromkeys(("config", "secrets"), "commands_secrets"),
    "local-cluster": "commands_cluster",
    "gitops": "commands_gitops",
    "serve": "commands_web",
}
"""Each command, and the module of ``stackwright.cli`` whose ``register`` adds it."""
EXTENSIONS: dict[str, str] = {"commands_inspect": "commands_state_migrate"}
"""Modules that add to a group another module registers (``state migrate``)."""


class LazyGroup(click.Group):
    """The ``stackwright`` group: a command's module is imported when the command runs
    (or help lists it), so that `stackwright up` loads none of the other commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            register_module(COMMANDS[cmd_name])
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@colour_option
@click.option("-C", "--cwd", type=click.Path(file_okay=False), help="Run as if started in this folder.")
@click.version_option(package_name="stackwright")
def cli(debug: bool, cwd: str | None) -> None:
    """Stackwright: infrastructure as Python, delivered through git.

    Declare resources in Python, preview every change, apply exactly what was
    previewed, and keep a record of every step.
    """
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as exc:
            raise ProjectError(f"cannot run in {cwd}: {exc.strerror}",
                               hint="-C/--cwd takes an existing folder (a project or one inside it)") from None


def register_module(name: str) -> None:
    """Import ``stackwright.cli.<name>`` and add its commands (and their extensions)."""
    import importlib

    before = set(cli.commands)
    for module in (name, EXTENSIONS.get(name)):
        if module:
            importlib.import_module(f"stackwright.cli.{module}").register(cli)
    for command_name in set(cli.commands) - before:
        accept_colour_option(cli.commands[command_name])


if __name__ == "__main__":
    # `python -m stackwright.cli.main`: this copy runs as __main__, but the command
    # modules import `stackwright.cli.main`; run that module so there is one `cli`.
    from stackwright.cli.main import main as package_main

    package_main()
