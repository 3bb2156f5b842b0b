"""An output a failed apply left unknown is recorded as unknown; the next preview shows
its old value as "(unknown)", as `outputs` does, not as "(known after apply)", which
means a value the coming apply will compute."""

from __future__ import annotations

from cli.conftest import CliProject

PROGRAM = """\
cmd = local.Command("cmd", create="echo hello")
f = local.File("f", path="f.txt", content=cmd.stdout.apply(lambda s: {fix}))  # the bug
sw.export("content", f.content)
sw.export("both", {{"sha": f.sha256, "fixed": "x"}})
"""


def test_the_next_preview_shows_recorded_unknown_outputs_as_unknown(project) -> None:
    proj: CliProject = project(PROGRAM.format(fix="str(int(s))"))
    assert proj.run("up", "--yes")[0] == 1
    proj.write_program(PROGRAM.format(fix="s.strip()"))
    out = proj.ok("preview")
    assert '    content: (unknown) => "hello"' in out
    markdown = proj.ok("preview", "--format", "markdown")
    assert "| `content` | *(unknown)* | `\"hello\"` |" in markdown
    assert "    content: (unknown) => null" in proj.ok("destroy", "--yes")
