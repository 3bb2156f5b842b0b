"""The web view's fixtures: the shop project (tests/web/shop.py) and `stackwright serve`
running on it on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from shop import Shop, make_shop  # noqa: E402
from web_server import PROXY_HEADER, Server  # noqa: E402


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return make_shop(tmp_path_factory.mktemp("web") / "shop")


@pytest.fixture(scope="module")
def server(shop: Shop) -> Iterator[Server]:
    """Identity from the proxy header, believed from 127.0.0.1 (where the tests connect)."""
    running = Server(shop.root, "--identity-header", PROXY_HEADER)
    yield running
    running.stop()
