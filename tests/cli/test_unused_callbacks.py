"""An ``.apply`` callback whose result nothing uses (no resource input, no stack output,
no other Output) still runs, once, as soon as its inputs are known: at preview when
they are known then, else during the apply. What it raises fails the command, located
at the user's line, like any other callback's error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cli.conftest import CliProject, cli_env, run_cli
from cli.test_failures import one_error

VALIDATED_CONFIG = """
config = sw.Config()
local.File("site", path="out/site.txt", content="hello")
sw.Output.from_value(config.require_str("port")).apply(lambda p: int(p))  # validates the port
"""


def test_a_callback_nothing_uses_that_raises_on_config_fails_preview_and_up(project) -> None:
    proj: CliProject = project(VALIDATED_CONFIG, {"port": "eighty"})
    line = proj.line_of("# validates the port")
    for command in (("preview",), ("up", "--yes")):
        first = one_error(proj.fails(*command))
        assert f"__main__.py:{line}" in first, first
        assert "raised ValueError: invalid literal for int() with base 10: 'eighty'" in first
    assert not proj.file("out/site.txt").exists()
    assert "site" not in proj.ok("state", "ls")
    assert proj.attempts() == 1, "the failed `up` is audited as an attempt"
    proj.write_config({"port": "80"})
    proj.ok("up", "--yes")
    assert proj.file("out/site.txt").read_text() == "hello"


def test_a_callback_nothing_uses_given_a_secret_fails_without_showing_it(project) -> None:
    proj: CliProject = project("""
        local.File("site", path="out/site.txt", content="hello")
        sw.Config().require_secret("dbpass").apply(lambda p: int(p))  # checks the password
    """)
    proj.ok("config", "set", "--secret", "dbpass", "hunter2")
    for command in (("preview",), ("up", "--yes")):
        err = proj.fails(*command)
        assert f"__main__.py:{proj.line_of('# checks the password')}" in one_error(err)
        assert "raised ValueError (its message is not shown" in err and "hunter2" not in err
    assert not proj.file("out/site.txt").exists()


ON_A_RESOURCE_OUTPUT = """
cmd = local.Command("cmd", create="echo hello")
h = local.File("h", path="h.txt", content="independent")
cmd.stdout.apply(lambda s: int(s))  # checks the output
"""


def test_a_callback_nothing_uses_that_raises_at_apply_fails_the_update_and_is_recorded(project) -> None:
    proj: CliProject = project(ON_A_RESOURCE_OUTPUT)
    line = proj.line_of("# checks the output")
    code, out, err = proj.run("up", "--yes")
    assert code == 1 and "Traceback" not in out + err
    failed = [l for l in err.splitlines() if "failed: " in l]
    assert len(failed) == 1, err
    assert f"__main__.py:{line}" in failed[0] and "raised ValueError: invalid literal for int()" in failed[0]
    assert "2 create done, 1 failed" in err
    assert proj.file("h.txt").read_text() == "independent"
    listed = proj.ok("state", "ls")
    assert proj.urn("local:Command", "cmd") in listed and proj.urn("local:File", "h") in listed
    assert "failed" in proj.ok("history")
    shown = proj.ok("history", "show", "1")
    assert f"FAILED: {failed[0].split(': ', 2)[2]}" in shown
    # The output it checks is known from now on: the next preview runs the callback.
    first = one_error(proj.fails("preview"))
    assert f"__main__.py:{line}" in first and "ValueError" in first


def test_run_up_reports_a_callback_nothing_uses_that_raised_at_apply(tmp_path: Path) -> None:
    from workflow.test_workspace_inprocess import write_workspace

    root = write_workspace(tmp_path / "ws")  # beta/{stack} reads alpha/{stack}
    program = root / "alpha" / "__main__.py"
    program.write_text(program.read_text() + ON_A_RESOURCE_OUTPUT)
    line = program.read_text().splitlines().index(ON_A_RESOURCE_OUTPUT.strip().splitlines()[-1]) + 1
    code, out, err = run_cli(root, "run", "up", "--all", "--yes", env=cli_env())
    assert code == 1 and "Traceback" not in out + err
    failed = [l for l in (out + err).splitlines() if "failed: " in l and "ValueError" in l]
    assert len(failed) == 2, out + err  # alpha/dev and alpha/prod
    assert all(f"alpha/__main__.py:{line}" in l for l in failed), failed
    assert (root / "alpha" / "out" / "dev.txt").exists(), "what was applied stays"


COUNTED = """
from pathlib import Path

RUNS = Path(__file__).parent / "runs.txt"

def note(tag):
    def record(value):
        with RUNS.open("a") as runs:
            runs.write(tag + "\\n")
        return value
    return record

cmd = local.Command("cmd", create="echo hello")
cmd.stdout.apply(note("on output"))
sw.Output.from_value(sw.Config().get_str("greeting", "hi")).apply(note("on config"))
used = cmd.stdout.apply(note("used"))
local.File("f", path=sw.fmt("{}.txt", sw.Config().get_str("name", "f")), content=used)
used.apply(note("on used"))
"""


def runs(proj: CliProject) -> Counter[str]:
    """How many times each callback ran since the last call."""
    path = proj.file("runs.txt")
    if not path.exists():
        return Counter()
    counted = Counter(path.read_text().splitlines())
    path.unlink()
    return counted


def test_callbacks_nothing_uses_run_once_per_command_and_used_ones_no_more_than_before(project) -> None:
    """``used`` runs once when the File's input is resolved (at apply when the command
    is new, at planning once it is recorded); the callback made of it reuses that run."""
    proj: CliProject = project(COUNTED)
    once = {"on output": 1, "on config": 1, "used": 1, "on used": 1}
    proj.ok("up", "--yes")  # creates: the command's output is known only after apply
    assert runs(proj) == once
    proj.ok("up", "--yes")  # nothing to change: everything is known when planning
    assert runs(proj) == once
    proj.ok("preview")
    assert runs(proj) == once
    proj.write_config({"name": "g"})
    proj.ok("up", "--yes")  # a replacement of f, planned with the command's output known
    assert runs(proj) == once
