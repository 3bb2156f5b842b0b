"""A value an `.apply` callback gives an input is checked against the input's type
through the real command: a preview that knows it fails and nothing is applied; an
`up` that learns it fails that step before any call, and a resource replaced
delete-first keeps its object."""

from __future__ import annotations

import json

from cli.conftest import CliProject, project  # noqa: F401  (`project` is a fixture)

PROGRAM = """\
from stackwright.providers import synthetic
src = synthetic.Thing("src", label="{src}")
synthetic.Thing("t", label={label}, opts=sw.ResourceOptions(delete_before_replace=True))  # t
"""


def calls(proj: CliProject) -> list[tuple[str, str]]:
    """What the pretend cloud did, in order: (operation, resource name)."""
    lines = proj.file("calls.log").read_text().splitlines() if proj.file("calls.log").exists() else []
    return [(entry["op"], entry["urn"].rsplit("::", 1)[1]) for entry in map(json.loads, lines)]


def test_a_wrong_type_from_a_callback_fails_the_preview_or_its_step_and_deletes_nothing(project) -> None:
    proj = project(PROGRAM.format(src="a", label="src.id"), {"synthetic": {"call_log": "calls.log"}})
    proj.ok("up", "--yes")
    line = proj.line_of("# t")

    proj.write_program(PROGRAM.format(src="a", label="src.id.apply(lambda v: 5)"))
    for command in (("preview", "--diff"), ("up", "--yes")):
        err = proj.fails(*command)
        assert f"error: {proj.program}:{line}: dev::proj::synthetic:Thing::t.label: expected str, got int 5" in err
        assert "hint: label is given an Output" in err
    assert [op for op, _ in calls(proj)] == ["create", "create"]

    # Known only once src is replaced: the step fails before t's delete, t stays.
    proj.write_program(PROGRAM.format(src="b", label="src.id.apply(lambda v: 5)"))
    code, out, err = proj.run("up", "--yes")
    assert code == 1
    [failed] = [text for text in (out + err).splitlines() if "synthetic:Thing t  failed" in text]
    assert failed.startswith("  delete-replaced  synthetic:Thing t  failed (")
    assert failed.endswith(f"s): {proj.program}:{line}: label: expected str, got int 5 "
                           "(found before its delete: the object is kept)")
    assert calls(proj)[2:] == [("create", "src")]
    assert "dev::proj::synthetic:Thing::t" in proj.ok("state", "ls")
