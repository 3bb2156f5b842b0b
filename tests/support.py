"""Helpers shared by tests that run the real `stackwright` command in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
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


def write_workspace(root: Path, programs: dict[str, str], workspace: str) -> Path:
    """A workspace at ``root``: per project name its program (stack ``dev``, empty
    config), and ``workspace`` as stackwright-workspace.yaml."""
    for name, program in programs.items():
        (root / name / "stacks").mkdir(parents=True)
        (root / name / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
        (root / name / "__main__.py").write_text(program)
        (root / name / "stacks" / "dev.yaml").write_text("config: {}\n")
    (root / "stackwright-workspace.yaml").write_text(workspace)
    return root


class VersionedProject:
    """A project on disk whose one stack reads ``version`` from config, driven through
    the real command (crash and lock tests)."""

    def __init__(self, root: Path, name: str, program: str, stack: str, timeout: float) -> None:
        self.root, self.stack, self.timeout = root, stack, timeout
        root.mkdir()
        (root / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
        (root / "__main__.py").write_text(program)
        self.set_version(1)
        self.ok("stack", "init", stack)

    def set_version(self, version: int, **config: object) -> None:
        lines = [f"  {key}: {value}" for key, value in {"version": version, **config}.items()]
        (self.root / "stacks").mkdir(exist_ok=True)
        (self.root / "stacks" / f"{self.stack}.yaml").write_text("\n".join(["config:", *lines, ""]))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command(), *args], cwd=self.root, env=cli_env(), text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=self.timeout)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"stackwright {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout


def kill_after(proc: subprocess.Popen[bytes], delay: float, timeout: float) -> int:
    """SIGKILL ``proc``'s process group after ``delay`` seconds (or let it finish);
    its exit code."""
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=timeout)


def unlock_after_kill(project: VersionedProject, pid: int, context: str) -> None:
    """The user's way back: a lock left by the killed process (which names it) is
    cleared with `unlock`; its holder is dead, so no --force is needed."""
    from stackwright.state.sqlite import SqliteStateStore

    with SqliteStateStore(project.root / ".stackwright" / "state.db") as store:
        lock = store.read_lock(project.stack)
    if lock is not None:
        assert lock.pid == pid, f"{context}: {lock}"
        project.ok("unlock")
