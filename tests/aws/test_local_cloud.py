"""One local cloud per user and machine: started, inspected and stopped from any folder
(a workspace root has no project), found by `endpoint: local` from any project; an
explicit loopback endpoint works without credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws.conftest import emulator_client
from stackwright.providers.aws import localcloud

pytestmark = pytest.mark.aws

PROGRAM = '''
import stackwright as sw
from stackwright.providers.aws import cloudformation

template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": sw.get_project()}}}}
cloudformation.Stack("queue", name=f"{sw.get_project()}-queue", template=template)
'''


class Cli:
    def __init__(self, home: Path, port: int) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKWRIGHT_", "AWS_"))}
        self.env.update(STACKWRIGHT_USER="tester", STACKWRIGHT_LOCAL_CLOUD_HOME=str(home),
                        STACKWRIGHT_LOCAL_CLOUD_PORT=str(port),
                        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)

    def run(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)

    def ok(self, cwd: Path, *args: str) -> str:
        done = self.run(cwd, *args)
        assert done.returncode == 0, f"stackwright {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout


def project(root: Path, name: str, endpoint: str) -> Path:
    folder = root / name
    (folder / "stacks").mkdir(parents=True)
    (folder / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
    (folder / "__main__.py").write_text(PROGRAM)
    (folder / "stacks" / "dev.yaml").write_text(f"config:\n  aws:\n    region: us-east-1\n    endpoint: {endpoint}\n")
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Cli, Path, int]]:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "stackwright-workspace.yaml").write_text("projects:\n  - path: alpha\n  - path: beta\n")
    port = localcloud.free_port()
    cli = Cli(tmp_path / "cloud", port)
    try:
        yield cli, root, port
    finally:
        cli.run(root, "local-cloud", "stop")


def test_one_local_cloud_serves_every_project(workspace: tuple[Cli, Path, int]) -> None:
    cli, root, port = workspace
    assert cli.run(root, "local-cloud", "status").returncode == 3
    assert f"http://127.0.0.1:{port}" in cli.ok(root, "local-cloud", "start")
    assert f"http://127.0.0.1:{port}" in cli.ok(root / "..", "local-cloud", "status")

    for folder in [project(root, name, "local") for name in ("alpha", "beta")]:
        cli.ok(folder, "stack", "init", "dev")
        cli.ok(folder, "up", "--yes")
    sqs = emulator_client(f"http://127.0.0.1:{port}", "sqs")
    assert {u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]} >= {"alpha", "beta"}
    cli.ok(root / "beta", "destroy", "--yes")

    assert "Local cloud stopped." in cli.ok(root, "local-cloud", "stop")
    failed = cli.run(root / "alpha", "preview")
    assert failed.returncode != 0 and "local-cloud start" in failed.stdout + failed.stderr


def test_an_explicit_loopback_endpoint_needs_no_credentials(tmp_path: Path, aws_endpoint: str) -> None:
    """No AWS credentials anywhere in the environment: the emulator's dummy ones are used."""
    cli = Cli(tmp_path / "cloud", localcloud.free_port())
    folder = project(tmp_path, "gamma", aws_endpoint)
    cli.ok(folder, "stack", "init", "dev")
    cli.ok(folder, "up", "--yes")
    cfn = emulator_client(aws_endpoint, "cloudformation")
    assert cfn.describe_stacks(StackName="gamma-queue")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cli.ok(folder, "destroy", "--yes")


@pytest.mark.parametrize("variable", ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])
def test_a_profile_named_in_the_environment_is_not_looked_up_for_a_loopback_endpoint(
        tmp_path: Path, aws_endpoint: str, variable: str) -> None:
    """A CI job or container sets a profile its machine has no config for: the emulator's
    dummy credentials are used all the same, and the profile is never read."""
    cli = Cli(tmp_path / "cloud", localcloud.free_port())
    cli.env[variable] = "missing"
    folder = project(tmp_path, f"delta-{variable.lower().replace('_', '-')}", aws_endpoint)
    cli.ok(folder, "stack", "init", "dev")
    out = cli.ok(folder, "up", "--yes")
    assert "ProfileNotFound" not in out, out
    cli.ok(folder, "destroy", "--yes")
