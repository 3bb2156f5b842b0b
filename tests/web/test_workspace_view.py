"""The web view at a workspace root: every project's stacks, named project/stack, and the
workspace graph with the dependencies the workspace file declares."""

from __future__ import annotations

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
