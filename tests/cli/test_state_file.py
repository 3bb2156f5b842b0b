"""The state file as every command sees it: corrupt is corrupt, and reading never writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.conftest import CliProject

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


def test_read_only_commands_never_create_a_state_file(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.db.unlink()
    for args in READ_ONLY:
        proj.run(*args)
        assert not proj.db.exists(), args
    assert "no stack named 'dev'" in proj.fails("preview")
    proj.ok("stack", "init", "dev")
    assert proj.db.is_file()
