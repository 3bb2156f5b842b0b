"""The change gateway: every command that changes a stack passes the same checks, in the
same order, and a protected environment changes only through an approved saved plan.

Most tests call ``gateway.change`` in this process (what every CLI command and `run up`
call); a few run the real command to check what a person sees.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.conftest import CliProject
from stackwright.errors import PlanError, StateError
from stackwright.operations.scaffold import init_stack
from stackwright.operations.session import StackSession, open_session
from stackwright.program.project import load_project
from stackwright.state.records import LockInfo
from stackwright.workflow import approvals
from stackwright.workflow.gate import GateClosed
from stackwright.workflow.gateway import ChangeRequest, ProtectedEnvironment, Prompt, attempted, change
from stackwright.workflow.pause import prepare_pause, prepare_resume
from stackwright.workflow.policies import PolicyError

PROGRAM = """\
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
local.File("site", path=sw.fmt("out/{}/site.txt", sw.get_stack()), content=config.require_str("greeting"))
if config.get_bool("extra"):
    local.File("extra", path=sw.fmt("out/{}/extra.txt", sw.get_stack()), content="more",
               opts=sw.ResourceOptions(protect=config.get_bool("protect_extra") or False))
"""

NO_DELETES = """\
import stackwright as sw

@sw.policy(name="no-deletes")
def no_deletes(plan):
    for step in plan.steps:
        if step.op.value == "delete":
            yield sw.Violation("deleting is not allowed here", urn=step.urn)
