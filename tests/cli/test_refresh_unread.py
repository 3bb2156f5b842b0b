"""A refresh that could not read some resources says so in its last line, instead of
claiming "no drift" for resources it never saw."""

from __future__ import annotations

from cli.conftest import CliProject


def test_resources_that_could_not_be_read_are_counted_not_called_drift_free(project) -> None:
    proj: CliProject = project('a = local.File("a", path="a.txt", content="a")\n'
                               'b = local.File("b", path="b.txt", content="b")\n')
    proj.ok("up", "--yes")
    proj.file("a.txt").unlink()
    proj.file("a.txt").mkdir()  # cannot be read as a file
    code, out, err = proj.run("refresh")
    assert code == 1 and "Traceback" not in out + err
    lines = out.rstrip().splitlines()
    assert lines[0].startswith(f"  ! {proj.urn('local:File', 'a')}: ")
    assert lines[-1] == "Checked 1 of 2 resources (1 could not be read): no drift in those read."


def test_drift_beside_an_unreadable_resource_is_still_counted(project) -> None:
    proj: CliProject = project('a = local.File("a", path="a.txt", content="a")\n'
                               'b = local.File("b", path="b.txt", content="b")\n')
    proj.ok("up", "--yes")
    proj.file("a.txt").unlink()
    proj.file("a.txt").mkdir()
    proj.file("b.txt").write_text("edited")
    code, out, _ = proj.run("refresh")
    assert code == 1
    assert out.strip().splitlines()[-1] == "Checked 1 of 2 resources (1 could not be read): 1 drifted."


def test_a_clean_refresh_keeps_its_short_line(project) -> None:
    proj: CliProject = project('a = local.File("a", path="a.txt", content="a")\n')
    proj.ok("up", "--yes")
    assert proj.ok("refresh").strip().splitlines()[-1] == "Checked 1 resources: no drift."
