"""Bad input through the real command: a short clear error, exit 1, and nothing changed.

Every case starts from an applied stack, so "nothing changed" is checked against a
state file that has content: every row must be identical afterwards, but the audit
log's record of the failed attempt a refused change adds (a preview adds none).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time

import pytest

from cli.conftest import CliProject
from stackwright.state.records import SCHEMA_VERSION, LockInfo
from stackwright.state.sqlite import SqliteStateStore

GOOD = 'base = local.File("base", path="base.txt", content="base")\n'


@pytest.fixture
def applied(project) -> CliProject:
    proj = project(GOOD)
    proj.ok("up", "--yes")
    return proj


def refused(proj: CliProject, *args: str) -> str:
    """Run ``args`` (default: preview, then up --yes); require a one- or two-line error
    on stderr, exit 1, nothing on stdout, and the state file unchanged but for the
    failed attempt of the default `up` (``args`` here change nothing or cannot open the
    stack). Returns the error of the last run."""
    before, attempts = proj.state_rows(), proj.attempts()
    files = proj.file("base.txt").read_text()
    runs = [args] if args else [("preview",), ("up", "--yes")]
    err = ""
    for run_args in runs:
        code, out, err = proj.run(*run_args)
        assert code == 1, f"{run_args}: exit {code}\n{out}\n{err}"
        assert "Traceback" not in err + out
        assert out == "", out
        lines = err.strip().splitlines()
        assert 1 <= len(lines) <= 2, err
        assert lines[0].startswith("error: ")
        if len(lines) == 2:
            assert lines[1].startswith("  hint: ")
    assert proj.state_rows() == before
    assert proj.attempts() == attempts + (0 if args else 1)
    assert proj.file("base.txt").read_text() == files
    return err


def with_program(proj: CliProject, text: str) -> None:
    proj.write_program(GOOD + text)


def test_syntax_error_names_file_and_line(applied: CliProject) -> None:
    with_program(applied, "x = (1,\ny = 2\n")
    err = refused(applied)
    assert f"error: {applied.program}:{applied.line_of('x = (1,')}: syntax error: " in err
    assert "never closed" in err


def test_exception_names_the_users_frame(applied: CliProject) -> None:
    with_program(applied, """\
def bucket_name(env):
    raise ValueError(f"no bucket for {env}")

bucket_name(sw.get_stack())
""")
    err = refused(applied)
    line = applied.line_of("raise ValueError")
    assert f"error: {applied.program}:{line}: the program raised ValueError: no bucket for dev" in err
    assert "--debug" in err


def test_exception_in_a_project_module_names_that_module(applied: CliProject) -> None:
    applied.file("naming.py").write_text("def name(x):\n    return x.upper()\n")
    with_program(applied, "import naming\nnaming.name(3)\n")
    err = refused(applied, "preview")
    assert f"{applied.file('naming.py')}:2: the program raised AttributeError" in err


def test_debug_shows_the_traceback(applied: CliProject) -> None:
    with_program(applied, "raise ValueError('boom')\n")
    code, out, err = applied.run("--debug", "preview")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "ValueError: boom" in err
    line = applied.line_of("raise ValueError")
    headline = f"{applied.program}:{line}: the program raised ValueError: boom"
    assert err.strip().splitlines()[-2:] == [f"stackwright.errors.ProgramError: {headline}", f"error: {headline}"]
    assert "--debug" not in err, "the advice to run with --debug, followed, is not given again"


def test_missing_config_key_names_key_and_stack_file(applied: CliProject) -> None:
    with_program(applied, 'region = sw.Config("aws").require_str("region")\n')
    err = refused(applied)
    assert "error: stacks/dev.yaml: missing required config key 'aws.region'" in err
    assert f"(required at {applied.program}:{applied.line_of('region =')})" in err
    assert "hint: add it under `config:` in stacks/dev.yaml" in err


def test_wrong_config_type_names_key_and_line(applied: CliProject) -> None:
    applied.write_config({"replicas": "three"})
    with_program(applied, 'n = sw.Config().require_int("replicas")\n')
    err = refused(applied)
    assert "error: stacks/dev.yaml:2: config key 'replicas' must be int, got 'three'" in err


def test_invalid_property_type_names_resource_property_type_and_line(applied: CliProject) -> None:
    with_program(applied, 'page = local.File("page", path="page.txt",\n'
                          '                  content=3)\n')
    err = refused(applied)
    line = applied.line_of('page = local.File')
    assert (f"error: {applied.program}:{line}: dev::proj::local:File::page.content: "
            "expected str, got int 3") in err


def test_value_rejected_by_the_provider_names_resource_property_and_line(applied: CliProject) -> None:
    with_program(applied, 'page = local.File("page", path="page.txt", mode=0o17777)\n')
    err = refused(applied)
    line = applied.line_of("0o17777")
    assert (f"error: {applied.program}:{line}: dev::proj::local:File::page.mode: "
            "mode must be an integer between 0 and 0o7777, got 8191") in err
    assert "hint: write it in octal" in err


def test_unknown_property_suggests_the_close_name(applied: CliProject) -> None:
    with_program(applied, 'page = local.File("page", path="page.txt", contnet="x")\n')
    err = refused(applied)
    line = applied.line_of("contnet")
    assert (f"error: {applied.program}:{line}: dev::proj::local:File::page.contnet: "
            "unknown input 'contnet' for local:File") in err
    assert "hint: did you mean 'content'?" in err


def test_dependency_cycle_through_a_component_lists_the_cycle(applied: CliProject) -> None:
    with_program(applied, """\
