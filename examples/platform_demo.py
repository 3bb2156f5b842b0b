"""The platform example on the local cloud, as a platform engineer would drive it.

Called by demo.py with a scratch folder. Starts moto's server, brings up the `dev`
stack of examples/platform, changes config, proves drift detection with a change made
behind Stackwright's back through boto3, destroys everything and stops the emulator.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import boto3

from demo import check, say, sw

HERE = Path(__file__).resolve().parent


def behind_our_back(endpoint: str, bucket: str) -> None:
    """What a colleague does in the console: suspend versioning on a bucket."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def main(work: Path) -> None:
    from stackwright.providers.aws import localcloud

    project = work / "platform"
    shutil.copytree(HERE / "platform", project, ignore=shutil.ignore_patterns(".stackwright"))
    port = localcloud.free_port()
    say("Start the local cloud (moto's server on 127.0.0.1) and the dev stack")
    sw(project, "local-cloud", "start", "--port", str(port))
    try:
        story(project, f"http://127.0.0.1:{port}")
    finally:
        sw(project, "local-cloud", "stop")


def story(project: Path, endpoint: str) -> None:
    sw(project, "stack", "init", "dev")
    say("Bring up the platform: network across 3 AZs, EKS, IRSA roles, buckets, table, DNS, alarms")
    text = sw(project, "up", "--yes")
    check("Update succeeded" in text, "the dev stack is up")
    outputs = sw(project, "outputs")
    check("oidc_issuer: https://" in outputs, "the cluster's OIDC issuer is exported")
    say("Scale the node group and move it to bigger instances: a config edit")
    stack_file = project / "stacks/dev.yaml"
    text = stack_file.read_text()
    stack_file.write_text(text.replace("instance_types: [t3.medium]", "instance_types: [t3.large]")
                          .replace("desired_size: 2", "desired_size: 3"))
    text = sw(project, "preview", "--diff")
    check("1 to replace" in text and "[forces replacement]" in text and "to update" not in text,
          "exactly the node group changes, and its instance type forces a replacement")
    sw(project, "up", "--yes")
    sw(project, "history")
    check("no drift" in sw(project, "refresh"), "refresh finds no drift")
    say("A colleague suspends versioning on a bucket in the console")
    behind_our_back(endpoint, "platform-dev-assets")
    text = sw(project, "refresh")
    check("1 drifted" in text and "versioning" in text, "refresh reports the bucket's versioning drift")
    say("`up --refresh` puts it back")
    sw(project, "up", "--refresh", "--yes")
    check("no drift" in sw(project, "refresh"), "versioning is restored")
    say("Destroy the stack")
    text = sw(project, "destroy", "--yes", "--allow-destroy")
    check("Destroy succeeded" in text, "everything is deleted")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
