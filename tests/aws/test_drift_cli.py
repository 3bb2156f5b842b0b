"""Drift on the local AWS emulator, through the real CLI: tags changed with boto3 behind
Stackwright's back are reported by `refresh` (JSON and exit code), and the next
`up --refresh` puts them back, or says that ignore_changes keeps them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws.conftest import emulator_client, tag_map, unique
from stackwright.providers.aws import localcloud

pytestmark = pytest.mark.aws

PROGRAM = """\
import stackwright as sw
from stackwright.providers.aws import s3

s3.Bucket("restored", bucket="{restored}", tags={{"team": "web"}})
s3.Bucket("kept", bucket="{kept}", tags={{"team": "web"}},
          opts=sw.ResourceOptions(ignore_changes=["tags"]))
"""


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWRIGHT_")}
    env["STACKWRIGHT_USER"] = "tester"
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def project(root: Path, endpoint: str, names: dict[str, str]) -> Path:
    root.mkdir()
    (root / "stackwright.yaml").write_text("name: drift\nmain: __main__.py\n")
    (root / "__main__.py").write_text(PROGRAM.format(**names))
    (root / "stacks").mkdir()
    config = {"aws": {"region": "us-east-1", "endpoint": endpoint,
                      "credentials": dict(localcloud.LOCAL_CREDENTIALS)}}
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": config}))
    assert cli(root, "stack", "init", "dev")[0] == 0
    return root


def retag(s3: Any, bucket: str, team: str) -> None:
    """Change the team tag out of band, keeping every other tag (Stackwright's own too)."""
    tags = tag_map(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    tags["team"] = team
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def test_tags_changed_with_boto3_are_reported_and_put_back_or_kept(aws_endpoint: str, tmp_path: Path) -> None:
    names = {"restored": unique("drift-restored"), "kept": unique("drift-kept")}
    root = project(tmp_path / "drift", aws_endpoint, names)
    code, out, err = cli(root, "up", "--yes")
    assert code == 0, out + err
    s3 = emulator_client(aws_endpoint, "s3")
    for bucket in names.values():
        retag(s3, bucket, "data")

    code, out, _ = cli(root, "refresh", "--json", "--exit-code")
    assert code == 2
    found = json.loads(out)
    diffs = {d["urn"].rsplit("::", 1)[1]: d["diffs"] for d in found["drift"]}
    assert diffs == {name: [{"path": "tags.team", "kind": "update", "old": "web", "new": "data"}]
                     for name in ("restored", "kept")}

    code, out, err = cli(root, "up", "--refresh", "--yes", "--json")
    assert code == 0, err
    steps = {s["urn"].rsplit("::", 1)[1]: s for s in json.loads(out)["plan"]["steps"]}
    assert steps["restored"]["op"] == "update"
    assert steps["kept"]["op"] == "same"
    assert steps["kept"]["notes"] == ['tags: kept at {"team": "data"}, not set to the declared '
                                      '{"team": "web"}: ignore_changes lists it']
    assert tag_map(s3.get_bucket_tagging(Bucket=names["restored"])["TagSet"])["team"] == "web"
    assert tag_map(s3.get_bucket_tagging(Bucket=names["kept"])["TagSet"])["team"] == "data"
    code, out, _ = cli(root, "refresh", "--json", "--exit-code")
    assert code == 0 and json.loads(out)["drift"] == []

    code, out, err = cli(root, "destroy", "--yes", "--allow-destroy", "--json")
    assert code == 0, err
    assert json.loads(out)["done"] == {"delete": 2}
