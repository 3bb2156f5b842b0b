"""CloudFormation stacks in different projects of a workspace are ordered by their
templates' exports and imports, with no ``depends_on``: `run up` creates the exporting
stack first, `run destroy` deletes the importing one first, and stacks that import
from each other are an error naming both stacks and both templates.

The workspace lists the importing project (``apps``) before the exporting one
(``net``), so workspace order alone would get it wrong. What the emulator holds is
checked through our own boto3 client.
"""

from __future__ import annotations

import sys
from pathlib import Path
import pytest

from aws.conftest import emulator_client
from cloudformation_templates import APP, NETWORK
from stackwright.cli.main import main

pytestmark = pytest.mark.aws

WORKSPACE = """\
projects:
  - path: apps
    stacks: [dev]
  - path: net
    stacks: [dev]
"""

PROGRAM = """\
import stackwright as sw
from stackwright.providers.aws import cloudformation

env = sw.get_stack()
stack = cloudformation.Stack({name!r}, name=f"{{env}}-{name}", template={template!r},
                             parameters={parameters})
sw.export("outputs", stack.outputs)
"""

CYCLIC = """\
Parameters:
  Other: {Type: String}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !ImportValue
        Fn::Sub: '${Other}-Name'
Outputs:
  Name:
    Value: !GetAtt Topic.TopicName
    Export: {Name: !Sub '${AWS::StackName}-Name'}
"""


def write(root: Path, projects: dict[str, str], endpoint: str = "http://127.0.0.1:1") -> Path:
    """A workspace of ``projects`` (name: program), each with a ``dev`` stack on ``endpoint``."""
    root.mkdir(parents=True)
    listed = "".join(f"  - path: {name}\n    stacks: [dev]\n" for name in projects)
    (root / "stackwright-workspace.yaml").write_text("projects:\n" + listed)
    for name, program in projects.items():
        folder = root / name
        (folder / "stacks").mkdir(parents=True)
        (folder / "stackwright.yaml").write_text(f"name: {name}\n")
        (folder / "__main__.py").write_text(program)
        (folder / "stacks" / "dev.yaml").write_text(
            f"config:\n  aws: {{region: us-east-1, endpoint: '{endpoint}'}}\n")
    return root


def program(name: str, template: str, parameters: str) -> str:
    return PROGRAM.format(name=name, template=template, parameters=parameters)


APPS = program("app", APP, '{"NetworkStack": f"{env}-network"}')
NET = program("network", NETWORK, '{"EnvName": "dev"}')


def stackwright(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The CLI's entry point, called in this process; its exit code and output."""
    sys.argv = ["stackwright", *args, "--as", "tester"]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(autouse=True)
def argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_run_orders_stacks_by_exports_and_imports(tmp_path: Path, aws_endpoint: str,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path / "ws", {"apps": APPS, "net": NET}, aws_endpoint)
    monkeypatch.chdir(root)
    cfn = emulator_client(aws_endpoint, "cloudformation")

    code, out = stackwright("run", "preview", "--all", capsys=capsys)
    assert code == 0, out
    assert out.index("--- net/dev") < out.index("--- apps/dev"), out

    code, out = stackwright("run", "up", "--all", "--yes", capsys=capsys)
    assert code == 0, out
    assert out.index("--- net/dev") < out.index("--- apps/dev"), out
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    app = cfn.describe_stacks(StackName="dev-app")["Stacks"][0]
    group_id = {o["OutputKey"]: o["OutputValue"] for o in app["Outputs"]}["GroupId"]
    ec2 = emulator_client(aws_endpoint, "ec2")
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["VpcId"] == \
        exports["dev-network-VpcId"]

    code, out = stackwright("run", "destroy", "--all", "--yes", capsys=capsys)
    assert code == 0, out  # CloudFormation refuses to delete an export in use: apps went first
    assert out.index("--- apps/dev") < out.index("--- net/dev"), out
    names = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"}
    assert not {"dev-app", "dev-network"} & names


def test_stacks_that_import_from_each_other_are_a_cycle_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pings = program("ping", CYCLIC, '{"Other": f"{env}-pong"}')
    pongs = program("pong", CYCLIC, '{"Other": f"{env}-ping"}')
    root = write(tmp_path / "ws", {"pings": pings, "pongs": pongs})
    monkeypatch.chdir(root)
    code, out = stackwright("run", "preview", "--all", capsys=capsys)
    assert code == 1
    assert "cycle" in out, out
    assert "pings/dev (ping) imports 'dev-pong-Name' exported by pongs/dev (pong)" in out, out
    assert "pongs/dev (pong) imports 'dev-ping-Name' exported by pings/dev (ping)" in out, out


def test_a_program_that_fails_fails_only_its_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Finding exports runs each program; one that raises is that stack's failure, once."""
    broken = "import stackwright as sw\nraise RuntimeError('no network today')\n"
    root = write(tmp_path / "ws", {"apps": APPS, "net": broken})
    monkeypatch.chdir(root)
    code, out = stackwright("run", "preview", "--all", capsys=capsys)
    assert code == 1
    assert out.count("no network today") == 1, out
    assert "--- apps/dev (preview): ok" in out and "--- net/dev (preview): failed" in out, out
