"""Drift in a protected environment, repaired through the approved path.

`preview`, `plan --out` and `up` plan the same thing from the same inputs: what the last
plain `refresh` found drifted is planned against the live objects by all three, and
`plan --refresh` reads every live object first, as `preview --refresh` does. The saved
plan says it was made against the live objects (`refreshed`); its `apply` reads them
again under the lock, applies only if the plan made from them is the approved one, and
records what it read. The project is ``test_plans_approvals``'s (production protected,
one signed approval).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.conftest import CliProject
from workflow.test_plans_approvals import make_plan, make_project, recorded, refused, signed

SITE = "production::proj::local:File::site"


@pytest.fixture
def production(tmp_path: Path) -> CliProject:
    """production applied through an approved plan; the site file then edited by hand."""
    proj = make_project(tmp_path / "proj")
    make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    proj.ok("apply", "plan.json", "--yes")
    proj.ok("stack", "select", "production")
    assert proj.file("out/production/index.html").read_text() == "<h1>hello production</h1>welcome"
    proj.file("out/production/index.html").write_text("edited by hand")
    return proj


def changed(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ~ ") or line.startswith("  + ")]


def test_plan_saves_what_preview_shows_after_a_refresh_and_apply_puts_it_back(production: CliProject) -> None:
    out = production.ok("refresh")
    assert "~ local:File site  changed outside Stackwright" in out
    assert "`stackwright plan --out FILE` plans putting the declared values back" in out, out
    assert "`stackwright up` puts" not in out, "up is refused in a protected environment"
    preview = production.ok("preview")
    assert changed(preview) == ["~  local:File site  update"], preview
    assert "found by the last `refresh`" in preview

    out = production.ok("plan", "--out", "repair.json", "--diff")
    assert changed(out) == changed(preview), out
    assert '~ content: "edited by hand" => "<h1>hello production</h1>welcome"' in out, out
    document = json.loads(production.file("repair.json").read_text())
    assert document["plan"]["refreshed"] is True and document["summary"] == {"update": 1, "same": 2}
    [event] = [e for e in json.loads(production.ok("audit", "--json"))
               if e["kind"] == "plan" and e["data"]["path"].endswith("repair.json")]
    assert event["data"]["refreshed"] is True

    production.ok("approve", "repair.json", *signed(production, "bob"))
    out = production.ok("apply", "repair.json", "--yes")
    assert "1 update" in out, out
    assert production.file("out/production/index.html").read_text() == "<h1>hello production</h1>welcome"
    history = production.ok("history", "show", "2")
    assert f"refresh-changed  {SITE}" in history and f"update           {SITE}" in history, history
    assert "No changes." in production.ok("preview")
    assert "no drift" in production.ok("refresh")


def test_plan_refresh_reads_the_live_objects_as_preview_refresh_does(production: CliProject) -> None:
    assert "No changes." in production.ok("plan", "--out", "blind.json"), \
        "without a refresh nothing says the file drifted"
    assert changed(production.ok("preview", "--refresh")) == ["~  local:File site  update"]
    out = production.ok("plan", "--refresh", "--out", "repair.json")
    assert changed(out) == ["~  local:File site  update"], out
    production.ok("approve", "repair.json", *signed(production, "bob"))
    production.ok("apply", "repair.json", "--yes")
    assert production.file("out/production/index.html").read_text() == "<h1>hello production</h1>welcome"


def test_a_refreshed_plan_is_refused_when_the_live_objects_now_need_another_plan(production: CliProject) -> None:
    production.file("out/production/index.html").write_text("<h1>hello production</h1>welcome")
    out = production.ok("plan", "--refresh", "--out", "nothing.json")
    assert "No changes." in out, out
    production.ok("approve", "nothing.json", *signed(production, "bob"))
    production.file("out/production/index.html").write_text("edited again")
    before = recorded(production, "production")
    err = refused(production, "apply", "nothing.json", "--yes")
    assert "it would now update local:File site (the plan says leave unchanged)" in err, err
    assert recorded(production, "production") == before, "what was read is not recorded: nothing applied"
    assert production.file("out/production/index.html").read_text() == "edited again"


def test_a_plan_made_against_the_recorded_state_still_applies_against_it(production: CliProject) -> None:
    """Without a refresh, a saved plan is made and applied against the recorded state."""
    production.write_config({"greeting": "bye"}, stack="production")
    document_path, _ = make_plan(production, "production", name="change.json")
    assert json.loads(document_path.read_text())["plan"]["refreshed"] is False
    production.ok("approve", "change.json", *signed(production, "bob"))
    assert "1 update" in production.ok("apply", "change.json", "--yes")
    assert production.file("out/production/index.html").read_text() == "<h1>bye</h1>welcome"
