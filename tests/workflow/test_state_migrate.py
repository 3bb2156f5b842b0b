"""`stackwright state migrate --to URL`: stacks move between SQLite, PostgreSQL and S3
with their resources, pending operations, outputs, history, audit log, approvals and
plans, and nothing is lost on the way (every record compared after a full round trip)."""

from __future__ import annotations

import json
from pathlib import Path

from cli.conftest import CliProject
from stackwright.state.backends import open_state_store
from stackwright.state.records import PendingOperation, StackRecord
from workflow.test_plans_approvals import make_plan, make_project, signed


def records(url: str | None, proj: CliProject) -> dict[str, StackRecord]:
    """Every stack of the project in ``url`` (None: its default SQLite file), as stored."""
    store = open_state_store(url, proj.db, project="proj", root=proj.root)
    try:
        return {s.name: store.export_stack(s.name) for s in store.list_stacks()}
    finally:
        store.close()


def with_history(tmp_path: Path) -> tuple[CliProject, str]:
    """dev applied twice (two checkpoints, secrets in state), a pending operation left
    by a crash, production planned, approved and rejected once: the audit log."""
    proj = make_project(tmp_path / "proj")
    proj.ok("up", "--yes", "--stack", "dev")
    proj.write_config({"greeting": "hello again"}, stack="dev")
    proj.ok("up", "--yes", "--stack", "dev")
    _, rejected = make_plan(proj, "production", "old.json")
    proj.ok("reject", "old.json", "--as", "carol", "--comment", "not yet")
    plan, plan_hash = make_plan(proj, "production")
    proj.ok("approve", str(plan), *signed(proj, "bob"), "--comment", "ship it")
    with proj.store("dev") as store:
        store.begin("dev", "up", "crash").record_pending(
            PendingOperation("t-crash", "urn:x", "local:index/File", "create", {"path": "x"}, started_at=1.5))
    return proj, plan_hash


def test_a_round_trip_through_every_backend_loses_nothing(
        tmp_path: Path, pg_url: str, s3_state_url: str) -> None:
    proj, plan_hash = with_history(tmp_path)
    original = records(None, proj)
    assert original["dev"].checkpoints and original["production"].events and original["dev"].pending
    back = f"sqlite:///{tmp_path / 'back.db'}"
    for source, target in ((None, pg_url), (pg_url, s3_state_url), (s3_state_url, back)):
        env = {"STACKWRIGHT_STATE_URL": source} if source else {}
        out = proj.ok("state", "migrate", "--all", "--to", target, **env)
        assert "every record read back and compared" in out
        assert records(target, proj) == original
    assert records(back, proj) == original
    # The migrated store works: the approval that came with it lets the plan apply.
    proj.ok("apply", "plan.json", "--yes", STACKWRIGHT_STATE_URL=back)
    applied = records(back, proj)["production"]
    assert len(applied.checkpoints) == len(original["production"].checkpoints) + 1
    assert applied.events[-1][0] == "apply" and plan_hash in applied.events[-1][3]
    assert records(None, proj) == original  # the source was only read


def test_one_stack_moves_and_an_existing_one_is_not_overwritten(tmp_path: Path, s3_state_url: str) -> None:
    proj, _ = with_history(tmp_path)
    proj.ok("state", "migrate", "--stack", "dev", "--to", s3_state_url)
    assert set(records(s3_state_url, proj)) == {"dev"}
    err = proj.fails("state", "migrate", "--stack", "dev", "--to", s3_state_url)
    assert "already exists" in err
    assert records(s3_state_url, proj)["dev"] == records(None, proj)["dev"]


def test_a_locked_stack_is_not_migrated(tmp_path: Path, s3_state_url: str) -> None:
    from stackwright.state.records import LockInfo

    proj, _ = with_history(tmp_path)
    with proj.store("dev") as store:
        store.acquire_lock("dev", LockInfo("ci-bot", 1, "runner", 0.0, "up"))
    err = proj.fails("state", "migrate", "--stack", "dev", "--to", s3_state_url)
    assert "locked by ci-bot" in err
    assert records(s3_state_url, proj) == {}


def test_the_project_audit_log_keeps_its_order_in_every_backend(
        tmp_path: Path, pg_url: str, s3_state_url: str) -> None:
    """dev, production, dev: the log of the whole project reads the same after `--all`
    (it used to come out grouped by stack)."""
    proj = make_project(tmp_path / "proj")
    proj.ok("up", "--yes", "--stack", "dev")
    make_plan(proj, "production")
    proj.write_config({"greeting": "hello again"}, stack="dev")
    proj.ok("up", "--yes", "--stack", "dev")
    before = proj.ok("audit", "--json"), proj.ok("audit")
    assert [e["stack"] for e in json.loads(before[0])] == ["dev", "production", "dev"]
    for target in (f"sqlite:///{tmp_path / 'copy.db'}", pg_url, s3_state_url):
        proj.ok("state", "migrate", "--all", "--to", target)
        after = proj.ok("audit", "--json", STACKWRIGHT_STATE_URL=target), proj.ok("audit", STACKWRIGHT_STATE_URL=target)
        assert after == before, target


def test_all_stacks_are_checked_before_anything_is_copied(tmp_path: Path) -> None:
    """Two of the three stacks are in the target already: `--all` names both and copies
    nothing (it used to copy dev first, so that no retry could succeed); the third
    moves on its own."""
    proj = make_project(tmp_path / "proj")
    proj.write_config({"greeting": "hello qa"}, stack="qa")
    proj.ok("stack", "init", "qa")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    for stack in ("production", "qa"):
        proj.ok("state", "migrate", "--stack", stack, "--to", target)
    err = proj.fails("state", "migrate", "--all", "--to", target)
    assert "stacks 'production', 'qa' already exist in the target store; nothing was copied" in err
    assert set(records(target, proj)) == {"production", "qa"}
    proj.ok("state", "migrate", "--stack", "dev", "--to", target)
    assert records(target, proj) == records(None, proj)
