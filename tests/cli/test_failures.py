"""No silent failure: whatever goes wrong, through the real command, is a recorded,
located error of one or two lines and exit status 1."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

import click
import pytest

import stackwright
from cli.conftest import CliProject
from stackwright.errors import StackwrightError

PROGRAM = """\
cmd = local.Command("cmd", create="echo hello")
f = local.File("f", path="f.txt", content=cmd.stdout.apply(lambda s: str(int(s))))  # the bug
g = local.File("g", path="g.txt", content=f.sha256)
h = local.File("h", path="h.txt", content="independent")
sw.export("content", f.content)
sw.export("both", {"sha": f.sha256, "fixed": "x"})
sw.export("h", h.path)
"""


def one_error(err: str) -> str:
    """The stderr of a clean failure: an ``error:`` line and at most a hint."""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    assert len(lines) == 1 or lines[1].startswith("  hint: "), err
    return lines[0]


def step_failure(out: str, err: str, urn: str, action: str = "create") -> str:
    """The error of the failed step ``urn``, printed once: on its progress line; the
    summary after the apply names the step and refers to it."""
    name = urn.rsplit("::", 1)[1].replace("$", "/")
    lines = [l for l in (out + err).splitlines() if "failed" in l and name in l]
    [step] = [l for l in lines if f"{action} " in l and f"  failed (" in l]
    assert step.strip().startswith(action), step
    error = step.split("): ", 1)[1]
    assert f"  failed: {action} {urn} (its error is above)" in err, err
    assert (out + err).count(error) == 1, out + err
    return error


def test_a_callback_that_raises_during_apply_fails_the_update(project) -> None:
    proj: CliProject = project(PROGRAM)
    code, out, err = proj.run("up", "--yes")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    line = proj.line_of("# the bug")
    error = step_failure(out, err, proj.urn("local:File", "f"))
    assert f"__main__.py:{line}" in error
    assert "ValueError: invalid literal for int()" in error
    assert "1 failed; 1 skipped" in err
    assert not proj.file("f.txt").exists() and not proj.file("g.txt").exists()
    assert proj.file("h.txt").read_text() == "independent"
    history = proj.ok("history")
    assert "failed" in history
    shown = proj.ok("history", "show", "1")
    assert f"FAILED: {error}" in shown


def test_a_callback_that_raises_during_preview_names_the_line_and_resource(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.run("up", "--yes")  # applies cmd: its stdout is known from now on
    code, out, err = proj.run("preview")
    assert code == 1 and "Traceback" not in out + err
    first = one_error(err)
    assert f"__main__.py:{proj.line_of('# the bug')}" in first
    assert proj.urn("local:File", "f") in first and "ValueError" in first


def test_a_provider_error_during_import_is_one_line_naming_the_resource(project) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    proj.file("adir").mkdir()
    code, out, err = proj.run("import", "--yes", "local:File", "x", "adir")
    assert code == 1 and "Traceback" not in out + err
    assert proj.urn("local:File", "x") in one_error(err) and "is a directory" in err


def test_a_resource_that_cannot_be_read_stops_preview_refresh(project) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    proj.ok("up", "--yes")
    proj.file("h.txt").unlink()
    proj.file("h.txt").mkdir()
    code, out, err = proj.run("preview", "--refresh")
    assert code == 1 and "Traceback" not in out + err
    first = one_error(err)
    assert "could not read 1 resource" in first and proj.urn("local:File", "h") in first


def test_a_missing_folder_for_dash_c_is_an_error(project) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    code, out, err = proj.run("-C", str(proj.root / "nonexistent"), "preview")
    assert code == 1 and "Traceback" not in out + err
    assert "nonexistent" in one_error(err)


@pytest.fixture
def broken_command():
    from stackwright.cli.main import cli

    @cli.command("explode")
    def explode() -> None:
        raise RuntimeError("kaboom")

    yield
    cli.commands.pop("explode")


def test_an_unexpected_exception_is_one_line_and_its_traceback_only_with_debug(
        broken_command, monkeypatch, capsys) -> None:
    from stackwright.cli.main import main

    for argv, traced in ((["stackwright", "explode"], False), (["stackwright", "--debug", "explode"], True)):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        err = click.unstyle(capsys.readouterr().err)
        assert ("Traceback" in err) is traced
        tail = err.strip().splitlines()[-2:]
        assert tail[0] == "error: internal error: RuntimeError: kaboom"
        assert "report it" in tail[1] and ("--debug" in tail[1]) is not traced


def test_every_exception_stackwright_defines_is_a_stackwright_error() -> None:
    importlib.import_module("stackwright.cli.main")  # the entry point registers its commands first
    found = []
    for module_info in pkgutil.walk_packages(stackwright.__path__, "stackwright."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    assert len(found) > 20
    assert [c for c in found if not issubclass(c, StackwrightError)] == []


def test_a_provider_error_during_apply_names_the_resource_and_its_line(project) -> None:
    proj: CliProject = project("""\
