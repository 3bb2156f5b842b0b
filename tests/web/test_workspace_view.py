"""The web view at a workspace root: every project's stacks, named project/stack, and the
workspace graph with the dependencies the workspace file declares."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from shop import run
from web_server import Server

WORKSPACE = """\
projects:
  - path: network
    stacks: [dev]
  - path: app
    depends_on: ["network/{stack}"]
    stacks: [dev]
"""

NETWORK = """\
import stackwright as sw
from stackwright.providers import local

vpc = local.File("vpc", path="out/vpc.txt", content="10.0.0.0/16")
sw.export("vpc_id", "vpc-1")
"""

APP = """\
import stackwright as sw
from stackwright.providers import local

network = sw.StackReference("network/dev")
local.File("config", path="out/app.txt", content=sw.fmt("vpc {}", network.output("vpc_id")))
"""


def token(page: httpx.Response) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert found, "the page has no review form"
    return found.group(1)


def make_workspace(root: Path) -> Path:
    (root / "stackwright-workspace.yaml").write_text(WORKSPACE)
    for name, program in (("network", NETWORK), ("app", APP)):
        (root / name / "stacks").mkdir(parents=True)
        (root / name / "stackwright.yaml").write_text(f"name: {name}\n")
        (root / name / "__main__.py").write_text(program)
        (root / name / "stacks" / "dev.yaml").write_text("config: {}\n")
    run(root, "run", "up", "--all", "--yes")
    return root


def test_a_workspace_root_shows_every_project_and_the_graph(tmp_path: Path) -> None:
    server = Server(make_workspace(tmp_path))
    try:
        stacks = {s["project"] + "/" + s["stack"]: s for s in httpx.get(f"{server.url}/api/stacks").json()}
        assert set(stacks) == {"network/dev", "app/dev"}
        assert stacks["app/dev"]["depends_on"] == ["network/dev"] and stacks["app/dev"]["status"] == "applied"
        picture = httpx.get(f"{server.url}/graph").text
        assert "<svg" in picture and "network/dev&#45;&gt;app/dev" in picture
        assert 'href="/stacks/app/dev"' in picture
        page = httpx.get(f"{server.url}/stacks/app/dev").text
        assert "out/app.txt" in page
    finally:
        server.stop()


def test_a_plan_for_a_new_stack_waits_in_the_view_and_the_stack_appears_once_applied(tmp_path: Path) -> None:
    """`run plan --out-dir` plans a stack the state does not have yet: the running view
    lists that plan as creating the stack, takes a review of it, and shows the stack
    its apply creates, with no restart; a stack of that name created some other way
    makes the plan stale."""
    root = make_workspace(tmp_path)
    (root / "stackwright-workspace.yaml").write_text(WORKSPACE.replace("stacks: [dev]\n  - path: app",
                                                                       "stacks: [dev, qa, uat]\n  - path: app"))
    for stack in ("qa", "uat"):
        (root / "network" / "stacks" / f"{stack}.yaml").write_text("config: {}\n")
    (root / "network" / "stackwright.yaml").write_text(
        "name: network\nenvironments:\n  qa:\n    required_approvals: 1\n    web_approvals: true\n")
    server = Server(root, "--dev-user", "bob@example.com")
    try:
        with httpx.Client(base_url=server.url) as client:
            run(root, "run", "plan", "--all", "--out-dir", "plans")
            plans = {p["project"] + "/" + p["stack"]: p for p in client.get("/api/plans").json()}
            qa = plans["network/qa"]
            assert qa["new_stack"] and qa["waiting"] and not qa["stale"] and qa["counts"] == {"create": 1}
            assert not plans["network/dev"]["new_stack"]
            run(root / "network", "stack", "init", "uat")
            uat = next(p for p in client.get("/api/plans").json() if p["stack"] == "uat")
            assert uat["new_stack"] and uat["stale"] and not uat["waiting"]
            assert "creates stack" in client.get("/plans").text
            page = client.get(f"/plans/{qa['plan_hash']}")
            assert "applying this plan creates it" in page.text and "out/vpc.txt" in page.text
            approved = client.post("/review", data={"plan": qa["plan_hash"], "decision": "approve",
                                                    "csrftoken": token(page)})
            assert approved.status_code == 303, approved.text
            assert client.get(f"/api/plans/{qa['plan_hash']}").json()["pending"]["approved_by"] == ["bob@example.com"]
            assert "network/qa" not in {s["project"] + "/" + s["stack"] for s in client.get("/api/stacks").json()}

            run(root / "network", "apply", "../plans/network/qa.plan", "--yes")
            stacks = {s["project"] + "/" + s["stack"]: s for s in client.get("/api/stacks").json()}
            assert stacks["network/qa"]["resources"] == 1 and stacks["network/qa"]["status"] == "applied"
            assert "network/qa" not in {p["project"] + "/" + p["stack"] for p in client.get("/api/plans").json()}
    finally:
        server.stop()