"""

SITE = "production::proj::local:File::site"
REASON = "the site is down"


def settings(root: Path, **production: Any) -> None:
    """stackwright.yaml with these settings for environment production."""
    envs = {"production": {"pause": {"greeting": "paused"}, **production}, "staging": {}}
    (root / "stackwright.yaml").write_text(yaml.safe_dump({"name": "proj", "main": "__main__.py",
                                                           "environments": envs}))


def configure(root: Path, stack: str = "production", **config: Any) -> None:
    (root / "stacks" / f"{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Project ``proj``; stack production applied twice (checkpoints 1 and 2, greetings
    "one" then "two"), then its environment made protected."""
    root = tmp_path / "proj"
    (root / "stacks").mkdir(parents=True)
    (root / "__main__.py").write_text(PROGRAM)
    settings(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("STACKWRIGHT_USER", "tester")
    project = load_project(root)
    for stack in ("production", "staging"):
        configure(root, stack, greeting="one")
        init_stack(project, stack)
    apply(root, ChangeRequest("up"))
    configure(root, greeting="two")
    apply(root, ChangeRequest("up"))
    settings(root, protected=True, required_approvals=1)
    return root


def session(root: Path, stack: str = "production") -> StackSession:
    return open_session(load_project(root), stack, "tester")


def apply(root: Path, request: ChangeRequest, answer: bool = True, stack: str = "production") -> Any:
    opened = session(root, stack)
    try:
        return change(opened, request, confirm=lambda prompt: answer)
    finally:
        opened.close()


def recorded(root: Path, stack: str = "production") -> tuple[int, int, str, str]:
    """The stack's state serial and checkpoints, its file on disk, and its stack file."""
    opened = session(root, stack)
    try:
        serial, checkpoints = opened.store.snapshot(stack).serial, len(opened.store.history(stack))
    finally:
        opened.close()
    site = root / "out" / stack / "site.txt"
    return (serial, checkpoints, site.read_text() if site.exists() else "",
            (root / "stacks" / f"{stack}.yaml").read_text())


def events(root: Path, stack: str = "production") -> list[approvals.AuditRow]:
    opened = session(root, stack)
    try:
        return approvals.audit(opened.store, stack)
    finally:
        opened.close()


def pause_and_resume(root: Path, kind: str) -> Any:
    """Prepare ``kind`` (pause or resume) of production and pass it through the gateway."""
    project = load_project(root)
    edit = (prepare_pause if kind == "pause" else prepare_resume)(project, "production", "tester")
    return change(None, ChangeRequest(edit.action, edit=edit), confirm=lambda prompt: True)


REQUESTS: dict[str, ChangeRequest] = {
    "up": ChangeRequest("up"),
    "destroy": ChangeRequest("destroy"),
    "rollback": ChangeRequest("rollback", checkpoint=1),
    "import": ChangeRequest("import", resource=("local:File", "adopted", "out/production/site.txt")),
    "refresh": ChangeRequest("refresh"),
    "state-rm": ChangeRequest("state-rm", urn=SITE),
}


# --- protected means protected -----------------------------------------------------------


@pytest.mark.parametrize("kind", [*REQUESTS, "pause", "resume"])
def test_every_changing_kind_is_refused_in_a_protected_environment(root: Path, kind: str) -> None:
    if kind == "resume":
        settings(root)
        pause_and_resume(root, "pause")
        settings(root, protected=True, required_approvals=1)
    before = recorded(root)
    with pytest.raises(ProtectedEnvironment) as caught:
        if kind in REQUESTS:
            apply(root, REQUESTS[kind])
        else:
            pause_and_resume(root, kind)
    message = str(caught.value)
    assert "\n" not in message and caught.value.hint is None, "one line"
    assert "environment 'production' is protected" in message
    assert "stackwright plan --out FILE" in message and "stackwright apply FILE" in message
    assert "--emergency" not in message, "not offered where the environment does not allow it"
    assert recorded(root) == before, "nothing changed, not even the stack file"
    [attempt] = [row for row in events(root) if row.kind == "attempt"]
    assert (attempt.who, attempt.data["stage"], attempt.data["error"]) == ("tester", "protection", message)
    assert attempt.data["command"] == {"state-rm": "state rm", "refresh": "refresh --yes", "pause": "env pause",
                                       "resume": "env resume"}.get(kind, kind)


def test_a_failure_is_not_recorded_for_a_stack_that_does_not_exist(root: Path) -> None:
    """A change of a stack that does not exist, and that it would not create, writes
    nothing: no stack, no event. (One that would create it, `apply` of a plan made for a
    new stack or `run up` of a stack the workspace lists, records its attempt under the
    stack's name, still creating no stack: see test_workspace.py and the `run up` tests
    below.)"""
    opened = open_session(load_project(root), "ghost", "tester", may_be_new=True)
    try:
        with pytest.raises(PlanError, match="refused"), attempted(opened, ChangeRequest("apply")):
            raise PlanError("refused")
        assert not opened.store.stack_exists("ghost") and opened.store.events("ghost") == []
    finally:
        opened.close()


def test_a_plan_that_changes_nothing_is_refused_too(root: Path) -> None:
    with pytest.raises(ProtectedEnvironment):
        apply(root, ChangeRequest("up"))


def test_emergency_needs_the_environment_to_allow_it(root: Path) -> None:
    configure(root, greeting="three")
    before = recorded(root)
    with pytest.raises(ProtectedEnvironment, match="does not allow emergency changes"):
        apply(root, ChangeRequest("up", emergency=REASON))
    assert recorded(root) == before


@pytest.mark.parametrize("kind", ["up", "destroy", "rollback", "state-rm", "refresh"])
def test_an_allowed_emergency_applies_and_is_audited(root: Path, kind: str) -> None:
    settings(root, protected=True, required_approvals=1, allow_emergency=True)
    configure(root, greeting="three")
    with pytest.raises(ProtectedEnvironment) as refused:
        apply(root, REQUESTS[kind])
    assert '--emergency "reason"' in str(refused.value), "offered where allowed"
    before = recorded(root)
    request = dataclasses.replace(REQUESTS[kind], emergency=REASON)
    result = apply(root, request)
    assert result.ok
    if kind != "refresh":  # nothing drifted: refresh records nothing
        assert recorded(root)[:2] != before[:2]
    row = events(root)[-1]
    assert (row.kind, row.who, row.data["emergency"]) == (kind, "tester", REASON)
    assert REASON in row.detail
    if kind in ("up", "destroy", "rollback"):
        assert row.data["plan_digest"] == result.outcome.plan.digest()


def test_an_emergency_through_the_command_line_shows_in_audit(root: Path) -> None:
    settings(root, protected=True, required_approvals=1, allow_emergency=True)
    configure(root, greeting="three")
    proj = CliProject(root)
    err = proj.fails("up", "--yes", "--stack", "production")
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert "environment 'production' is protected" in err
    proj.ok("up", "--yes", "--stack", "production", "--emergency", REASON)
    assert (root / "out" / "production" / "site.txt").read_text() == "three"
    out = proj.ok("audit", "--stack", "production")
    assert f"EMERGENCY: {REASON}" in out.splitlines()[-1] and "tester" in out.splitlines()[-1]


def test_stack_rm_of_a_protected_stack_is_refused_from_the_command_line(root: Path) -> None:
    proj = CliProject(root)
    before = recorded(root)
    for args in (("stack", "rm", "production"), ("stack", "rm", "production", "--force"),
                 ("stack", "rm", "production", "--force", "--emergency", REASON)):
        err = proj.fails(*args)
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err
        if "--emergency" in args:
            assert "does not allow emergency changes" in err
        else:
            assert ("environment 'production' is protected: `stackwright stack rm` may not change stack "
                    "'production'; to remove it, first make environments.production unprotected in "
                    "stackwright.yaml") in err
    assert recorded(root) == before
    assert "production" in proj.ok("stack", "ls")
    rows = events(root)
    assert [r.kind for r in rows] == ["up", "up", "attempt", "attempt", "attempt"], "each refusal, audited"
    assert {(r.data["command"], r.data["stage"], r.who) for r in rows[2:]} == {("stack rm", "protection", "tester")}
    assert rows[-1].data["emergency"] == REASON


def test_stack_rm_in_an_allowed_emergency_is_audited(root: Path) -> None:
    settings(root, protected=True, required_approvals=1, allow_emergency=True)
    proj = CliProject(root)
    err = proj.fails("stack", "rm", "production", "--force")
    assert '--emergency "reason" (allowed here)' in err
    proj.ok("stack", "rm", "production", "--yes", "--force", "--emergency", REASON)
    assert "production" not in proj.ok("stack", "ls")
    out = proj.ok("audit", "--stack", "production").splitlines()
    assert "stack-rm" in out[-1] and "tester" in out[-1] and f"EMERGENCY: {REASON}" in out[-1]
    assert "1 resource(s) forgotten" in out[-1]


def test_stack_rm_of_an_unprotected_stack_is_audited(root: Path) -> None:
    proj = CliProject(root)
    proj.ok("up", "--yes", "--stack", "staging")
    proj.ok("stack", "rm", "staging", "--yes", "--force", "--as", "alice")
    opened = open_session(load_project(root), "production", "tester")
    try:
        [event] = opened.store.events("staging", kinds=("stack-rm",))
    finally:
        opened.close()
    assert (event.who, event.data["result"], event.data["resources"], event.data["force"]) == (
        "alice", "succeeded", 1, True)
    assert event.data["lineage"]


def test_run_up_refuses_a_protected_stack_of_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from workflow.test_workspace_inprocess import stackwright, write_workspace

    ws = write_workspace(tmp_path / "ws")
    monkeypatch.chdir(ws)
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    protected = {"name": "alpha", "environments": {"prod": {"protected": True}}}
    (ws / "alpha" / "stackwright.yaml").write_text(yaml.safe_dump(protected))
    (ws / "alpha" / "helpers.py").write_text("NAME = 'alpha2'\n")
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 1
    assert "environment 'prod' is protected" in out
    assert (ws / "alpha" / "out" / "prod.txt").read_text() == "alpha", "the protected stack is unchanged"
    assert (ws / "alpha" / "out" / "dev.txt").read_text() == "alpha2", "the others are applied"


def protected_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **prod: Any) -> Path:
    """test_workspace_inprocess's workspace, never applied, alpha's ``prod`` protected
    (beta/prod reads alpha/prod); the working directory."""
    from workflow.test_workspace_inprocess import write_workspace

    ws = write_workspace(tmp_path / "ws")
    settings = {"name": "alpha", "environments": {"prod": {"protected": True, "required_approvals": 1, **prod}}}
    (ws / "alpha" / "stackwright.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.chdir(ws)
    return ws


def alpha_state(ws: Path) -> tuple[bool, list[tuple[str, str, str, str]]]:
    """Whether alpha/prod exists, and its failed attempts (who, command, stage, error)."""
    from stackwright.state.sqlite import SqliteStateStore

    with SqliteStateStore(ws / "alpha" / ".stackwright" / "state.db") as store:
        return store.stack_exists("prod"), [(e.who, e.data["command"], e.data["stage"], e.data["error"])
                                           for e in store.events("prod", kinds=("attempt",))]


REFUSED_PROD = ("environment 'prod' is protected: `stackwright up` may not change stack 'prod'; use "
                "`stackwright plan --out FILE`, `stackwright approve FILE`, `stackwright apply FILE`")


@pytest.mark.parametrize("shard", [None, "1/1", "2/2"])
def test_run_up_never_creates_a_stack_in_a_protected_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shard: str | None) -> None:
    """docs/ci.md: a new stack of a protected environment appears only once its plan has
    the approvals; `run up` (sharded or not) refuses it before creating it, recorded."""
    from stackwright.cli import main
    from workflow.test_workspace_inprocess import stackwright

    monkeypatch.setattr(main, "_END_AT_ONCE", [False])
    ws = protected_workspace(tmp_path, monkeypatch)
    sharding = ("--shard", shard, "--run-id", "r1") if shard else ()
    for attempt in (1, 2):
        code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", *sharding, capsys=capsys)
        assert code == 1, out
        assert REFUSED_PROD in out
        if attempt == 1:
            assert "Created 3 new stack(s): alpha/dev, beta/dev, beta/prod" in out
        exists, attempts = alpha_state(ws)
        assert not exists, "the refused stack was not created"
        assert attempts == [("tester", "up", "protection", REFUSED_PROD)] * attempt
        assert (ws / "beta" / "out" / "dev.txt").read_text() == "beta after alpha"
        assert not (ws / "beta" / "out" / "prod.txt").exists(), "skipped: it reads alpha/prod"
        sharding = ("--shard", shard, "--run-id", "r2") if shard else ()


