"""An alias given as a string is a former URN; a bare name there used to be ignored,
so a rename meant to keep the object deleted and re-created it instead."""

from __future__ import annotations

from cli.conftest import CliProject


def test_an_alias_string_that_is_not_a_urn_is_an_error_naming_the_line(project) -> None:
    proj: CliProject = project('b = local.File("b", path="b.txt", content="b")\n')
    proj.ok("up", "--yes")
    proj.write_program('b = local.File("b2", path="b.txt", content="b",\n'
                       '                 opts=sw.ResourceOptions(aliases=["b"]))  # renamed\n')
    before = proj.state_rows()
    for command in (("preview",), ("up", "--yes")):
        err = proj.fails(*command)
        assert f"__main__.py:{proj.line_of('b = local.File')}" in err
        assert "alias 'b' is not a URN" in err and "sw.Alias(name='b')" in err
    assert proj.state_rows() == before and proj.file("b.txt").read_text() == "b"
    assert proj.attempts() == 1, "the refused `up`, audited"


def test_a_full_urn_alias_still_renames(project) -> None:
    proj: CliProject = project('b = local.File("b", path="b.txt", content="b")\n')
    proj.ok("up", "--yes")
    proj.write_program('b = local.File("b2", path="b.txt", content="b",\n'
                       f'                 opts=sw.ResourceOptions(aliases=["{proj.urn("local:File", "b")}"]))\n')
    assert "local:File b2 (was b)" in proj.ok("preview")
    proj.ok("up", "--yes")
    assert proj.ok("state", "ls").count("local:File::b2") == 1
