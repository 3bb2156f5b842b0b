"""Resource options of the wrong type are errors at declaration naming the option and
the line. They used to be taken as given: `ignore_changes="content"` ignored the
properties "c", "o", "n"..., `protect="yes"` was recorded as "yes", and
`depends_on=vpc` ended in "the program raised TypeError"."""

from __future__ import annotations

import pytest

from cli.conftest import CliProject

BASE = 'a = local.File("a", path="a.txt", content="a")\n'
CASES = [
    ('ignore_changes="content"', "ignore_changes must be a list of property names, not str 'content'",
     "ignore_changes=['content']"),
    ("ignore_changes=[1]", "ignore_changes must be a list of property names, not a list holding int 1", None),
    ('protect="yes"', "protect must be True or False, not str 'yes'", None),
    ('retain_on_delete="no"', "retain_on_delete must be True or False, not str 'no'", None),
    ("delete_before_replace=1", "delete_before_replace must be True or False, not int 1", None),
    ("depends_on=a", "depends_on must be a list of resources, not File", "depends_on=[vpc, subnet]"),
    ('depends_on=["a"]', "depends_on must be a list of resources, not a list holding str 'a'",
     "not their names"),
    ('aliases="b"', "aliases must be a list of sw.Alias or former URNs, not str 'b'", None),
]


@pytest.mark.parametrize(("option", "message", "hint"), CASES)
def test_an_option_of_the_wrong_type_is_an_error_naming_it_and_the_line(
        project, option: str, message: str, hint: str | None) -> None:
    proj: CliProject = project(BASE)
    proj.ok("up", "--yes")
    before = proj.db_bytes()
    proj.write_program(BASE + f'b = local.File("b", path="b.txt", content="b",\n'
                              f'               opts=sw.ResourceOptions({option}))  # here\n')
    err = proj.fails("preview")
    first = err.strip().splitlines()[0]
    assert first.startswith(f"error: {proj.program}:{proj.line_of('# here')}: "), err
    assert first.endswith(message), err
    if hint:
        assert hint in err
    assert proj.db_bytes() == before


def test_options_of_the_right_types_still_work(project) -> None:
    proj: CliProject = project(BASE + 'b = local.File("b", path="b.txt", content="b", opts=sw.ResourceOptions(\n'
                                      '    protect=True, ignore_changes=("content",), depends_on=(a,), '
                                      'aliases=[sw.Alias(name="old")]))\n')
    proj.ok("up", "--yes")
    assert "flags: protect" in proj.ok("state", "show", proj.urn("local:File", "b"))


def test_a_flag_given_as_none_is_false_as_in_pulumi(project) -> None:
    proj: CliProject = project(BASE)
    proj.ok("up", "--yes")
    proj.write_program(BASE.replace(")\n", ', opts=sw.ResourceOptions(\n'
                                    '    protect=sw.Config().get_bool("protect"), retain_on_delete=None))\n'))
    assert proj.ok("preview").strip().splitlines()[-1].startswith("No changes.")
