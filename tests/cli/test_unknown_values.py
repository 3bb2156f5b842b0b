"""Unknown values are first-class: outputs a failed apply left unknown, and references
to other stacks' outputs that do not exist yet."""

from __future__ import annotations

import json

from cli.conftest import CliProject
from cli.test_failures import PROGRAM, one_error


def test_outputs_a_failed_apply_left_unknown_show_as_unknown(project) -> None:
    proj: CliProject = project(PROGRAM)
    code, _, _ = proj.run("up", "--yes")
    assert code == 1
    text = proj.ok("outputs")
    assert "content: (unknown)" in text
    assert 'both: {"sha": "(unknown)", "fixed": "x"}' in text
    assert "h: h.txt" in text
    assert json.loads(proj.ok("outputs", "--json")) == {
        "content": {"$unknown": True}, "both": {"fixed": "x", "sha": {"$unknown": True}}, "h": "h.txt"}
    assert json.loads(proj.ok("outputs", "--json", "--show-secrets"))["content"] == {"$unknown": True}
    shown = proj.ok("history", "show", "1")
    assert "outputs:" in shown and "content: (unknown)" in shown


REFERENCING = """\
if sw.get_stack() == "net":
    ok = sw.Config().get_bool("ok")
    cmd = local.Command("cmd", create="echo vpc-1")
    sw.export("vpc_id", cmd.stdout.apply(lambda s: s if ok else int(s)))  # fails unless ok
else:
    net = sw.StackReference("net")
    local.File("kube", path="kube.txt", content=sw.fmt("in {}", net.output("vpc_id")))  # uses it
"""


def _referencing(project) -> CliProject:
    proj: CliProject = project(REFERENCING)
    proj.write_config({}, stack="net")
    return proj


def test_a_reference_to_a_stack_that_does_not_exist_fails_the_preview_and_the_apply(project) -> None:
    """Not taken for a stack not applied yet: the name may be misspelt, and no `up`
    would ever make it known."""
    proj = _referencing(project)
    proj.ok("stack", "init", "prod")
    proj.ok("stack", "select", "dev")
    for command in (("preview",), ("up", "--yes")):
        first = one_error(proj.fails(*command))
        assert "stack proj/net does not exist" in first
        assert f"__main__.py:{proj.line_of('sw.StackReference(')}" in first
        assert "hint: stacks of project proj: dev, prod" in proj.fails(*command)
    assert not proj.file("kube.txt").exists()


def test_a_reference_to_a_stack_never_applied_is_unknown_at_preview_and_refused_at_apply(project) -> None:
    proj = _referencing(project)
    proj.ok("stack", "init", "net")
    proj.ok("stack", "select", "dev")
    assert "(known after apply)" in proj.ok("preview", "--diff")
    code, out, err = proj.run("up", "--yes")
    assert code == 1 and "Traceback" not in out + err
    first = one_error(err)
    assert "stack proj/net has not been applied" in first and "'vpc_id'" in first
    assert f"__main__.py:{proj.line_of('# uses it')}" in first
    assert not proj.file("kube.txt").exists()
    assert "kube" not in proj.ok("state", "ls")
    proj.ok("plan", "--out", "dev.plan")
    code, out, err = proj.run("apply", "dev.plan", "--yes")
    assert code == 1 and "Traceback" not in out + err
    assert "stack proj/net has not been applied" in one_error(err)
    assert not proj.file("kube.txt").exists()


def test_a_reference_to_an_unknown_output_is_unknown_at_preview_and_refused_at_apply(project) -> None:
    proj = _referencing(project)
    proj.ok("stack", "init", "net")
    code, _, err = proj.run("up", "--yes", "-s", "net")
    assert code == 1
    failed = [line for line in err.splitlines() if "failed: export output vpc_id" in line]
    assert len(failed) == 1 and f"__main__.py:{proj.line_of('# fails unless ok')}" in failed[0]
    assert json.loads(proj.ok("outputs", "--json", "-s", "net")) == {"vpc_id": {"$unknown": True}}
    assert "(known after apply)" in proj.ok("preview", "--diff", "-s", "dev")
    code, out, err = proj.run("up", "--yes", "-s", "dev")
    assert code == 1 and "Traceback" not in out + err
    first = one_error(err)
    assert "output 'vpc_id' of stack proj/net is unknown" in first
    assert not proj.file("kube.txt").exists()
    proj.write_config({"ok": True}, stack="net")
    proj.ok("up", "--yes", "-s", "net")
    proj.ok("up", "--yes", "-s", "dev")
    assert proj.file("kube.txt").read_text() == "in vpc-1"