def test_run_up_creates_a_protected_stack_in_an_allowed_emergency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from workflow.test_workspace_inprocess import stackwright

    ws = protected_workspace(tmp_path, monkeypatch, allow_emergency=True)
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", "--emergency", REASON, capsys=capsys)
    assert code == 0, out
    assert "Created 4 new stack(s)" in out
    assert alpha_state(ws) == (True, [])
    assert (ws / "beta" / "out" / "prod.txt").read_text() == "beta after alpha"


def test_run_up_refuses_a_new_stack_whose_file_says_nothing_readable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Its environment cannot be told, so it is not created; the failure is recorded."""
    from workflow.test_workspace_inprocess import stackwright

    ws = protected_workspace(tmp_path, monkeypatch)
    (ws / "alpha" / "stacks" / "prod.yaml").write_text("enviroment: dev\n")
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 1 and "unknown key 'enviroment'" in out, out
    exists, attempts = alpha_state(ws)
    assert not exists
    assert [(who, command, stage) for who, command, stage, _ in attempts] == [("tester", "up", "opening")]
    assert "unknown key 'enviroment'" in attempts[0][3]


def test_run_destroy_creates_no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from workflow.test_workspace_inprocess import stackwright

    ws = protected_workspace(tmp_path, monkeypatch)
    code, out = stackwright("run", "destroy", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert alpha_state(ws) == (False, [])


# --- the order of the checks -----------------------------------------------------------


@pytest.fixture
def held(root: Path) -> Iterator[None]:
    """The production stack's lock, held by another (live) process."""
    opened = session(root)
    info = LockInfo(owner="someone", pid=os.getppid(), host=socket.gethostname(),
                    acquired_at=time.time(), operation="up", token="other")
    opened.store.acquire_lock("production", info)
    try:
        yield
    finally:
        opened.store.release_lock("production", "other")
        opened.close()


