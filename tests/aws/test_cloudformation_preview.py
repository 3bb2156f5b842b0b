"""A CloudFormation stack that exists shows its change set in `stackwright preview`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aws.conftest import emulator_client

pytestmark = pytest.mark.aws

PROGRAM = '''
import stackwright as sw
from stackwright.providers.aws import cloudformation

queues = sw.Config().require_object("queues")
template = {"Resources": {q: {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": q}} for q in queues}}
cloudformation.Stack("queues", name="queues-preview", template=template)
'''


def stack_file(endpoint: str, queues: list[str]) -> str:
    return (f"config:\n  aws:\n    region: us-east-1\n    endpoint: {endpoint}\n"
            f"    credentials: {{access_key_id: testing, secret_access_key: testing}}\n"
            f"  queues: [{', '.join(queues)}]\n")


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=project,
                          capture_output=True, text=True, env={**os.environ, "STACKWRIGHT_USER": "tester"})


def test_preview_shows_the_change_set_and_executes_nothing(tmp_path: Path, aws_endpoint: str) -> None:
    (tmp_path / "stackwright.yaml").write_text("name: cfn\nmain: __main__.py\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks/dev.yaml").write_text(stack_file(aws_endpoint, ["alpha"]))
    assert run(tmp_path, "stack", "init", "dev").returncode == 0
    assert run(tmp_path, "up", "--yes").returncode == 0

    (tmp_path / "stacks/dev.yaml").write_text(stack_file(aws_endpoint, ["alpha", "beta"]))
    preview = run(tmp_path, "preview")
    assert preview.returncode == 0, preview.stderr
    assert "change set: Add beta (AWS::SQS::Queue)" in preview.stdout

    cfn = emulator_client(aws_endpoint, "cloudformation")
    resources = cfn.describe_stack_resources(StackName="queues-preview")["StackResources"]
    assert [r["LogicalResourceId"] for r in resources] == ["alpha"]
    left = [c["ChangeSetName"] for c in cfn.list_change_sets(StackName="queues-preview")["Summaries"]]
    assert not [name for name in left if name.startswith("stackwright-preview-")]
    assert run(tmp_path, "destroy", "--yes").returncode == 0
