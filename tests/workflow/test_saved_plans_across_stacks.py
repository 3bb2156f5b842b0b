"""Saved plans of stacks that read each other's outputs, as CI makes and applies them
(docs/ci.md): `run plan --all --out-dir`, then `apply` each plan in dependency order.

A dependent stack's plan shows what it reads from a stack not applied yet as known
after apply; once that stack is applied the value is known, and the plan applies. A
step the plan changes only for such values, which came out as recorded, is left
unchanged and says so (tests/unit/test_plan_compare.py has the refusals).

    network  random vpc id (``bytes`` sets its length), file ``net`` (``mode``)
    app      reads network/dev's vpc_id and net_sha (the sha256 of ``net``)
    web      reads app/dev's app_sha
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.conftest import cli_env, run_cli

WORKSPACE = """\
projects:
  - path: network
    stacks: [dev]
  - path: app
    depends_on: ["network/{stack}"]
    stacks: [dev]
  - path: web
    depends_on: ["app/{stack}"]
    stacks: [dev]
"""

PROGRAMS = {
    "network": """\
import stackwright as sw
from stackwright.providers import local, random

config = sw.Config()
vpc = random.Id("vpc", byte_length=config.get_int("bytes") or 4)
net = local.File("net", path="out/net.txt", content="net", mode=config.get_int("mode") or 0o644)
sw.export("vpc_id", vpc.hex)
sw.export("net_sha", net.sha256)
""",
    "app": """\
import stackwright as sw
from stackwright.providers import local

network = sw.StackReference(f"network/{sw.get_stack()}")
app = local.File("app", path="out/app.txt",
                 content=sw.fmt("vpc={} net={}", network.output("vpc_id"), network.output("net_sha")))
sw.export("app_vpc", network.output("vpc_id"))
sw.export("app_sha", app.sha256)
""",
    "web": """\
import stackwright as sw
from stackwright.providers import local

app = sw.StackReference("app/dev")
local.File("web", path="out/web.txt", content=sw.fmt("{}", app.output("app_sha")))
""",
}
ORDER = ("network", "app", "web")


def write_workspace(root: Path) -> None:
    root.mkdir()
    (root / "stackwright-workspace.yaml").write_text(WORKSPACE)
    for name, program in PROGRAMS.items():
        (root / name / "stacks").mkdir(parents=True)
        (root / name / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
        (root / name / "__main__.py").write_text(program)
        (root / name / "stacks" / "dev.yaml").write_text("config: {}\n")


def sw(root: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(root, *args, env=cli_env(), timeout=120)


def ok(root: Path, *args: str) -> str:
    code, out, err = sw(root, *args)
    assert code == 0, f"stackwright {' '.join(args)} failed ({code}):\n{out}\n{err}"
    assert "Traceback" not in out + err, out + err
    return out


def outputs(root: Path, project: str) -> dict[str, str]:
    lines = ok(root, "-C", project, "outputs", "--stack", "dev").splitlines()
    return dict(line.split(": ", 1) for line in lines)


def plan_all(root: Path, folder: str) -> Path:
    ok(root, "run", "plan", "--all", "--out-dir", folder)
    return root / folder


def apply(root: Path, plans: Path, project: str) -> str:
    return ok(root, "-C", project, "apply", str(plans / project / "dev.plan"), "--yes")


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    """Made for each test: the files' recorded ids are absolute paths, so a copy would
    update the original's files."""
    root = tmp_path / "ws"
    write_workspace(root)
    ok(root, "run", "up", "--all", "--yes")
    return root


def test_the_plans_of_a_new_workspace_apply_in_dependency_order(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_workspace(root)
    plans = plan_all(root, "plans")
    code, _, err = sw(root, "-C", "app", "apply", str(plans / "app" / "dev.plan"), "--yes")
    assert code == 1 and "stack network/dev has not been applied yet, so its output 'vpc_id' is unknown" in err
    for project in ORDER:
        assert "Applied plan" in apply(root, plans, project)
    vpc_id, app_sha = outputs(root, "network")["vpc_id"], outputs(root, "app")["app_sha"]
    assert (root / "app" / "out" / "app.txt").read_text().startswith(f"vpc={vpc_id} net=")
    assert (root / "web" / "out" / "web.txt").read_text() == app_sha


def test_a_change_to_an_output_other_stacks_read_applies_in_dependency_order(applied: Path) -> None:
    before = outputs(applied, "app")
    (applied / "network" / "stacks" / "dev.yaml").write_text("config: {bytes: 5}\n")
    plans = plan_all(applied, "plans")
    for project in ORDER:
        assert "Applied plan" in apply(applied, plans, project)
    vpc_id, after = outputs(applied, "network")["vpc_id"], outputs(applied, "app")
    assert len(vpc_id) == 10 and after["app_vpc"] == vpc_id != before["app_vpc"]
    assert (applied / "web" / "out" / "web.txt").read_text() == after["app_sha"] != before["app_sha"]


def test_a_step_awaiting_values_that_came_out_as_recorded_is_left_unchanged(applied: Path) -> None:
    """``net``'s mode changes: its sha256 is known after apply, so app's file and, after
    it, web's are planned as updates; both come out as recorded."""
    app_file = applied / "app" / "out" / "app.txt"
    written = app_file.stat().st_mtime_ns
    (applied / "network" / "stacks" / "dev.yaml").write_text("config: {mode: 384}\n")
    plans = plan_all(applied, "plans")
    assert "1 update" in apply(applied, plans, "network")
    out = apply(applied, plans, "app")
    assert out.splitlines()[0].startswith("Plan ") and out.splitlines()[0].endswith(" changes nothing now.")
    assert ("local:File app: left unchanged, although the plan says update: content, left unknown by the "
            "plan, is known now (read from stack network/dev output net_sha, stack network/dev output vpc_id) "
            "and came out as recorded") in out
    assert app_file.stat().st_mtime_ns == written
    out = apply(applied, plans, "web")
    assert "local:File web: left unchanged, although the plan says update" in out
    assert "(read from stack app/dev output app_sha)" in out
    events = ok(applied, "-C", "app", "audit", "--json")
    assert '"left_unchanged": [' in events and "dev::app::local:File::app" in events