def test_gate_then_policies_then_protection_all_before_the_lock(root: Path, held: None) -> None:
    (root / "policies").mkdir()
    (root / "policies" / "guard.py").write_text(NO_DELETES)
    configure(root, greeting="three")
    settings(root, protected=True, required_approvals=1, gate="staging")
    with pytest.raises(GateClosed):
        apply(root, ChangeRequest("up"))
    settings(root, protected=True, required_approvals=1)
    with pytest.raises(PolicyError, match="deleting is not allowed"):
        apply(root, ChangeRequest("destroy"))
    with pytest.raises(ProtectedEnvironment):
        apply(root, ChangeRequest("up"))


def test_the_prompt_comes_before_the_lock_and_declining_changes_nothing(root: Path) -> None:
    settings(root)
    configure(root, greeting="three")
    before = recorded(root)
    seen: list[Any] = []

    def confirm(prompt: Prompt) -> bool:
        opened = session(root)
        try:
            seen.append(opened.store.read_lock("production"))
        finally:
            opened.close()
        return False

    opened = session(root)
    try:
        result = change(opened, ChangeRequest("up"), confirm=confirm)
    finally:
        opened.close()
    assert seen == [None], "nobody waits on a person at a prompt"
    assert result.cancelled and not result.ok
    assert recorded(root) == before


