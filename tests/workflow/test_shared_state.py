"""Two CI runners sharing one PostgreSQL state store (``STACKWRIGHT_STATE_URL``).

The generated workflows run `plan`, `approve` and `apply` as separate jobs, each on a
fresh checkout: two copies of the project folder stand in for two runners. What one
records (the plan, the approval, the apply) the other must see.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.conftest import CliProject
from workflow.test_plans_approvals import make_project, signed


def test_plan_approve_apply_across_runners(tmp_path: Path, pg_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKWRIGHT_STATE_URL", pg_url)
    monkeypatch.setenv("STACKWRIGHT_PASSPHRASE", "shared ci passphrase")
    a = make_project(tmp_path / "runner-a")  # `stack init` dev and production, in the database
    shutil.copytree(a.root, tmp_path / "runner-b",
                    ignore=shutil.ignore_patterns(".stackwright", "__pycache__"))
    b = CliProject(tmp_path / "runner-b")

    out = a.ok("plan", "--stack", "production", "--out", "plan.json")
    [digest] = [line.removeprefix("Plan hash: ") for line in out.splitlines()
                if line.startswith("Plan hash: ")]
    shutil.copy(a.root / "plan.json", b.root / "plan.json")  # the workflow's artifact

    out = b.ok("approve", "plan.json", *signed(a, "bob"), "--comment", "from runner b")
    assert "Approved plan" in out and "1 of 1 needed" in out
    out = a.ok("apply", "plan.json", "--yes")
    assert f"Applied plan {digest[:12]}" in out
    assert a.file("out/production/index.html").read_text() == "<h1>hello production</h1>welcome"

    history = b.ok("history", "--stack", "production").splitlines()
    assert len(history) == 2 and " apply " in history[1]
    rows = json.loads(b.ok("audit", "--json", "--stack", "production"))
    assert [(r["kind"], r["who"]) for r in rows] == [
        ("plan", "tester"), ("approve", "bob"), ("apply", "tester")]
    assert all(r["plan_hash"] == digest for r in rows)
    assert rows[2]["data"]["approved_by"] == ["bob"]
    for runner in (a, b):
        assert not runner.db.exists(), "no local state file: the state is shared"
