"""A change that fails or is refused before its apply starts is in the audit log: one
``attempt`` event with the command, who, the stage it stopped at and the error line
(secrets masked). It makes no checkpoint and moves no serial, so saved plans stay valid;
`history` points to it; a failure to record it is told after the original error.

Everything runs the real command, as an auditor and a person at a terminal see it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.conftest import CliProject, cli_env, run_cli

PROGRAM = """
config = sw.Config()
local.File("site", path="out/site.txt", content=config.get_str("greeting", "hello"))
"""

PROTECTED = """
local.File("keep", path="out/keep.txt", content="kept", opts=sw.ResourceOptions(protect=True))
"""

NO_CREATES = """\
import stackwright as sw

@sw.policy(name="no-creates")
def no_creates(plan):
    for step in plan.steps:
        if step.op.value == "create":
            yield sw.Violation("nothing new may be created here", urn=step.urn)
"""

SECRET = "pa55-w0rd\\with'quotes"
"""A secret whose ``repr`` differs from its text: an exception message often quotes it so."""


def attempts(proj: CliProject, stack: str = "dev") -> list[dict[str, Any]]:
    """The stack's failed attempts, as `audit --json` lists them."""
    rows = json.loads(proj.ok("audit", "--json", "--stack", stack))
    return [row for row in rows if row["kind"] == "attempt"]


def recorded(proj: CliProject, stack: str = "dev") -> tuple[int, int]:
    """The stack's state serial and its number of checkpoints (read without the stack
    file, which a test may have broken)."""
    store = proj.store()
    try:
        return store.snapshot(stack).serial, len(store.history(stack))
    finally:
        store.close()