class Group(sw.Component):
    pass

group = Group("group")
x = local.File("x", path="x.txt", content="x", opts=sw.ResourceOptions(depends_on=[group]))
child = local.File("child", path="child.txt", content=x.sha256, opts=sw.ResourceOptions(parent=group))
""")
    err = refused(applied, "preview")
    assert "dependency cycle: " in err
    cycle = err.split("dependency cycle: ", 1)[1].splitlines()[0]
    assert cycle in ("x -> child -> x", "child -> x -> child")
    assert f"{applied.program}:" in err
    # `up` finds the cycle under the stack's lock: the recorded state stays the same.
    state, history = applied.ok("state", "ls"), applied.ok("history")
    code, out, err = applied.run("up", "--yes")
    assert code == 1 and "dependency cycle" in err and "Traceback" not in err
    assert (applied.ok("state", "ls"), applied.ok("history")) == (state, history)
    assert not applied.file("x.txt").exists()


def test_duplicate_names_name_both_places(applied: CliProject) -> None:
    with_program(applied, 'local.File("page", path="a.txt")\nlocal.File("page", path="b.txt")\n')
    err = refused(applied)
    first, second = applied.line_of('"a.txt"'), applied.line_of('"b.txt"')
    assert (f"error: {applied.program}:{second}: dev::proj::local:File::page: duplicate resource "
            f"name 'page' of type local:File (first declared at {applied.program}:{first})") in err


def test_declaring_a_resource_inside_apply_is_an_error_with_a_hint(applied: CliProject) -> None:
    with_program(applied, """\
name = sw.Output.from_value("late")
page = local.File("page", path="page.txt",
                  content=name.apply(lambda n: local.File(n, path=n).path))
""")
    err = refused(applied)
    line = applied.line_of("lambda n")
    assert (f"error: {applied.program}:{line}: dev::proj::local:File::page: a resource was declared "
            "inside an Output callback") in err
    assert "hint: the set of resources must be known when the plan is made" in err


def test_unknown_stack(applied: CliProject) -> None:
    err = refused(applied, "preview", "--stack", "nope")
    assert "error: no stack named 'nope' in project 'proj'" in err
    assert "known stacks: dev" in err
    refused(applied, "up", "--yes", "--stack", "nope")


def test_lock_held_by_another_process(applied: CliProject) -> None:
    with SqliteStateStore(applied.db) as store:
        store.acquire_lock("dev", LockInfo(owner="alex@example.com", pid=os.getpid(),
                                           host=socket.gethostname(), acquired_at=time.time(),
                                           operation="up"))
    applied.write_program(GOOD.replace('content="base"', 'content="changed"'))
    before = applied.state_rows()
    code, out, err = applied.run("up", "--yes")  # shows the plan (confirmed before the lock), then fails
    assert code == 1 and "1 to update" in out and applied.state_rows() == before
    assert applied.file("base.txt").read_text() == "base"
    assert (f"error: stack 'dev' is locked by alex@example.com (pid {os.getpid()} on "
            f"{socket.gethostname()}), running 'up'") in err
    assert "stackwright unlock" in err
    code, out, err = applied.run("destroy", "--yes")
    assert code == 1 and "is locked by alex@example.com" in err and applied.state_rows() == before
    assert applied.attempts() == 2, "both audited as stopped at the lock"
    err = refused(applied, "unlock")
    assert "may still be running" in err and "unlock --force" in err

    assert "Cleared the lock held by alex@example.com" in applied.ok("unlock", "--force")
    applied.ok("up", "--yes")
    assert applied.file("base.txt").read_text() == "changed"


def test_corrupt_state_file_is_refused_and_left_alone(applied: CliProject) -> None:
    applied.db.write_bytes(b"this is not a database\n" * 100)
    for args in (("preview",), ("up", "--yes"), ("state", "ls"), ("stack", "ls")):
        err = refused(applied, *args)
        assert f"error: state file {applied.db} is corrupt: it is not a SQLite database" in err
        assert "restore it from a backup" in err


def test_state_from_a_newer_schema_version_is_refused_and_left_alone(applied: CliProject) -> None:
    conn = sqlite3.connect(applied.db)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    for args in (("preview",), ("up", "--yes"), ("history",)):
        err = refused(applied, *args)
        assert (f"error: state file {applied.db} has schema version 99, newer than the version "
                f"{SCHEMA_VERSION} this stackwright understands") in err
        assert "hint: upgrade stackwright" in err
