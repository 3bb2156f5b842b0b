"""Ctrl-C during `stackwright up`, through the real command.

The program declares six independent commands that each take a while; `up` runs with
``--parallel 2``. SIGINT arrives while the first two run: those two finish and are
recorded, nothing else starts (steps prepared ahead of a free call slot are withdrawn),
the command exits non-zero naming what did not start, and the next `up` does the rest,
each command having run exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.conftest import CliProject, cli_env

PROGRAM = """\
for i in range(6):
    local.Command(f"job-{i}", create=f"echo run >> ran-{i} && sleep 1 && echo done")
"""


def runs(root: Path) -> dict[int, int]:
    return {i: len((root / f"ran-{i}").read_text().splitlines())
            for i in range(6) if (root / f"ran-{i}").exists()}


@pytest.mark.parametrize("terminal", [False, True], ids=["process", "process-group"])
def test_ctrl_c_finishes_steps_in_flight_and_starts_nothing_else(
        project: Callable[..., CliProject], terminal: bool) -> None:
    """``terminal``: SIGINT goes to the whole foreground process group, as a terminal's
    Ctrl-C does, so it reaches the commands' shells too unless they are kept apart."""
    proj = project(PROGRAM)
    up = subprocess.Popen([sys.executable, "-m", "stackwright.cli.main", "up", "--yes", "--parallel", "2"],
                          cwd=proj.root, env=cli_env(), text=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=terminal)
    deadline = time.monotonic() + 30
    while len(runs(proj.root)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(runs(proj.root)) == 2, "the first two commands never started"
    if terminal:
        os.killpg(up.pid, signal.SIGINT)
    else:
        up.send_signal(signal.SIGINT)
    out, err = up.communicate(timeout=60)

    assert up.returncode != 0, out + err
    assert "Traceback" not in out + err
    assert "Interrupted" in err and "4 not started" in out + err, out + err
    assert out.count(" ok (") == 2, out
    assert sorted(runs(proj.root).values()) == [1, 1]
    listed = proj.ok("state", "ls")
    assert listed.count("local:Command") == 2, listed

    again = proj.ok("up", "--yes")
    assert "interrupted operation" not in again
    assert runs(proj.root) == {i: 1 for i in range(6)}
    assert "No changes" in proj.ok("preview")
