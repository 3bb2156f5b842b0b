"""Helpers shared by tests that run the real `stackwright` command in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cli_command() -> list[str]:
    """The installed console script, or the module when running from a source tree."""
    script = Path(sys.executable).with_name("stackwright")
    return [str(script)] if script.exists() else [sys.executable, "-m", "stackwright.cli.main"]


def cli_env(user: str = "tester") -> dict[str, str]:
    """This environment without stack selection or debug, acting as ``user``."""
    env = {k: v for k, v in os.environ.items() if k not in ("STACKWRIGHT_STACK", "STACKWRIGHT_DEBUG")}
    env["STACKWRIGHT_USER"] = user
    return env
