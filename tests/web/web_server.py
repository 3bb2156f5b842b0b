"""`stackwright serve` started by tests (and tools/web_screenshots.py) on a free port."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support import cli_command, cli_env

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
