"""The staging gate and `env pause|resume`, through the real `stackwright` command.

A project with stacks ``staging`` and ``production`` (``gate: staging``) whose config
lists node groups with sizes; the program writes one file per node group holding its
sizes, so what an apply did can be read off the disk and off the recorded state.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from cli.conftest import CliProject

PROGRAM = """\
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
for group in config.require_object("node_groups"):
    local.File(f"group-{group['name']}", path=sw.fmt("out/{}/{}.txt", sw.get_stack(), group["name"]),
               content=f"desired={group['desired_size']} min={group['min_size']}")
"""

# Fails to update while everything is scaled to zero: a pause whose apply fails.
GUARDED = PROGRAM + """\
total = sum(group["desired_size"] for group in config.require_object("node_groups"))
local.Command("guard", create="true", update=f"test {total} -gt 0")
"""

PROJECT = """\
name: proj
main: __main__.py
environments:
  staging:
    pause: {"node_groups[*].desired_size": 0, "node_groups[*].min_size": 0}
  production:
    gate: staging
"""

STAGING = """\
# staging: paused at night with `stackwright env pause staging`
config:
  greeting: hello   # not touched by a pause
  node_groups:
    - name: general   # always on
      desired_size: 2
      min_size: 1
    # batch jobs run on spot capacity
    - name: batch
      desired_size: 1
      min_size: 1

# end of the staging stack
"""

PRODUCTION = """\
config:
  greeting: hello
  node_groups:
    - {name: general, desired_size: 6, min_size: 3}
