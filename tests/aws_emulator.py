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