def test_a_program_that_raises_during_up_is_audited_and_named_by_history(
        project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    before = recorded(proj)
    proj.append_program('raise ValueError("boom")')
    err = proj.fails("up", "--yes", "--as", "alice")
    assert "the program raised ValueError: boom" in err and "note:" not in err
    [row] = attempts(proj)
    line = proj.line_of("boom")
    assert (row["who"], row["plan_hash"], row["data"]["command"], row["data"]["stage"]) == (
        "alice", None, "up", "program")
    assert row["data"]["error"] == f"{proj.program}:{line}: the program raised ValueError: boom"
    assert row["data"]["error_type"] == "ProgramError"
    last = proj.ok("audit", "--stack", "dev").splitlines()[-1]
    assert "attempt" in last and "alice" in last
    assert f"up FAILED before applying (at program): {proj.program}:{line}" in last
    assert recorded(proj) == before, "no checkpoint, no serial"
    code, out, history = proj.run("history")
    assert code == 0 and len(out.strip().splitlines()) == 2, "the table: stdout, its last line the last checkpoint"
    assert ("1 attempt(s) to change stack dev failed before applying anything and made no checkpoint "
            "(the last: `up` stopped at program") in history
    assert "by alice); `stackwright audit` lists them." in history
    assert len(json.loads(proj.ok("history", "--json"))["checkpoints"]) == 1, "JSON history: checkpoints only"


def test_a_policy_denial_during_up_is_audited(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    (proj.root / "policies").mkdir()
    (proj.root / "policies" / "guard.py").write_text(NO_CREATES)
    before = recorded(proj)
    err = proj.fails("up", "--yes")
    assert "nothing new may be created here" in err
    [row] = attempts(proj)
    assert (row["data"]["command"], row["data"]["stage"], row["data"]["error_type"]) == ("up", "policy", "PolicyError")
    assert "1 mandatory policy violation(s) block this change: no-creates: nothing new may be created here" \
        in row["data"]["error"]
    assert recorded(proj) == before
    assert not (proj.root / "out" / "site.txt").exists()


def test_a_failure_while_destroy_plans_is_audited(project: Callable[..., CliProject]) -> None:
    proj = project(PROTECTED)
    proj.ok("up", "--yes")
    before = recorded(proj)
    err = proj.fails("destroy", "--yes", "--as", "bob")
    assert "protected" in err
    [row] = attempts(proj)
    assert (row["who"], row["data"]["command"], row["data"]["stage"], row["data"]["error_type"]) == (
        "bob", "destroy", "planning", "PlanError")
    assert "protected" in row["data"]["error"] and "\n" not in row["data"]["error"]
    assert recorded(proj) == before
    assert (proj.root / "out" / "keep.txt").exists()


def test_apply_of_a_stale_plan_is_audited_with_the_plan(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.write_config({"greeting": "hi"})
    proj.ok("plan", "--out", "hi.plan")
    proj.ok("up", "--yes")  # the same change, applied directly: the state moved on
    before = recorded(proj)
    err = proj.fails("apply", "hi.plan", "--yes")
    assert "changed since plan" in err
    plan_hash = json.loads(proj.ok("audit", "--json"))[1]["plan_hash"]
    [row] = attempts(proj)
    assert (row["plan_hash"], row["data"]["command"], row["data"]["stage"], row["data"]["error_type"]) == (
        plan_hash, "apply", "saved plan", "StalePlan")
    assert f"apply FAILED before applying (at saved plan): stack 'dev' changed since plan {plan_hash[:12]}" \
        in proj.ok("audit").splitlines()[-1]
    assert recorded(proj) == before


def test_a_failed_attempt_leaves_a_saved_plan_valid(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.write_config({"greeting": "hi"})
    proj.ok("plan", "--out", "hi.plan")
    before = recorded(proj)
    err = proj.fails("up")  # no terminal to ask, and no --yes
    assert "refusing to change anything without confirmation" in err
    [row] = attempts(proj)
    assert (row["data"]["command"], row["data"]["stage"]) == ("up", "confirmation")
    assert recorded(proj) == before
    proj.ok("apply", "hi.plan", "--yes")  # the serial the plan pins is still the stack's
    assert (proj.root / "out" / "site.txt").read_text() == "hi"


def test_protection_and_approval_refusals_are_audited(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    settings = yaml.safe_load((proj.root / "stackwright.yaml").read_text())
    settings["environments"] = {"dev": {"protected": True, "required_approvals": 1}}
    (proj.root / "stackwright.yaml").write_text(yaml.safe_dump(settings))
    proj.fails("up", "--yes", "--as", "mallory")
    proj.ok("plan", "--out", "dev.plan")
    proj.fails("apply", "dev.plan", "--yes")
    up, apply = attempts(proj)
    assert (up["who"], up["data"]["command"], up["data"]["stage"]) == ("mallory", "up", "protection")
    assert "environment 'dev' is protected" in up["data"]["error"]
    assert (apply["data"]["command"], apply["data"]["stage"], apply["data"]["error_type"]) == (
        "apply", "approval", "NotApproved")
    assert apply["plan_hash"] and "needs 1 approval(s)" in apply["data"]["error"]
    assert recorded(proj)[1] == 0, "no checkpoint"


def test_a_secret_in_the_error_is_masked_in_the_audit_log_and_the_state_file(
        project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    proj.ok("config", "set", "--secret", "db_password", SECRET)
    proj.append_program('raise ValueError("cannot connect with " + repr(sw.Config().get("db_password").value))')
    proj.fails("up", "--yes")
    [row] = attempts(proj)
    assert row["data"]["error"].endswith('the program raised ValueError: cannot connect with "[secret]"'), "as repr quotes it"
    quoted = repr(SECRET)[1:-1]
    assert SECRET not in json.dumps(row) and quoted not in json.dumps(row)
    files = sorted((proj.root / ".stackwright").glob("state.db*"))
    assert files
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data and quoted.encode() not in data, path


def test_when_the_attempt_cannot_be_recorded_the_error_comes_first_and_a_note_says_so(
        project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    db = sqlite3.connect(proj.db)
    db.execute("CREATE TRIGGER full BEFORE INSERT ON events WHEN NEW.kind = 'attempt'"
               " BEGIN SELECT RAISE(ABORT, 'the audit log is full'); END")
    db.commit()
    db.close()
    proj.append_program('raise ValueError("boom")')
    lines = proj.fails("up", "--yes").splitlines()
    assert lines[0].startswith("error: ") and lines[0].endswith("the program raised ValueError: boom")
    assert lines[-1].startswith("  note: this failed attempt could not be recorded in the audit log: ")
    assert lines[-1].endswith("the audit log is full")


def run_attempts(root: Path, project: str) -> list[tuple[str, str, str]]:
    code, out, err = run_cli(root / project, "audit", "--json", env=cli_env())
    assert code == 0, err
    return [(row["stack"], row["data"]["command"], row["data"]["stage"])
            for row in json.loads(out) if row["kind"] == "attempt"]


def test_run_up_audits_each_stack_that_stopped_before_applying(tmp_path: Path) -> None:
    from workflow.test_workspace_inprocess import write_workspace

    root = write_workspace(tmp_path / "ws")  # beta/{stack} reads alpha/{stack}
    (root / "alpha" / "policies").mkdir()
    (root / "alpha" / "policies" / "guard.py").write_text(NO_CREATES)
    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 1, out + err
    assert sorted(run_attempts(root, "alpha")) == [("dev", "up", "policy"), ("prod", "up", "policy")]
    assert run_attempts(root, "beta") == [], "skipped, never attempted"
    (root / "alpha" / "policies" / "guard.py").unlink()
    with (root / "beta" / "__main__.py").open("a") as program:
        program.write('raise RuntimeError("beta is broken")\n')
    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 1 and "beta is broken" in out + err
    assert len(run_attempts(root, "alpha")) == 2, "alpha applied this time"
    assert sorted(run_attempts(root, "beta")) == [("dev", "up", "program"), ("prod", "up", "program")]


def test_env_pause_and_resume_that_stop_before_applying_are_audited(tmp_path: Path) -> None:
    from workflow.test_gate_pause import make_project, stack_text

    proj = make_project(tmp_path / "proj")
    proj.ok("up", "--yes", "--stack", "staging")
    err = proj.fails("env", "resume", "staging", "--yes", "--as", "carol")
    assert "is not paused" in err
    before, file = recorded(proj, "staging"), stack_text(proj)
    proj.append_program('raise ValueError("no capacity data")')
    err = proj.fails("env", "pause", "staging", "--yes", "--as", "carol")
    assert "no capacity data" in err
    resume, pause = attempts(proj, "staging")
    assert (resume["who"], resume["data"]["command"], resume["data"]["stage"]) == ("carol", "env resume", "config edit")
    assert (pause["who"], pause["data"]["command"], pause["data"]["stage"]) == ("carol", "env pause", "program")
    assert recorded(proj, "staging") == before and stack_text(proj) == file, "the edit was put back"


BROKEN = {
    "secret": ("  bad: {secure: 'local:v2.AAAA='}\n", "config key 'bad'"),
    "yaml": ("config: {greeting: [\n", "stacks/dev.yaml"),
    "unknown key": ("enviroment: dev\n", "unknown key 'enviroment'"),
}
"""What appended to a stack file breaks it, and what its error names."""


def break_stack_file(proj: CliProject, how: str, stack: str = "dev") -> str:
    text, named = BROKEN[how]
    path = proj.root / "stacks" / f"{stack}.yaml"
    path.write_text(path.read_text() + text)
    return named


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_change_that_fails_on_its_stack_file_is_audited(project: Callable[..., CliProject], how: str) -> None:
    """The stack file is read before the change gateway runs: a secret that cannot be
    decrypted, invalid YAML or an unknown key there is an attempt too, at stage `opening`."""
    proj = project(PROGRAM, {"greeting": "hi"})
    proj.ok("up", "--yes")
    before = recorded(proj)
    named = break_stack_file(proj, how)
    commands = [("up", "--yes"), ("destroy", "--yes"), ("refresh", "--yes"), ("rollback", "1", "--yes"),
                ("state", "rm", "dev::proj::local:File::site", "--yes"), ("env", "pause", "dev", "--yes")]
    errors = [proj.fails(*args, "--as", "alice") for args in commands]
    assert all(named in err for err in errors), errors
    rows = attempts(proj)
    assert [(r["who"], r["data"]["command"], r["data"]["stage"]) for r in rows] == [
        ("alice", command, "opening") for command in ("up", "destroy", "refresh --yes", "rollback", "state rm",
                                                       "env pause")]
    for row, err in zip(rows, errors):
        assert row["data"]["error"] in err.splitlines()[0], (row, err)
    assert "up FAILED before applying (at opening)" in proj.ok("audit").splitlines()[0 - len(rows)]
    assert recorded(proj) == before
    code, _, _ = proj.run("refresh")  # reads only: nothing to record
    assert code == 1 and len(attempts(proj)) == len(rows)


def test_apply_of_a_plan_whose_stack_file_broke_since_is_audited(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.write_config({"greeting": "hi"})
    proj.ok("plan", "--out", "hi.plan")
    break_stack_file(proj, "secret")
    proj.fails("apply", "hi.plan", "--yes")
    [row] = attempts(proj)
    assert (row["data"]["command"], row["data"]["stage"], row["plan_hash"]) == (
        "apply", "opening", json.loads(proj.ok("audit", "--json"))[1]["plan_hash"])


def test_a_stack_that_is_not_named_or_does_not_exist_records_nothing(project: Callable[..., CliProject]) -> None:
    proj = project(PROGRAM)
    assert "no stack named 'nosuch'" in proj.fails("up", "--yes", "--stack", "nosuch")
    (proj.root / ".stackwright" / "current-stack").unlink()
    assert "no stack selected" in proj.fails("up", "--yes")
    assert json.loads(proj.ok("audit", "--json")) == []


def test_run_up_audits_a_stack_whose_file_is_broken(tmp_path: Path) -> None:
    from workflow.test_workspace_inprocess import write_workspace

    root = write_workspace(tmp_path / "ws")
    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 0, out + err
    path = root / "alpha" / "stacks" / "dev.yaml"
    path.write_text("config:\n  bad: {secure: 'local:v2.AAAA='}\n")
    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 1 and "config key 'bad'" in out + err
    assert run_attempts(root, "alpha") == [("dev", "up", "opening")]
    assert run_attempts(root, "beta") == [], "beta/dev is skipped, never attempted"
