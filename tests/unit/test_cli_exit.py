"""What a one-shot command leaves to the process's end stays alive until then, and only
the last command's: a process that runs many commands (tests, `CliRunner`) keeps one."""

from __future__ import annotations

import weakref

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
