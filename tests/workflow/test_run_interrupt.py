"""Ctrl-C during `stackwright run up`: the stack being applied finishes what is in
flight and is recorded, and no other stack starts. (The interrupt used to be taken by
that stack's apply alone: when its last step was in flight the stack succeeded and
the run went on to apply the rest.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.conftest import cli_env, run_cli
from support import write_workspace

BASE = 'import stackwright as sw\nfrom stackwright.providers import local\n'
PROGRAMS = {
    "network": BASE + 'local.Command("slow", create="echo run >> ran && sleep 2 && echo done")\n'
                      'sw.export("vpc", "vpc-1")\n',
    "app": BASE + 'net = sw.StackReference("network/dev")\n'
                  'local.File("f", path="f.txt", content=net.output("vpc"))\n',
    "other": BASE + 'local.File("g", path="g.txt", content="independent")\n',
}
WORKSPACE = ("projects:\n  - path: network\n  - path: app\n    depends_on: [\"network/{stack}\"]\n"
             "  - path: other\n")


def workspace(root: Path) -> Path:
    return write_workspace(root, PROGRAMS, WORKSPACE)


def interrupted_run_up(root: Path, *args: str, terminal: bool = True) -> str:
    """`run up --all --yes ARGS`, interrupted during the slow stack (from a terminal:
    SIGINT to the process group): that stack finished, no other started. Its stdout."""
    run = subprocess.Popen([sys.executable, "-m", "stackwright.cli.main", "--color", "never",
                            "run", "up", "--all", "--yes", *args],
                           cwd=root, env=cli_env(), text=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=terminal)
    ran = root / "network" / "ran"
    deadline = time.monotonic() + 30
    while not ran.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ran.exists(), "the slow command never started"
    if terminal:
        os.killpg(run.pid, signal.SIGINT)
    else:
        run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)

    assert run.returncode == 1, out + err
    assert "Traceback" not in out + err
    assert "--- network/dev (up): ok" in out and ran.read_text() == "run\n"
    assert "--- app/dev: not started (interrupted)" in out
    assert "--- other/dev: not started (interrupted)" in out
    assert not (root / "app" / "f.txt").exists() and not (root / "other" / "g.txt").exists()
    return out


@pytest.mark.parametrize("terminal", [False, True], ids=["process", "process-group"])
def test_ctrl_c_during_run_up_lets_the_stack_finish_and_starts_no_other(tmp_path: Path, terminal: bool) -> None:
    root = workspace(tmp_path)
    assert "2 not-started, 1 ok" in interrupted_run_up(root, terminal=terminal)

    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 0, out + err
    assert (root / "network" / "ran").read_text() == "run\n"  # the slow command ran once
    assert (root / "app" / "f.txt").read_text() == "vpc-1"


@pytest.mark.parametrize(("first", "then"), [("1/1", "1/1"), ("1/2", "2/2")], ids=["re-run", "other-worker"])
def test_ctrl_c_during_a_sharded_run_up_lets_the_stack_finish_and_claims_no_other(
        tmp_path: Path, first: str, then: str) -> None:
    """The same with `--shard`: the worker claims no other stack and records none it
    did not apply; they stay for a re-run of the same run id, or for another worker of
    the run, which applies them."""
    root = workspace(tmp_path)
    out = interrupted_run_up(root, "--shard", first, "--run-id", "x")
    assert "2 not-started, 1 ok; 1 done by this worker" in out

    code, out, err = run_cli(root, "--color", "never", "run", "up", "--all", "--yes",
                             "--shard", then, "--run-id", "x")
    assert code == 0, out + err
    assert "... network/dev" not in out  # done in this run already
    assert "3 ok; 2 done by this worker" in out
    assert (root / "network" / "ran").read_text() == "run\n"  # the slow command ran once
    assert (root / "app" / "f.txt").read_text() == "vpc-1"
