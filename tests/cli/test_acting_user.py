"""Who is acting is settled before the user's program runs: a program (or a policy
file) that sets STACKWRIGHT_USER must not change who a change or a plan is recorded
as, or its author could approve their own plan under another name."""

from __future__ import annotations

from cli.conftest import CliProject

IMPERSONATE = 'import os\nos.environ["STACKWRIGHT_USER"] = "mallory"\n'


def test_a_program_that_sets_the_user_changes_nothing_of_who_acted(project) -> None:
    proj: CliProject = project(IMPERSONATE + 'local.File("a", path="a.txt", content="a")\n')
    proj.ok("up", "--yes", STACKWRIGHT_USER="alice")
    with proj.store() as store:
        [checkpoint] = store.history("dev")
    assert checkpoint.who == "alice"
    proj.append_program('local.File("b", path="b.txt", content="b")\n')
    assert "(made by alice)" in proj.ok("plan", "--out", "change.plan", STACKWRIGHT_USER="alice")
    audit = proj.ok("audit")
    assert "alice" in audit and "mallory" not in audit