def test_declining_the_prompt_exits_non_zero(root: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from stackwright.cli import commands_update
    from stackwright.cli.main import cli

    settings(root)
    configure(root, greeting="three")
    before = recorded(root)
    monkeypatch.setattr(commands_update, "confirm_or_fail", lambda question, yes, err=False: False)
    with pytest.raises(SystemExit) as exited:
        cli.main(args=["up", "--stack", "production"], prog_name="stackwright", standalone_mode=False)
    assert exited.value.code == 1
    assert "Cancelled; nothing was changed." in capsys.readouterr().err
    assert recorded(root) == before


# --- policies and protect on every change -----------------------------------------------------


def test_destroy_and_rollback_run_the_policies(root: Path) -> None:
    settings(root)
    configure(root, greeting="two", extra=True)
    apply(root, ChangeRequest("up"))  # checkpoint 3 adds "extra"
    (root / "policies").mkdir()
    (root / "policies" / "guard.py").write_text(NO_DELETES)
    before = recorded(root)
    for request in (ChangeRequest("destroy"), ChangeRequest("rollback", checkpoint=2)):
        with pytest.raises(PolicyError, match="deleting is not allowed"):
            apply(root, request)
    assert recorded(root) == before


def test_protect_blocks_deletion_by_every_command(root: Path) -> None:
    settings(root)
    configure(root, greeting="two", extra=True, protect_extra=True)
    apply(root, ChangeRequest("up"))  # checkpoint 3 adds the protected "extra"
    before = recorded(root)
    with pytest.raises(PlanError, match="protected"):
        apply(root, ChangeRequest("destroy"))
    with pytest.raises(PlanError, match="protected"):
        apply(root, ChangeRequest("rollback", checkpoint=2))
    configure(root, greeting="two")
    with pytest.raises(PlanError, match="protected"):
        apply(root, ChangeRequest("up"))
    configure(root, greeting="two", extra=True, protect_extra=True)
    with pytest.raises(StateError, match="protected"):
        apply(root, ChangeRequest("state-rm", urn="production::proj::local:File::extra"))
    assert recorded(root) == before
    assert (root / "out" / "production" / "extra.txt").exists()
    apply(root, ChangeRequest("state-rm", urn="production::proj::local:File::extra", force=True))
    assert (root / "out" / "production" / "extra.txt").exists(), "forgetting never deletes"
