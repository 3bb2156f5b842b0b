"""What a one-shot command leaves to the process's end stays alive until then, and only
the last command's: a process that runs many commands (tests, `CliRunner`) keeps one."""

from __future__ import annotations

import subprocess
import sys
import weakref

import pytest

from stackwright.cli.main import leave_to_exit


class _Graph:
    """Stands for a desired graph or a plan (weak references need a class of our own)."""


def test_what_a_command_leaves_to_exit_stays_alive_until_the_next_command_leaves_its_own() -> None:
    first, second = _Graph(), _Graph()
    first_ref, second_ref = weakref.ref(first), weakref.ref(second)
    leave_to_exit(first, second)
    del first, second
    assert first_ref() is not None and second_ref() is not None
    leave_to_exit(_Graph())
    assert first_ref() is None and second_ref() is None


ENDING = """
import atexit, sys, threading, time
import click
from stackwright.cli import main as entry

@entry.cli.command("finish")
@click.option("--fail", is_flag=True)
@click.option("--worker", is_flag=True)
def finish(fail, worker):
    entry.end_at_once()
    atexit.register(lambda: print("exit handler ran", flush=True))
    if worker:
        def late():
            time.sleep(0.3)
            print("the worker thread finished", flush=True)
        threading.Thread(target=late).start()
    print("x" * 200_000)
    if fail:
        sys.exit(3)

sys.argv = ["stackwright", "finish", *sys.argv[1:]]
entry.main()
"""


@pytest.mark.parametrize(("flags", "status"), [((), 0), (("--fail",), 3)])
def test_a_command_that_ends_at_once_still_flushes_its_output_runs_exit_handlers_and_keeps_its_status(
        flags: tuple[str, ...], status: int) -> None:
    done = subprocess.run([sys.executable, "-c", ENDING, *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["x" * 200_000, "exit handler ran"]


def test_a_command_that_ends_at_once_waits_for_a_thread_that_is_not_a_daemon() -> None:
    done = subprocess.run([sys.executable, "-c", ENDING, "--worker"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["the worker thread finished", "exit handler ran"]
