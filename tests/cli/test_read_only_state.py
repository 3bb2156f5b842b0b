"""Read-only state mode through the real command: what a pull-request job gets.

``STACKWRIGHT_STATE_READ_ONLY=1`` (or ``state: {read_only: true}``) lets every reading
command run, preview included, and refuses every change and every lock in one line,
whichever command asked: the state store itself refuses (``state/``), not the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli.conftest import CliProject

PROGRAM = """
note = local.File("note", path="out/note.txt", content=sw.Config().require_str("text"))
sw.export("path", note.path)
"""
READ_ONLY = {"STACKWRIGHT_STATE_READ_ONLY": "1"}


def applied(project: Callable[..., CliProject]) -> CliProject:
    proj = project(PROGRAM, {"text": "one"})
    proj.ok("up", "--yes")
    proj.write_config({"text": "two"})  # a change waiting to be previewed
    return proj


def refused_in_one_line(proj: CliProject, *args: str, **env: str) -> str:
    err = proj.fails(*args, **env)
    assert "read-only" in err and "STACKWRIGHT_STATE_READ_ONLY" in err, err
    assert len(err.strip().splitlines()) <= 2, err
    return err


@pytest.mark.parametrize("args", [
    ("up", "--yes"),
    ("destroy", "--yes"),
    ("refresh", "--yes"),
    ("state", "rm", "--yes", "dev::proj::local:index/File::note"),
    ("stack", "init", "prod"),
    ("plan", "--out", "plan.json"),
])
def test_every_change_is_refused_and_nothing_is_written(project: Callable[..., CliProject],
                                                        args: tuple[str, ...]) -> None:
    proj = applied(project)
    before = proj.tree()
    refused_in_one_line(proj, *args, **READ_ONLY)
    assert proj.tree() == before
    assert proj.file("out/note.txt").read_text() == "one"


def test_reading_commands_and_preview_work(project: Callable[..., CliProject]) -> None:
    proj = applied(project)
    before = proj.tree()
    out = proj.ok("preview", **READ_ONLY)
    assert "update" in out.lower() or "~" in out
    proj.ok("history", **READ_ONLY)
    proj.ok("outputs", **READ_ONLY)
    proj.ok("state", "ls", **READ_ONLY)
    proj.ok("audit", **READ_ONLY)
    assert proj.tree() == before


def test_preview_takes_no_lock_and_unlock_is_refused(project: Callable[..., CliProject]) -> None:
    from stackwright.state.records import LockInfo

    proj = applied(project)
    with proj.store("dev") as store:
        store.acquire_lock("dev", LockInfo("ci-bot", 1, "elsewhere", 0.0, "up"))
    proj.ok("preview", **READ_ONLY)
    refused_in_one_line(proj, "unlock", "--force", **READ_ONLY)
    with proj.store("dev") as store:
        held = store.read_lock("dev")
    assert held is not None and held.owner == "ci-bot"


def test_the_project_file_switch(project: Callable[..., CliProject]) -> None:
    proj = applied(project)
    settings = proj.file("stackwright.yaml")
    settings.write_text(settings.read_text() + "state:\n  read_only: true\n")
    proj.ok("preview")
    refused_in_one_line(proj, "up", "--yes")


def test_approve_and_apply_are_refused(tmp_path: Path) -> None:
    from workflow.test_plans_approvals import make_project, signed

    proj = make_project(tmp_path / "proj")
    proj.ok("stack", "select", "production")
    proj.ok("plan", "--out", "plan.json")
    before = proj.tree()
    refused_in_one_line(proj, "approve", "plan.json", *signed(proj, "bob"), **READ_ONLY)
    assert proj.tree() == before
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    approved = proj.tree()
    refused_in_one_line(proj, "apply", "plan.json", "--yes", **READ_ONLY)
    assert proj.tree() == approved


def test_the_s3_backend_is_read_only_too(project: Callable[..., CliProject], s3_state_url: str) -> None:
    proj = project(PROGRAM, {"text": "one"})
    env = {"STACKWRIGHT_STATE_URL": s3_state_url}
    proj.ok("stack", "init", "dev", **env)
    proj.ok("up", "--yes", **env)
    proj.write_config({"text": "two"})
    proj.ok("preview", **env, **READ_ONLY)
    refused_in_one_line(proj, "up", "--yes", **env, **READ_ONLY)
    refused_in_one_line(proj, "destroy", "--yes", **env, **READ_ONLY)
    assert "one" in proj.ok("outputs", **env, **READ_ONLY) or proj.file("out/note.txt").read_text() == "one"
