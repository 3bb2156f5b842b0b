"""The command blocks of docs/web.md marked ``tested-by=tests/web/test_docs_web.py`` run
here as written, in the shop project, with ``PORT`` set to a free port (the blocks say
``${PORT:-8080}``): the two ways to serve, the API and metrics calls, and the refusal
to serve other machines without authentication."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shop import Shop
from support import cli_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"
MINE = "tested-by=tests/web/test_docs_web.py"
FENCE = re.compile(r"^ *```(\w+)([^\n]*)\n(.*?)^ *```", re.S | re.M)


def block(marker: str) -> str:
    """The one block this test runs whose code holds ``marker``."""
    found = [code for _, words, code in FENCE.findall(DOC.read_text()) if MINE in words.split() and marker in code]
    assert len(found) == 1, f"{DOC} should have one block for this test holding {marker!r}, has {len(found)}"
    return str(found[0])


def test_every_block_of_mine_is_run_here() -> None:
    mine = [code for _, words, code in FENCE.findall(DOC.read_text()) if MINE in words.split()]
    markers = ("--dev-user", "--identity-header", "curl", "$ stackwright serve --host 0.0.0.0")
    assert len(mine) == len(markers) and all(block(m) in mine for m in markers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\temail = carol@example.com\n")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**cli_env(), "PATH": path, "PORT": str(free_port()), "GIT_CONFIG_GLOBAL": str(gitconfig)}


class Backgrounded:
    """A block that serves, run by bash in its own process group until stopped."""

    def __init__(self, code: str, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash", "-c", code], cwd=root, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert f"127.0.0.1:{env['PORT']}/" in line, line + self.proc.stderr.read()
        self.url = f"http://127.0.0.1:{env['PORT']}"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture
def served(shop: Shop, env: dict[str, str]) -> Iterator[Backgrounded]:
    proxied = block("--identity-header")
    running = Backgrounded(proxied, shop.root, env)
    yield running
    running.stop()


def test_the_development_mode_block(shop: Shop, env: dict[str, str]) -> None:
    code = block("--dev-user")
    running = Backgrounded(code, shop.root, env)
    try:
        page = httpx.get(f"{running.url}/").text
        assert "LOCAL DEVELOPMENT MODE" in page and "carol@example.com" in page
    finally:
        running.stop()


def test_the_proxy_block_believes_the_header(served: Backgrounded) -> None:
    me = httpx.get(f"{served.url}/api/whoami", headers={"X-Forwarded-Email": "bob@example.com"}).json()
    assert me == {"identity": "bob@example.com", "auth": "proxy", "dev_mode": False}


def test_the_api_and_metrics_block(served: Backgrounded, shop: Shop, env: dict[str, str]) -> None:
    code = block("curl")
    done = subprocess.run(["bash", "-ec", code], cwd=shop.root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and '"stack":"production"' in done.stdout
    assert "stackwright_plans_waiting" in done.stdout


def test_the_refusal_block(shop: Shop, env: dict[str, str]) -> None:
    code = block("$ stackwright serve --host 0.0.0.0")
    lines = [line.strip() for line in code.splitlines()]
    command = next(line[2:] for line in lines if line.startswith("$ "))
    expected = next(line for line in lines if line.startswith("error:"))
    done = subprocess.run(["bash", "-c", command], cwd=shop.root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and expected in done.stderr