"""

GATE_HINT = "hint: apply this program to staging first (stackwright up --stack staging), then retry"


def make_project(root: Path, program: str = PROGRAM) -> CliProject:
    root.mkdir()
    (root / "stackwright.yaml").write_text(PROJECT)
    (root / "__main__.py").write_text(program)
    (root / "stacks").mkdir()
    (root / "stacks" / "staging.yaml").write_text(STAGING)
    (root / "stacks" / "production.yaml").write_text(PRODUCTION)
    proj = CliProject(root)
    for stack in ("staging", "production"):
        proj.ok("stack", "init", stack)
    return proj


@pytest.fixture
def proj(tmp_path: Path) -> CliProject:
    return make_project(tmp_path / "proj")


def program_digest(proj: CliProject) -> str:
    from stackwright.program.digest import program_digest as digest
    from stackwright.program.project import load_project

    return digest(load_project(proj.root))


def sizes(proj: CliProject, stack: str, group: str) -> str:
    return proj.file(f"out/{stack}/{group}.txt").read_text()


def stack_text(proj: CliProject, stack: str = "staging") -> str:
    return proj.file(f"stacks/{stack}.yaml").read_text()


# --- the gate ------------------------------------------------------------------------------


def test_production_is_refused_until_staging_has_applied_the_program(proj: CliProject) -> None:
    err = proj.fails("up", "--yes", "--stack", "production")
    assert "gated on staging, which has never applied a program successfully" in err
    assert program_digest(proj)[:12] in err
    assert GATE_HINT in err
    assert not proj.file("out/production").exists()

    proj.ok("up", "--yes", "--stack", "staging")
    proj.ok("up", "--yes", "--stack", "production")
    assert sizes(proj, "production", "general") == "desired=6 min=3"


def test_a_program_edit_closes_the_gate_until_staging_applies_it(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    proj.ok("up", "--yes", "--stack", "production")
    applied = program_digest(proj)

    proj.append_program('local.File("motd", path=sw.fmt("out/{}/motd.txt", sw.get_stack()), content="hi")\n')
    edited = program_digest(proj)
    err = proj.fails("up", "--yes", "--stack", "production")
    assert "staging last succeeded at " in err and "on stack 'staging'" in err
    assert f"with program {applied[:12]}; this program is {edited[:12]}" in err
    assert GATE_HINT in err
    assert not proj.file("out/production/motd.txt").exists()

    proj.ok("up", "--yes", "--stack", "staging")
    proj.ok("up", "--yes", "--stack", "production")
    assert proj.file("out/production/motd.txt").read_text() == "hi"


def test_config_may_differ_between_staging_and_production(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    proj.file("stacks/production.yaml").write_text(PRODUCTION.replace("desired_size: 6", "desired_size: 9"))
    proj.file("stacks/staging.yaml").write_text(STAGING.replace("desired_size: 2", "desired_size: 3"))
    proj.ok("up", "--yes", "--stack", "production")
    assert sizes(proj, "production", "general") == "desired=9 min=3"


def test_only_successful_whole_program_applies_of_staging_count(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    proj.append_program('local.Command("boom", create="exit 3")\n')
    code, _, _ = proj.run("up", "--yes", "--stack", "staging")
    assert code == 1
    assert "has never" not in proj.fails("up", "--yes", "--stack", "production")

    # A targeted update applies part of the program: it proves nothing about the rest.
    proj.write_program(PROGRAM + 'local.File("motd", path="out/motd.txt", content="hi")\n', header=False)
    proj.ok("up", "--yes", "--stack", "staging", "--target", "staging::proj::local:File::motd")
    proj.fails("up", "--yes", "--stack", "production")


def test_a_staging_update_with_no_changes_still_opens_the_gate(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    proj.append_program("# a refactoring: no resource changes\n")
    proj.fails("up", "--yes", "--stack", "production")
    assert "No changes" in proj.ok("up", "--yes", "--stack", "staging")
    proj.ok("up", "--yes", "--stack", "production")


def test_env_status_shows_the_gate_and_the_pause(proj: CliProject) -> None:
    out = proj.ok("env", "status", "production")
    assert "environment production" in out and "gate: closed" in out and "paused: no" in out
    proj.ok("up", "--yes", "--stack", "staging")
    assert "gate: open (staging applied this program)" in proj.ok("env", "status", "production")
    assert "gate: none" in proj.ok("env", "status", "staging")


# --- pause and resume ----------------------------------------------------------------------


def test_pause_scales_to_zero_and_resume_restores_keeping_the_file(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    assert sizes(proj, "staging", "general") == "desired=2 min=1"

    out = proj.ok("env", "pause", "staging", "--yes")
    assert "node_groups[name=general].desired_size: 2 -> 0" in out
    assert "node_groups[name=batch].min_size: 1 -> 0" in out
    assert "local:File group-general  update" in out  # the preview
    assert "Pause succeeded" in out and "env resume staging" in out
    assert sizes(proj, "staging", "general") == "desired=0 min=0"
    assert sizes(proj, "staging", "batch") == "desired=0 min=0"
    shown = proj.ok("state", "show", "staging::proj::local:File::group-general", "--stack", "staging")
    assert "desired=0 min=0" in shown

    text = stack_text(proj)
    for line in STAGING.splitlines():
        if "#" in line:
            assert line.replace("desired_size: 2", "desired_size: 0") in text
    saved = yaml.safe_load(text)
    assert [g["desired_size"] for g in saved["config"]["node_groups"]] == [0, 0]
    assert saved["paused"]["by"] == "tester"
    assert saved["paused"]["values"] == {
        "node_groups[name=general].desired_size": 2, "node_groups[name=batch].desired_size": 1,
        "node_groups[name=general].min_size": 1, "node_groups[name=batch].min_size": 1,
    }

    out = proj.ok("env", "resume", "staging", "--yes")
    assert "node_groups[name=general].desired_size: 0 -> 2" in out
    assert "Resume succeeded" in out
    assert stack_text(proj) == STAGING
    assert sizes(proj, "staging", "general") == "desired=2 min=1"
    assert sizes(proj, "staging", "batch") == "desired=1 min=1"


def test_pause_twice_resume_unpaused_and_no_pause_settings_are_refused(proj: CliProject) -> None:
    err = proj.fails("env", "resume", "staging", "--yes")
    assert "stack 'staging' is not paused" in err and "env pause staging" in err

    err = proj.fails("env", "pause", "production", "--yes")
    assert "environment 'production' declares no `pause:` settings" in err

    proj.ok("env", "pause", "staging", "--yes")
    paused = stack_text(proj)
    err = proj.fails("env", "pause", "staging", "--yes")
    assert "stack 'staging' is already paused (since " in err and "by tester" in err
    assert "env resume staging" in err
    assert stack_text(proj) == paused


def test_pause_without_confirmation_changes_nothing(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "staging")
    err = proj.fails("env", "pause", "staging")
    assert "refusing to change anything without confirmation" in err
    assert stack_text(proj) == STAGING
    assert sizes(proj, "staging", "general") == "desired=2 min=1"


def test_a_failed_pause_keeps_the_edit_and_says_how_to_resume(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "proj", GUARDED)
    proj.ok("up", "--yes", "--stack", "staging")
    code, out, err = proj.run("env", "pause", "staging", "--yes")
    assert code == 1, out + err
    assert "The paused values stay in stacks/staging.yaml" in err
    assert "`stackwright env resume staging`" in err and "`stackwright up --stack staging`" in err
    assert "paused:" in stack_text(proj)

    out = proj.ok("env", "resume", "staging", "--yes")
    assert stack_text(proj) == STAGING
    assert sizes(proj, "staging", "general") == "desired=2 min=1"


def test_pause_adds_missing_keys_and_resume_removes_them(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "proj", PROGRAM.replace("group['min_size']", "group.get('min_size', 1)"))
    without_min = textwrap.dedent("""\
        config:
          node_groups:
            - name: general
              desired_size: 2
        # trailing comment
        """)
    proj.file("stacks/staging.yaml").write_text(without_min)
    proj.ok("up", "--yes", "--stack", "staging")
    out = proj.ok("env", "pause", "staging", "--yes")
    assert "node_groups[name=general].min_size: (absent) -> 0" in out
    assert "      min_size: 0\n# trailing comment\n" in stack_text(proj)
    out = proj.ok("env", "resume", "staging", "--yes")
    assert "node_groups[name=general].min_size: 0 -> (removed)" in out
    assert stack_text(proj) == without_min
