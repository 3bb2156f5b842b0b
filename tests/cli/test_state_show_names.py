"""`state show` takes what `--target` takes: a URN or a name that names one resource."""

from __future__ import annotations

from cli.conftest import CliProject
from cli.test_failures import one_error

PROGRAM = """\
class Box(sw.Component):
    def __init__(self, name):
        super().__init__(name)
        local.File("msg", path=f"{name}.txt", content=name)
Box("a")
Box("b")
local.File("solo", path="solo.txt", content="y")
"""


def test_state_show_takes_a_urn_or_an_unambiguous_name(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    solo = proj.urn("local:File", "solo")
    for name in (solo, "solo", "local:File::solo"):
        assert proj.ok("state", "show", name).startswith(f"{solo}\n  type: local:File\n")
    assert proj.ok("state", "show", "a$msg").startswith(proj.urn("local:File", "a$msg") + "\n")


def test_state_show_of_an_ambiguous_name_lists_what_it_names(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    first = one_error(proj.fails("state", "show", "msg"))
    assert first.startswith("error: 'msg' names 2 resources: "), first
    assert proj.urn("local:File", "a$msg") in first and proj.urn("local:File", "b$msg") in first
    assert "no recorded resource nothing" in one_error(proj.fails("state", "show", "nothing"))
