"""`stackwright run`'s command-line mistakes are usage errors, each told apart: exit 2
as click's own, a message naming the options, and nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.conftest import cli_env, run_cli
from support import write_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path, {"app": ""}, "projects:\n  - path: app\n")


def usage_error(root: Path, *args: str) -> str:
    env = {k: v for k, v in cli_env().items() if k not in ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT")}
    code, out, err = run_cli(root, "--color", "never", "run", *args, env=env)
    assert code == 2, out + err
    assert "Traceback" not in out + err and err.startswith("error: "), err
    assert not (root / "app" / ".stackwright").exists()  # nothing was created
    return err.splitlines()[0]


@pytest.mark.parametrize("shard", ["3/2", "0/2", "two"])
def test_an_invalid_shard_is_a_usage_error_as_a_missing_run_id_is(workspace: Path, shard: str) -> None:
    error = usage_error(workspace, "up", "--all", "--yes", "--shard", shard, "--run-id", "x")
    assert "--shard" in error and repr(shard) in error and "1 <= I <= K" in error
    assert "--run-id" in usage_error(workspace, "up", "--all", "--yes", "--shard", "1/2")


def test_all_and_changed_since_together_are_said_to_exclude_each_other(workspace: Path) -> None:
    error = usage_error(workspace, "preview", "--all", "--changed-since", "HEAD")
    assert "--all and --changed-since" in error and "exclusive" in error
    assert "choose the stacks: --all, or --changed-since GIT_REF" in usage_error(workspace, "preview")
