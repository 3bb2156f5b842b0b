"""The stack lock between processes: a second `up` fails at once naming the holder;
a stale lock (its holder's process is gone from this host) is taken over by the next
`up`, which says so; `unlock` clears a stale lock and refuses a live holder unless
forced; a lock of another host is never judged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stackwright.operations.session import host_name
from stackwright.state.records import LockInfo
from stackwright.state.sqlite import SqliteStateStore
from support import VersionedProject, cli_command, cli_env

STACK = "dev"
TIMEOUT = 120.0
RELEASE = "release"
"""The first `up` holds the lock until the test creates this file in the project (its
only command waits for it, two minutes at most): no test depends on how long anything
takes."""

SLOW_PROGRAM = f'''\
import stackwright as sw
from stackwright.providers import local

version = sw.Config().require_int("version")
local.Command("slow", create="for i in $(seq 2400); do [ -e {RELEASE} ] && exit 0; sleep 0.05; done; exit 1")
local.File("marker", path="out/marker.txt", content=f"v{{version}}\\n")
'''


_command = cli_command
_env = cli_env


class Project(VersionedProject):
    def __init__(self, root: Path, program: str = SLOW_PROGRAM) -> None:
        super().__init__(root, "locks", program, STACK, TIMEOUT)

    def store(self) -> SqliteStateStore:
        return SqliteStateStore(self.root / ".stackwright" / "state.db")

    def lock(self) -> LockInfo | None:
        with self.store() as store:
            return store.read_lock(STACK)

    def fails(self, *args: str) -> str:
        """Exit code 1 with one `error:` line and no traceback; that line."""
        done = self.run(*args)
        assert done.returncode == 1, (
            f"stackwright {' '.join(args)}: expected exit 1, got {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}")
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, done.stderr
        return errors[0]


def _names(line: str, owner: str, pid: int) -> None:
    """The error line names the lock holder: who, which process, which machine."""
    assert "locked" in line, line
    assert owner in line and f"pid {pid}" in line and socket.gethostname() in line, line


def _dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=TIMEOUT)
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return proc.pid
    raise AssertionError(f"pid {proc.pid} was taken again at once")  # pragma: no cover


def _wait_for_lock(project: Project, holder: subprocess.Popen[str]) -> LockInfo:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        lock = project.lock()
        if lock is not None:
            return lock
        assert holder.poll() is None, f"the first up ended before taking the lock: {holder.returncode}"
        time.sleep(0.02)
    raise AssertionError("the first up never took the lock")


def _wait_for_pending(project: Project, holder: subprocess.Popen[str]) -> None:
    """Until the holder has recorded its slow create as pending (under way)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with project.store() as store:
            if store.pending_count(STACK):
                return
        assert holder.poll() is None, f"the up ended before starting its create: {holder.returncode}"
        time.sleep(0.02)
    raise AssertionError("the up never started its create")


