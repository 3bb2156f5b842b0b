"""A writer killed before its checkpoint still leaves one: the next holder of the stack's
lock closes the operation it left open as ``interrupted``, listing the changes that
landed (``state/open_operation.py``).

Each test kills `stackwright up` at a chosen point, deterministically: the command runs
in a child process whose store ends the process with ``os._exit`` (no cleanup, as a
SIGKILL) when a given write is reached. The store is the project's SQLite file, a
database on a PostgreSQL server started on 127.0.0.1, or a bucket of the local S3
emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import VersionedProject, cli_env

PROGRAM = """\
import stackwright as sw
from stackwright.providers import synthetic

version = sw.Config().require_int("version")
first = synthetic.Thing("first", size=version)
second = synthetic.Thing("second", size=version, ref=first.value)
synthetic.Thing("third", size=version, ref=second.value)
"""

KILLED = """\
import os, sys
from stackwright.state import s3, sql_store

point, count = sys.argv[1], int(sys.argv[2])
seen = []

def dying(original):
    def write(self, *args, **kwargs):
        seen.append(1)
        if point == "before-checkpoint" or len(seen) > count:
            os._exit(9)
        return original(self, *args, **kwargs)
    return write

name = "finish" if point == "before-checkpoint" else "record_resource"
for writer in (sql_store.SqlStackWriter, s3.S3StackWriter):
    setattr(writer, name, dying(getattr(writer, name)))
sys.argv = ["stackwright", *sys.argv[3:]]
from stackwright.cli.main import main
main()
"""


class Project(VersionedProject):
    def __init__(self, root: Path) -> None:
        super().__init__(root, "interrupted", PROGRAM, "dev", 120)

    def killed(self, point: str, records: int = 0) -> None:
        """`up` to the next version, ended at ``point`` (after ``records`` resources)."""
        done = subprocess.run([sys.executable, "-c", KILLED, point, str(records), "up", "--yes"],
                              cwd=self.root, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 9, (done.stdout, done.stderr)

    def history(self) -> list[dict[str, object]]:
        entries = json.loads(self.ok("history", "--json"))["checkpoints"]
        assert isinstance(entries, list)
        return entries


@pytest.fixture(params=["sqlite", "postgres", "s3"])
def project(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    if request.param == "postgres":
        monkeypatch.setenv("STACKWRIGHT_STATE_URL", request.getfixturevalue("pg_url"))
    elif request.param == "s3":
        request.getfixturevalue("s3_state_url")
    return Project(tmp_path / "interrupted")


def test_killed_after_its_last_record_the_up_is_checkpointed_as_interrupted(project: Project) -> None:
    project.ok("up", "--yes")
    project.set_version(2)
    project.killed("before-checkpoint")
    assert [e["result"] for e in project.history()] == ["succeeded"], "no checkpoint before the lock is taken"
    assert "No changes." in project.ok("preview"), "every change was recorded"

    project.ok("unlock")
    out = project.ok("up", "--yes")
    assert "No changes" in out or "no changes" in out.lower(), out
    entries = project.history()
    assert [(e["kind"], e["result"]) for e in entries] == [("up", "succeeded"), ("up", "interrupted")]
    interrupted = entries[1]
    assert interrupted["counts"] == {"update": 3}, interrupted
    assert "stopped before recording its checkpoint" in str(interrupted["message"])
    assert "up, pid" in str(interrupted["message"]), "it names the lock it ran under"
    shown = project.ok("history", "show", str(interrupted["number"]))
    assert shown.count("update") >= 3 and "second" in shown, shown
    assert "interrupted" in project.ok("history")


def test_killed_midway_the_changes_that_landed_are_checkpointed(project: Project) -> None:
    project.killed("after-records", records=1)  # the first create only
    # No `unlock`: the lock's holder is gone from this host, so `up` takes it over.
    done = project.run("up", "--yes")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Took over the lock of stack 'dev' left by tester (pid " in done.stderr, done.stderr
    entries = project.history()
    assert [(e["kind"], e["result"]) for e in entries] == [("up", "interrupted"), ("up", "succeeded")]
    assert entries[0]["counts"] == {"create": 1}
    assert entries[1]["counts"] == {"create": 2}
    assert "No changes." in project.ok("preview")
    project.ok("up", "--yes")
    assert len(project.history()) == 2, "a finished operation leaves nothing open"
