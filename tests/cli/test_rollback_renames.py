"""rollback across a rename: a resource renamed since checkpoint N (its program gave
the old name as an alias) is the same object, rolled back under its current name; its
aliases, which only say how to find old names, are not something rollback changes; and
a rollback refused because it would delete a protected resource shows its preview first."""

from __future__ import annotations

from cli.conftest import CliProject

ORIGINAL = """\
data = local.File("data", path="data.txt", content="{content}")
local.File("user", path="user.txt", content=data.sha256)
"""
RENAMED = """\
data = local.File("data2", path="data.txt", content="{content}",
                  opts=sw.ResourceOptions(aliases=[sw.Alias(name="data")]))
local.File("user", path="user.txt", content=data.sha256)
"""


def _renamed_after_two_versions(project) -> CliProject:
    """Checkpoint 1: data = v1; 2: data = v2; 3: data renamed data2 (alias data)."""
    proj: CliProject = project(ORIGINAL.format(content="v1"))
    proj.ok("up", "--yes")
    proj.write_program(ORIGINAL.format(content="v2"))
    proj.ok("up", "--yes")
    proj.write_program(RENAMED.format(content="v2"))
    assert "local:File data2 (was data)" in proj.ok("up", "--yes")
    return proj


def test_a_rollback_across_a_rename_updates_the_object_under_its_current_name(project) -> None:
    proj = _renamed_after_two_versions(project)
    data2, user = proj.urn("local:File", "data2"), proj.urn("local:File", "user")
    shown = proj.ok("rollback", "1", "--yes")
    assert "~  local:File data2  update" in shown and '~ content: "v2" => "v1"' in shown, shown
    assert "create" not in shown and "delete" not in shown and "options:" not in shown, shown
    assert proj.file("data.txt").read_text() == "v1"
    listed = proj.ok("state", "ls")
    assert data2 in listed and user in listed and proj.urn("local:File", "data") + " " not in listed
    assert "depends on: " + data2 in proj.ok("state", "show", "user")
    # The program (v2, named data2, alias data) is the way forward: content only.
    forward = proj.ok("preview", "--diff")
    assert '~ content: "v1" => "v2"' in forward and "options:" not in forward, forward


def test_a_rollback_to_the_rename_changes_nothing(project) -> None:
    proj = _renamed_after_two_versions(project)
    shown = proj.ok("rollback", "3", "--yes")
    assert "options:" not in shown and "No changes." in shown, shown
    assert "No changes." in proj.ok("preview")


def test_a_rollback_refused_for_a_protected_resource_shows_its_preview_first(project) -> None:
    proj: CliProject = project(ORIGINAL.format(content="v1"))
    proj.ok("up", "--yes")
    proj.append_program('local.File("vault", path="vault.txt", content="keep",\n'
                        '           opts=sw.ResourceOptions(protect=True))\n')
    proj.ok("up", "--yes")
    before = proj.state_rows()
    code, out, err = proj.run("rollback", "1", "--yes")
    assert code == 1 and "Traceback" not in out + err
    assert "-  local:File vault  delete" in out + err, out + err
    assert "Resources: 1 to delete, 2 unchanged" in out + err
    assert "resource is protected; the plan would delete it" in err
    assert (out + err).index("local:File vault  delete") < (out + err).index("error:")
    assert proj.state_rows() == before and proj.file("vault.txt").read_text() == "keep"
    # preview refuses the same way, the plan first
    proj.write_program(ORIGINAL.format(content="v1"))
    code, out, err = proj.run("preview")
    assert code == 1 and "-  local:File vault  delete" in out and "resource is protected" in err