def test_second_up_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    project = Project(tmp_path / "locks")
    holder = subprocess.Popen([*_command(), "up", "--yes"], cwd=project.root, env=_env(),
                              text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        lock = _wait_for_lock(project, holder)
        assert (lock.owner, lock.pid, lock.operation) == ("tester", holder.pid, "up")

        # The holder waits for the release file, so had the second up waited for the
        # lock or blocked on the state file, it would never have failed.
        line = project.fails("up", "--yes")
        assert holder.poll() is None, "the first up finished before the second gave up"
        _names(line, "tester", holder.pid)
        assert "'up'" in line, line

        (project.root / RELEASE).touch()
        out, err = holder.communicate(timeout=TIMEOUT)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0, f"{out}\n{err}"
    assert (project.root / "out" / "marker.txt").read_text() == "v1\n"
    assert project.lock() is None

    # With the holder gone, `up` works (and has something to do).
    project.set_version(2)
    assert "Update succeeded" in project.ok("up", "--yes")
    assert (project.root / "out" / "marker.txt").read_text() == "v2\n"
    assert project.lock() is None


def test_preview_during_an_up_says_the_stack_is_being_changed_not_interrupted(tmp_path: Path) -> None:
    project = Project(tmp_path / "locks")
    holder = subprocess.Popen([*_command(), "up", "--yes"], cwd=project.root, env=_env(),
                              text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_lock(project, holder)
        _wait_for_pending(project, holder)
        out = project.ok("preview")
        assert holder.poll() is None, "the up finished before the preview"
        assert "interrupted" not in out, out
        assert f"Stack 'dev' is being changed by tester (pid {holder.pid} on {socket.gethostname()}), " \
            "running 'up'" in out, out

        os.killpg(holder.pid, signal.SIGKILL)  # its create is left pending, its lock stale
        holder.wait(timeout=TIMEOUT)
        out = project.ok("preview")
        assert "1 interrupted operation(s) will be resolved by the next `up`." in out, out
        assert "being changed" not in out, out
    finally:
        (project.root / RELEASE).touch()  # lets the killed up's command end
        if holder.poll() is None:
            holder.kill()
            holder.wait()


FAST_PROGRAM = '''\
import stackwright as sw
from stackwright.providers import local

version = sw.Config().require_int("version")
local.File("marker", path="out/marker.txt", content=f"v{version}\\n")
'''


def _plant_lock(project: Project, owner: str, pid: int, ago: float = 90) -> LockInfo:
    """A lock ``owner``'s process ``pid`` took ``ago`` seconds ago (a live holder took
    its lock after it started: after this test process started, for this one)."""
    info = LockInfo(owner=owner, pid=pid, host=host_name(),
                    acquired_at=time.time() - ago, operation="up")
    with project.store() as store:
        store.acquire_lock(STACK, info)
    return info


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over_saying_so(tmp_path: Path) -> None:
    project = Project(tmp_path / "locks", FAST_PROGRAM)
    dead = _dead_pid()
    _plant_lock(project, "ghost", dead)

    done = project.run("up", "--yes")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (f"Took over the lock of stack 'dev' left by ghost (pid {dead} on {host_name()}), running 'up'"
            in done.stderr), done.stderr
    assert "that process is gone from this host" in done.stderr
    assert (project.root / "out" / "marker.txt").read_text() == "v1\n"
    assert project.lock() is None

    # `unlock` still clears one, without --force: the holder's pid is gone on this host.
    _plant_lock(project, "ghost", dead)
    out = project.ok("unlock")
    assert "ghost" in out and f"pid {dead}" in out, out
    assert project.lock() is None
    assert "is not locked" in project.ok("unlock")


def test_a_lock_whose_pid_was_given_to_a_later_process_is_taken_over(tmp_path: Path) -> None:
    """The pid of the lock's holder names a live process, but one that started after
    the lock was taken (after a reboot, or once pids wrapped around): not the holder."""
    project = Project(tmp_path / "locks", FAST_PROGRAM)
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        planted = LockInfo(owner="ghost", pid=later.pid, host=host_name(),
                           acquired_at=time.time() - 3600, operation="up")
        with project.store() as store:
            store.acquire_lock(STACK, planted)
        done = project.run("up", "--yes")
        assert done.returncode == 0, done.stderr
        assert f"Took over the lock of stack 'dev' left by ghost (pid {later.pid} on" in done.stderr
        assert project.lock() is None and later.poll() is None
    finally:
        later.kill()
        later.wait()


def test_a_lock_of_another_host_is_never_taken_over(tmp_path: Path) -> None:
    project = Project(tmp_path / "locks", FAST_PROGRAM)
    with project.store() as store:
        store.acquire_lock(STACK, LockInfo(owner="ci", pid=_dead_pid(), host="elsewhere",
                                           acquired_at=time.time() - 90, operation="up"))
    line = project.fails("up", "--yes")
    assert "locked by ci" in line and "on elsewhere" in line, line
    assert not (project.root / "out").exists()
    assert "may still be running" in project.fails("unlock")


def test_unlock_refuses_a_live_holder_unless_forced(tmp_path: Path) -> None:
    project = Project(tmp_path / "locks", FAST_PROGRAM)
    planted = _plant_lock(project, "alive", os.getpid(), ago=0)  # this test process: alive

    line = project.fails("unlock")
    assert "alive" in line and f"pid {os.getpid()}" in line, line
    assert project.lock() == planted
    _names(project.fails("up", "--yes"), "alive", os.getpid())
    assert not (project.root / "out").exists()

    out = project.ok("unlock", "--force")
    assert "alive" in out, out
    assert project.lock() is None
    project.ok("up", "--yes")
    assert (project.root / "out" / "marker.txt").read_text() == "v1\n"
    assert project.lock() is None
