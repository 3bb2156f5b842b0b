"""docs/cloudformation.md runs as written: its files make a project, its commands
deploy the folder of templates to the local cloud in export order and remove it again.

What the emulator holds is checked with our own boto3 client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aws.conftest import emulator_client
from stackwright.providers.aws import localcloud

pytestmark = pytest.mark.aws

DOC = Path(__file__).resolve().parents[2] / "docs" / "cloudformation.md"
FILE_BLOCK = re.compile(r"`([\w./-]+)`[^`]*?:\n\n```\w*\n(.*?)```", re.S)
COMMANDS = re.compile(r"```sh[^\n]*\n(stackwright local-cloud start\n.*?)```", re.S)


def doc_files() -> dict[str, str]:
    """``path: content`` of every code block the doc introduces with its file name."""
    return {path: body for path, body in FILE_BLOCK.findall(DOC.read_text())}


def doc_commands() -> list[list[str]]:
    block = COMMANDS.search(DOC.read_text())
    assert block, "the doc's command block"
    return [line.split()[1:] for line in block.group(1).splitlines()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    for path, body in doc_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
    return root


def test_the_folder_of_templates_deploys_in_export_order(project: Path, tmp_path: Path) -> None:
    assert {"__main__.py", "templates/network.yaml", "templates/app.yaml", "stacks/dev.yaml"} <= set(doc_files())
    port = localcloud.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
    env.update(STACKWRIGHT_USER="tester", STACKWRIGHT_LOCAL_CLOUD_PORT=str(port),
               STACKWRIGHT_LOCAL_CLOUD_HOME=str(tmp_path / "cloud"))
    outputs: dict[str, str] = {}
    try:
        for args in doc_commands():
            done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=project, env=env,
                                  capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"stackwright {' '.join(args)}:\n{done.stdout}{done.stderr}"
            outputs[args[0]] = done.stdout
            if args[0] == "up":
                check_deployed(f"http://127.0.0.1:{port}")
    finally:
        subprocess.run([sys.executable, "-m", "stackwright.cli.main", "local-cloud", "stop"], cwd=project,
                       env=env, capture_output=True, timeout=60)
    preview = outputs["preview"]
    assert preview.index("Stack network") < preview.index("Stack app"), preview
    assert "Destroy succeeded" in outputs["destroy"], outputs["destroy"]


def check_deployed(url: str) -> None:
    cfn, ec2 = emulator_client(url, "cloudformation"), emulator_client(url, "ec2")
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    vpc_id = exports["dev-network-VpcId"]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.10.0.0/16"
    app = cfn.describe_stacks(StackName="dev-app")["Stacks"][0]
    group_id = {o["OutputKey"]: o["OutputValue"] for o in app["Outputs"]}["SecurityGroupId"]
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["VpcId"] == vpc_id


def test_a_parameter_outside_allowed_values_fails_the_preview_as_the_doc_says(project: Path) -> None:
    """Planning needs no cloud: the check runs before any AWS call."""
    dev = project / "stacks" / "dev.yaml"
    dev.write_text(dev.read_text().replace("EnvName: dev", "EnvName: qa").replace("endpoint: local",
                                                                                   "endpoint: http://127.0.0.1:9"))
    env = {**os.environ, "STACKWRIGHT_USER": "tester"}
    run = [sys.executable, "-m", "stackwright.cli.main"]
    assert subprocess.run([*run, "stack", "init", "dev"], cwd=project, env=env, capture_output=True).returncode == 0
    done = subprocess.run([*run, "preview"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    quoted = re.search(r"^(stack 'dev-network': parameter .*)$", DOC.read_text(), re.M)
    assert quoted and quoted.group(1) in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
