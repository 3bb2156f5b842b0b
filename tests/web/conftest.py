"""The web view's fixtures: the shop project (tests/web/shop.py) and `stackwright serve`
running on it on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from shop import Shop, make_shop  # noqa: E402
from support import cli_command, cli_env  # noqa: E402

PROXY_HEADER = "X-Forwarded-Email"


class Server:
    """A running `stackwright serve`; ``url`` is where it listens."""

    def __init__(self, root: Path, *flags: str) -> None:
        self.proc = subprocess.Popen([*cli_command(), "serve", "--port", "0", *flags], cwd=root, env=cli_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        found = re.search(r"on (http://\S+)/", line)
        if found is None:
            self.stop()
            raise AssertionError(f"serve did not start: {line}{self.proc.stderr.read()}")
        self.url = found.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return make_shop(tmp_path_factory.mktemp("web") / "shop")


@pytest.fixture(scope="module")
def server(shop: Shop) -> Iterator[Server]:
    """Identity from the proxy header, believed from 127.0.0.1 (where the tests connect)."""
    running = Server(shop.root, "--identity-header", PROXY_HEADER)
    yield running
    running.stop()
