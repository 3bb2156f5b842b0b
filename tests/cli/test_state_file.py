"""The state file as every command sees it: corrupt is corrupt, and reading never writes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from cli.conftest import CliProject, cli_env

PROGRAM = 'f = local.File("f", path="f.txt", content="x")\nsw.export("path", f.path)\n'
URN = "dev::proj::local:File::f"
READ_ONLY = [("preview",), ("preview", "--format", "json"), ("outputs",), ("history",), ("state", "ls"),
             ("state", "show", URN), ("refresh",), ("stack", "ls"), ("audit",)]
EVERY = [*READ_ONLY, ("up", "--yes"), ("destroy", "--yes"), ("refresh", "--yes"), ("stack", "init", "other")]


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_state_file_is_corrupt_for_every_command(project, damage: str) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    whole = proj.db.read_bytes()
    proj.db.write_bytes({"empty": b"", "truncated": whole[:3000], "garbage": b"not a database\n" * 50}[damage])
    before = fingerprint(proj.db)
    for args in EVERY:
        err = proj.fails(*args)
        assert f"error: state file {proj.db} is corrupt" in err, (args, err)
        assert "hint: restore it from a backup" in err
        assert len(err.strip().splitlines()) == 2, err
    assert fingerprint(proj.db) == before
    assert sorted(p.name for p in proj.db.parent.iterdir() if p.name.startswith("state")) == ["state.db"]


def test_read_only_commands_never_write_the_state_file(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.file("f.txt").write_text("drifted")
    before = fingerprint(proj.db)
    for args in READ_ONLY:
        proj.ok(*args)
        assert fingerprint(proj.db) == before, args


KILLED = """
first = local.File("first", path="first.txt", content="recorded before the kill")
local.Command("slow", create="[ -e started ] || { touch started && sleep 60; }",
              opts=sw.ResourceOptions(depends_on=[first]))
"""


def killed_up(proj: CliProject) -> None:
    """`up` SIGKILLed while ``slow`` runs, ``first`` recorded: its commits are in the
    WAL only (SQLite folds them into state.db at a checkpoint, which never came)."""
    up = subprocess.Popen([sys.executable, "-m", "stackwright.cli.main", "up", "--yes"], cwd=proj.root,
                          env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not proj.file("started").exists() and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proj.file("started").exists(), "slow never started"
    finally:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait()


def recorded_in_file_alone(proj: CliProject, tmp: Path) -> list[str]:
    """The URNs state.db itself holds, without its WAL."""
    copy = tmp / "alone.db"
    shutil.copyfile(proj.db, copy)
    with closing(sqlite3.connect(copy)) as conn:
        return [row[0] for row in conn.execute("SELECT urn FROM resources")]


def test_read_only_commands_after_a_killed_up_never_write_the_state_file(project, tmp_path: Path) -> None:
    proj: CliProject = project(KILLED)
    killed_up(proj)
    wal = proj.db.with_name("state.db-wal")
    assert wal.stat().st_size > 0 and recorded_in_file_alone(proj, tmp_path) == []
    before = fingerprint(proj.db), wal.read_bytes()
    outputs = {}
    for args in [("preview",), ("outputs",), ("history",), ("state", "ls")]:
        outputs[args] = proj.ok(*args)
        assert (fingerprint(proj.db), wal.read_bytes() if wal.exists() else None) == before, args
    assert proj.urn("local:File", "first") in outputs[("state", "ls")], "what the WAL holds is read"
    assert "create" in outputs[("preview",)] and "local:Command slow" in outputs[("preview",)]
    proj.ok("unlock")
    proj.ok("up", "--yes")  # a command that writes folds the WAL in, as before
    assert proj.urn("local:File", "first") in recorded_in_file_alone(proj, tmp_path)


def test_read_only_commands_never_create_a_state_file(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.db.unlink()
    for args in READ_ONLY:
        proj.run(*args)
        assert not proj.db.exists(), args
    assert "no stack named 'dev'" in proj.fails("preview")
    proj.ok("stack", "init", "dev")
    assert proj.db.is_file()
