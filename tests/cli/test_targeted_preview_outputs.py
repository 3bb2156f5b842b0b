"""`preview --target`: the stack outputs that read only resources the target leaves
alone show their recorded values, as `up --target` records them, not "known after
apply"."""

from __future__ import annotations

import json

from cli.conftest import CliProject

PROGRAM = """\
config = sw.Config()
index = local.File("index", path="index.html", content=config.require_str("greeting"))
kept = local.File("kept", path="kept.txt", content=config.require_str("kept"))
token = random.Password("token", length=12)
sw.export("index_content", index.content)
sw.export("kept_content", kept.content)
sw.export("token", token.result)
"""


def test_a_targeted_preview_shows_the_recorded_outputs_of_resources_left_alone(project) -> None:
    proj: CliProject = project(PROGRAM, {"greeting": "hello", "kept": "one"})
    proj.ok("up", "--yes")
    before = json.loads(proj.ok("outputs", "--json", "--show-secrets"))
    proj.write_config({"greeting": "bonjour", "kept": "two"})

    out = proj.ok("preview", "--target", "index")
    assert 'index_content: "hello" => "bonjour"' in out
    assert "known after apply" not in out and "kept_content" not in out and "token" not in out
    assert before["token"] not in out

    proj.ok("up", "--yes", "--target", "index")
    after = json.loads(proj.ok("outputs", "--json", "--show-secrets"))
    assert after == {**before, "index_content": "bonjour"}
    assert 'kept_content: "one" => "two"' in proj.ok("preview")
