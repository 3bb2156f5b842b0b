"""`destroy --target` deletes part of a stack; the stack's outputs stay as recorded,
so that other stacks reading them (StackReference) keep working."""

from __future__ import annotations

import json

from cli.conftest import CliProject

PROGRAM = """\
kept = local.File("kept", path="kept.txt", content="kept")
gone = local.File("gone", path="gone.txt", content="gone")
token = random.Password("token", length=12)
sw.export("kept_path", kept.path)
sw.export("token", token.result)
"""


def test_a_targeted_destroy_keeps_the_stack_outputs(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    before = json.loads(proj.ok("outputs", "--json", "--show-secrets"))
    assert before["kept_path"] == "kept.txt" and len(before["token"]) == 12

    out = proj.ok("destroy", "--yes", "--target", "gone")
    assert "1 delete" in out and not proj.file("gone.txt").exists()
    assert json.loads(proj.ok("outputs", "--json", "--show-secrets")) == before
    assert json.loads(proj.ok("outputs", "--json"))["token"] == "[secret]"
    assert "token: [secret]" in proj.ok("history", "show", "2")
    stored = b"".join(path.read_bytes() for path in proj.db.parent.glob("state.db*"))
    assert before["token"].encode() not in stored  # still encrypted at rest


def test_a_whole_destroy_still_clears_the_outputs(project) -> None:
    proj: CliProject = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.ok("destroy", "--yes")
    assert json.loads(proj.ok("outputs", "--json")) == {}
