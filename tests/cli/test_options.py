"""Changing only a resource's options is a change: previewed, recorded, no provider call."""

from __future__ import annotations

import json

from cli.conftest import CliProject

PROGRAM = """\
keep = local.File("keep", path="keep.txt", content="precious"{opts})
other = local.File("other", path="other.txt", content="x"{other_opts})
"""


def program(opts: str = "", other_opts: str = "") -> str:
    return PROGRAM.format(opts=opts, other_opts=other_opts)


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_adding_protect_is_previewed_recorded_and_then_refuses_delete(project) -> None:
    proj: CliProject = project(program())
    proj.ok("up", "--yes")
    inode = proj.file("keep.txt").stat().st_ino
    mtime = proj.file("keep.txt").stat().st_mtime_ns

    proj.write_program(program(opts=", opts=sw.ResourceOptions(protect=True)"))
    out = proj.ok("preview")
    assert "~  local:File keep  update options" in out
    assert "options: protect false => true" in out
    assert last_line(out) == "Resources: 1 to update options, 1 unchanged"
    steps = json.loads(proj.ok("preview", "--format", "json"))["steps"]
    keep = next(s for s in steps if s["urn"].endswith("keep"))
    assert keep["options"] == [{"path": "protect", "kind": "update", "old": False, "new": True}]
    assert "update options" in proj.ok("preview", "--format", "markdown")

    out = proj.ok("up", "--yes")
    assert "1 update options" in out
    assert last_line(proj.ok("preview")).startswith("No changes.")
    assert "flags: protect" in proj.ok("state", "show", proj.urn("local:File", "keep"))
    assert "update options" in proj.ok("history")
    assert (proj.file("keep.txt").stat().st_ino, proj.file("keep.txt").stat().st_mtime_ns) == (inode, mtime)

    assert "resource is protected; the plan would delete it" in proj.fails("destroy", "--yes")
    assert proj.file("keep.txt").read_text() == "precious"


def test_removing_protect_as_the_hint_says_lets_destroy_proceed(project) -> None:
    proj: CliProject = project(program(opts=", opts=sw.ResourceOptions(protect=True)"))
    proj.ok("up", "--yes")
    assert "the plan would delete it" in proj.fails("destroy", "--yes")

    proj.write_program(program())
    assert "options: protect true => false" in proj.ok("preview")
    proj.ok("up", "--yes")
    proj.ok("destroy", "--yes")
    assert not proj.file("keep.txt").exists()


def edited(project, shown: str, **opts: str) -> CliProject:
    """PROGRAM applied, then given ``opts`` and applied again, once the preview showed ``shown``."""
    proj: CliProject = project(program())
    proj.ok("up", "--yes")
    proj.write_program(program(**opts))
    assert shown in proj.ok("preview")
    proj.ok("up", "--yes")
    return proj


def test_retain_on_delete_added_later_keeps_the_file(project) -> None:
    proj = edited(project, "options: retain_on_delete false => true",
                  opts=", opts=sw.ResourceOptions(retain_on_delete=True)")
    proj.ok("destroy", "--yes")
    assert proj.file("keep.txt").read_text() == "precious"
    assert not proj.file("other.txt").exists()


def test_depends_on_added_later_is_recorded(project) -> None:
    proj = edited(project, "options: dependencies [] => [keep]",
                  other_opts=", opts=sw.ResourceOptions(depends_on=[keep])")
    assert "keep" in proj.ok("state", "show", proj.urn("local:File", "other"))
    assert last_line(proj.ok("preview")).startswith("No changes.")


def test_ignore_changes_delete_before_replace_and_aliases_alone_are_recorded(project) -> None:
    proj: CliProject = project(program())
    proj.ok("up", "--yes")
    mtime = proj.file("keep.txt").stat().st_mtime_ns
    for opts, shown in [("ignore_changes=['content']", "options: ignore_changes [] => [content]"),
                        ("delete_before_replace=True", "options: delete_before_replace false => true"),
                        ("aliases=[sw.Alias(name='older')]", "options: aliases [] => [older]")]:
        proj.write_program(program(opts=f", opts=sw.ResourceOptions({opts})"))
        out = proj.ok("preview")
        assert shown in out and last_line(out) == "Resources: 1 to update options, 1 unchanged", out
        proj.ok("up", "--yes")
        assert last_line(proj.ok("preview")).startswith("No changes."), opts
    assert proj.file("keep.txt").stat().st_mtime_ns == mtime
    assert proj.ok("history").count("update options") == 3


def test_removing_protect_is_counted_as_update_options_in_the_plan_file_and_the_audit(project) -> None:
    """Plan.counts() feeds the plan file's summary (for reviewers), the audit events and
    the web view's pending plans: an options-only change is `update options` there, as in
    the preview and the history, never `same`."""
    proj: CliProject = project(program(opts=", opts=sw.ResourceOptions(protect=True)"))
    proj.ok("up", "--yes")
    proj.write_program(program())
    proj.ok("plan", "--out", "unprotect.json")
    assert json.loads(proj.file("unprotect.json").read_text())["summary"] == {"update options": 1, "same": 1}
    assert "1 same, 1 update options -> " in last_line(proj.ok("audit"))
    proj.ok("up", "--yes")
    events = json.loads(proj.ok("audit", "--json"))
    assert [(e["kind"], e["data"]["counts"]) for e in events[-2:]] == [
        ("plan", {"update options": 1, "same": 1}), ("up", {"update options": 1, "same": 1})]
    proj.write_program(program(opts=", opts=sw.ResourceOptions(protect=True)"))
    assert json.loads(proj.ok("preview", "--format", "json"))["summary"] == {"update options": 1, "same": 1}
    row = next(line for line in proj.ok("preview", "--format", "markdown").splitlines() if "| 0 | 1 | 0 | 0 |" in line)
    assert "| 0 | 1 | 0 | 0 | 1 |" in row, "Update counts it; Unchanged does not"


def test_state_show_shows_every_recorded_option(project) -> None:
    proj: CliProject = project(program(opts=", opts=sw.ResourceOptions(ignore_changes=['content'], "
                                            "delete_before_replace=True, aliases=[sw.Alias(name='older')], "
                                            "protect=True, retain_on_delete=True)",
                                       other_opts=", opts=sw.ResourceOptions(depends_on=[keep])"))
    proj.ok("up", "--yes")
    out = proj.ok("state", "show", proj.urn("local:File", "keep"))
    assert "  flags: protect, retain_on_delete, delete_before_replace\n" in out
    assert "  ignore_changes: content\n" in out
    assert f"  aliases: {proj.urn('local:File', 'older')}\n" in out
    other = proj.ok("state", "show", proj.urn("local:File", "other"))
    assert f"  depends on: {proj.urn('local:File', 'keep')}\n" in other
    assert "flags" not in other and "ignore_changes" not in other and "aliases" not in other