blocked = local.File("blocked", path="adir", content="x")  # declared here
after = local.File("after", path="after.txt", content=blocked.sha256)
""")
    proj.file("adir").mkdir()
    code, out, err = proj.run("up", "--yes")
    assert code == 1 and "Traceback" not in out + err
    failed = step_failure(out, err, proj.urn("local:File", "blocked"))
    assert failed.startswith(f"{proj.program}:{proj.line_of('# declared here')}: cannot write"), failed
    assert "1 failed; 1 skipped" in err


@pytest.mark.parametrize("args", [("bogus",), ("up", "--parallel", "0"), ("-C", "{file}", "preview"),
                                  ("history", "show", "x")])
def test_a_command_line_that_does_not_parse_is_two_lines(project, args) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    args = tuple(a.format(file=proj.program) for a in args)
    code, out, err = proj.run(*args)
    assert code == 2 and out == "" and "Traceback" not in err
    one_error(err)
    assert "--help`" in err


def test_a_project_where_none_can_be_made_is_an_error(project) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    code, out, err = proj.run("new", str(proj.program / "sub"))
    assert code == 1 and "Traceback" not in out + err
    assert "cannot create a project in" in one_error(err)


EXITS = {"exit(0)": "sys.exit(0)", "exit('message')": 'sys.exit("REVIEW_ACCOUNT is not set")',
         "GeneratorExit": "raise GeneratorExit()"}
"""What a callback may end with besides an exception: each fails its step as one would."""
SOURCES = {"in-process": 'random.Id("source", byte_length=4).hex',
           "event-loop": 'local.Command("source", create="echo hi").stdout'}
"""A value known only after apply, from a provider applied in-line or on the event loop."""


@pytest.mark.parametrize("ends", EXITS, ids=list(EXITS))
@pytest.mark.parametrize("source", SOURCES, ids=list(SOURCES))
def test_a_callback_that_exits_during_apply_is_a_recorded_failure(project, ends: str, source: str) -> None:
    proj: CliProject = project(f"""\
import sys
def stop(value):
    {EXITS[ends]}  # the exit
f = local.File("f", path="f.txt", content={SOURCES[source]}.apply(stop))
g = local.File("g", path="g.txt", content=f.sha256)
h = local.File("h", path="h.txt", content="independent")
""")
    code, out, err = proj.run("up", "--yes")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    failed = step_failure(out, err, proj.urn("local:File", "f"))
    assert f"__main__.py:{proj.line_of('# the exit')}: an Output callback" in failed
    assert {"exit(0)": "called exit(0)", "exit('message')": "called exit('REVIEW_ACCOUNT is not set')",
            "GeneratorExit": "raised GeneratorExit"}[ends] in failed
    assert "1 failed; 1 skipped" in err
    assert not proj.file("g.txt").exists() and proj.file("h.txt").read_text() == "independent"
    assert "failed" in proj.ok("history").splitlines()[-1]
    assert "failed (checkpoint 1)" in proj.ok("audit")


def test_an_export_callback_that_exits_fails_the_update_and_is_recorded(project) -> None:
    proj: CliProject = project("""\
import sys
f = local.File("f", path="f.txt", content=random.Id("source", byte_length=4).hex)
sw.export("sha", f.sha256.apply(lambda sha: sys.exit(0)))  # the exit
""")
    code, out, err = proj.run("up", "--yes")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert f"__main__.py:{proj.line_of('# the exit')}: an Output callback called exit(0)" in err
    assert proj.file("f.txt").exists()
    assert "failed" in proj.ok("history").splitlines()[-1]


def test_a_callback_that_exits_while_planning_is_one_error(project) -> None:
    proj: CliProject = project("""\
import sys
local.File("f", path="f.txt", content=sw.Output.from_value("x").apply(lambda x: sys.exit(0)))  # the exit
""")
    code, out, err = proj.run("preview")
    assert code == 1 and "Traceback" not in out + err
    assert f"__main__.py:{proj.line_of('# the exit')}" in one_error(err) and "called exit(0)" in err


@pytest.mark.parametrize("ends,said", [('sys.exit("no account")', "the program called exit('no account')"),
                                       ("raise GeneratorExit()", "the program raised GeneratorExit")])
def test_a_program_that_exits_is_one_error_naming_its_line(project, ends: str, said: str) -> None:
    proj: CliProject = project(f"""\
import sys
local.File("f", path="f.txt", content="x")
{ends}  # the exit
""")
    code, out, err = proj.run("preview")
    assert code == 1 and "Traceback" not in out + err
    assert f"__main__.py:{proj.line_of('# the exit')}: {said}" in one_error(err)


@pytest.mark.parametrize("call", ["pool.map(make, range(2))", "[pool.submit(contextvars.copy_context().run, make, 1)"
                                  ".result()]"], ids=["thread", "copied context"])
def test_declaring_from_a_thread_the_program_started_is_one_error_naming_the_line(project, call: str) -> None:
    """Threads do not inherit the program's context; one given it anyway may not
    declare either: declarations side by side would find their parents on a stack the
    threads share, in a different order each run."""
    proj: CliProject = project(f"""\
import concurrent.futures, contextvars
def make(n):
    return local.File(f"f{{n}}", path=f"f{{n}}.txt", content=str(n))  # in the thread
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    files = list({call})
""")
    code, out, err = proj.run("preview")
    assert code == 1 and "Traceback" not in out + err
    first = one_error(err)
    assert f"__main__.py:{proj.line_of('# in the thread')}: " in first
    assert "is not the thread that runs the program" in first and "do not inherit its context" in first
    assert "pool.map(fetch, items)" in err
