"""A moto server on a free 127.0.0.1 port for the AWS tests (started once per session)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwright.providers.aws import localcloud


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    port = localcloud.free_port()
    proc = localcloud.spawn(port, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not localcloud.is_serving(url):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "moto server did not start"
        time.sleep(0.1)
    localcloud.warm_up(url)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def aws_config(aws_endpoint: str) -> dict[str, object]:
    """Provider config pointing at the emulator with its dummy credentials."""
    return {"region": "us-east-1", "endpoint_url": aws_endpoint,
            "credentials": dict(localcloud.LOCAL_CREDENTIALS)}


def s3_state_url_on(endpoint: str) -> str:
    """A fresh versioned bucket on the emulator, as an S3 state URL."""
    import uuid

    import boto3

    bucket = f"state-{uuid.uuid4().hex[:16]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return f"s3://{bucket}/team/state?endpoint={endpoint}&region=us-east-1"


@pytest.fixture
def s3_state_url(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An S3 state URL on a fresh bucket of the emulator; the emulator's credentials are
    in the environment, so child processes and the CLI reach it too."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3_state_url_on(aws_endpoint)
