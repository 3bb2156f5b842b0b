"""On the local AWS emulator, through the real CLI: a security group replaced
delete-first is never deleted for a callback's value of the wrong type (the preview
fails, nothing is applied), and one deleted with boto3 behind Stackwright's back fails
its update with the way out, `refresh --yes`, after which `up` creates it again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aws.conftest import emulator_client, unique
from aws.test_drift_cli import cli
from stackwright.providers.aws import localcloud

pytestmark = pytest.mark.aws

PROGRAM = """\
import stackwright as sw
from stackwright.providers.aws import ec2

vpc = ec2.Vpc("vpc", cidr_block="10.2.0.0/16")
sg = ec2.SecurityGroup("web2", name="{name}", vpc_id={vpc_id}, tags={{"team": "{team}"}},
                       opts=sw.ResourceOptions(delete_before_replace=True))
"""


def _project(root: Path, endpoint: str, name: str) -> Path:
    (root / "stacks").mkdir(parents=True)
    _write(root, name)
    (root / "stackwright.yaml").write_text("name: groups\nmain: __main__.py\n")
    config = {"aws": {"region": "us-east-1", "endpoint": endpoint,
                      "credentials": dict(localcloud.LOCAL_CREDENTIALS)}}
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": config}))
    code, out, err = cli(root, "stack", "init", "dev")
    assert code == 0, out + err
    return root


def _write(root: Path, name: str, vpc_id: str = "vpc.id", team: str = "web") -> None:
    (root / "__main__.py").write_text(PROGRAM.format(name=name, vpc_id=vpc_id, team=team))


def _group_ids(ec2: object, name: str) -> list[str]:
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])  # type: ignore[attr-defined]
    return [g["GroupId"] for g in found["SecurityGroups"]]


def test_a_wrong_type_never_deletes_the_group_and_a_gone_group_says_to_refresh(
        aws_endpoint: str, tmp_path: Path) -> None:
    name = unique("revcore-web2")
    root = _project(tmp_path / "sg", aws_endpoint, name)
    code, out, err = cli(root, "up", "--yes")
    assert code == 0, out + err
    ec2 = emulator_client(aws_endpoint, "ec2")
    [group] = _group_ids(ec2, name)

    _write(root, name, vpc_id="vpc.id.apply(lambda v: 5)")
    for command in (("preview", "--diff"), ("up", "--yes")):
        code, out, err = cli(root, *command)
        assert code == 1 and "SecurityGroup::web2.vpc_id: expected str, got int 5" in err, out + err
        assert "__main__.py:5" in err and "ParamValidationError" not in out + err
    assert _group_ids(ec2, name) == [group]

    _write(root, name, team="platform")
    ec2.delete_security_group(GroupId=group)
    code, out, err = cli(root, "up", "--yes")
    assert code == 1 and "InvalidGroup.NotFound" in out + err
    assert ("hint: it may have been deleted outside Stackwright: `stackwright refresh --yes` "
            "(or `stackwright up --refresh`) records that it is gone") in out + err

    assert cli(root, "refresh", "--yes")[0] == 0
    code, out, err = cli(root, "up", "--yes")
    assert code == 0, out + err
    assert len(_group_ids(ec2, name)) == 1
