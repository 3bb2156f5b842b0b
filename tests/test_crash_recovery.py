"""Crash safety: ``stackwright up`` killed with SIGKILL at random moments.

Each trial moves a ~30-file stack to a new version (creates, in-place updates,
create-before-delete and delete-before-replace replacements, deletes), waits until the
``up`` holds the stack lock, kills its process group with SIGKILL after a random delay
spread over the time a normal run holds the lock, then runs ``up`` again. That second ``up`` must succeed and leave exactly
what the program declares: no orphaned file, nothing missing, right contents, every
URN recorded once, no pending operation, and a preview with no changes.

A SIGKILL after the lock was taken leaves it behind; its holder's pid is gone from this
host, so the next ``up`` takes it over, saying so (see test_lock_contention.py), and
resolves what the killed one left. Every other trial first runs ``stackwright unlock``
instead, as a user may, which needs no ``--force`` for the same reason.

The trials run with the state in SQLite (every seed) and in S3 on the local emulator
(the first seed): there a commit is a journal object, and the recovering `up` replays
the journal the killed one left.

Two deterministic tests pin down what the random trials found: the old half of a
create-before-delete replacement orphaned by a crash between its halves, and temp
files of killed atomic writes left next to the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stackwright.state.s3 import S3StateStore
from stackwright.state.sqlite import SqliteStateStore
from stackwright.state.store import StateStore
from support import VersionedProject, cli_command, cli_env

TRIALS_PER_SEED = int(os.environ.get("CRASH_TRIALS", "11"))
SEEDS = tuple(int(s) for s in os.environ.get("CRASH_SEEDS", "11,23").split(","))
"""2 x 11 = 22 killed runs; one test per seed, so xdist runs them side by side.
``CRASH_SEEDS=101,102,... CRASH_TRIALS=n`` runs other or more trials (``make crash``)."""
AFTER_LOCK = "crash trials killed after the lock was taken"
"""The user property each trial test reports its count under (summed by conftest.py)."""

PROJECT = "crash"
STACK = "dev"
TIMEOUT = 120.0
"""Per CLI call; generous for a loaded CI machine, never reached normally."""

PROGRAM = '''\
import stackwright as sw
from stackwright.providers import local

version = sw.Config().require_int("version")
parity = version % 2

# Replaced every version (its create command changes): slows the run down and feeds
# its stdout into the root of the chain.
pause = local.Command("pause", create=f"sleep 0.1 && echo v{version}", delete="sleep 0.05")
root = local.File("root", path="out/root.txt",
                  content=sw.fmt("root v{} after {}\\n", version, pause.stdout))
stable = local.File("stable", path="out/stable.txt", content="stable\\n")

prev = root
for i in range(8):                      # updated in place every version, in order
    prev = local.File(f"chain-{i}", path=f"out/chain/{i}.txt",
                      content=sw.fmt("chain {} after {}\\n", i, prev.sha256))
steady = stable
for i in range(4):                      # never changes
    steady = local.File(f"steady-{i}", path=f"out/steady/{i}.txt",
                        content=sw.fmt("steady {} after {}\\n", i, steady.sha256))

# path depends on the version: replaced, create-before-delete ...
moving = local.File("moving", path=f"out/moving-{parity}.txt",
                    content=sw.fmt("moving after {}\\n", prev.sha256))
# ... and delete-before-replace
dbr = local.File("moving-dbr", path=f"out/dbr-{parity}.txt",
                 content=sw.fmt("dbr after {}\\n", steady.sha256),
                 opts=sw.ResourceOptions(delete_before_replace=True))
after = local.File("after-moving", path="out/after-moving.txt",
                   content=sw.fmt("{} {} {}\\n", moving.path, moving.sha256, dbr.sha256))
pause2 = local.Command("pause-2", create=sw.fmt("sleep 0.1 && echo {}", after.sha256),
                       delete="sleep 0.05")

for a in range(3):                      # a small tree under root and pause-2
    branch = local.File(f"branch-{a}", path=f"out/tree/{a}/branch.txt",
                        content=sw.fmt("branch {} after {}\\n", a, root.sha256))
    for b in range(2):
        local.File(f"leaf-{a}-{b}", path=f"out/tree/{a}/leaf-{b}.txt",
                   content=sw.fmt("leaf {} {} after {} {}\\n", a, b, branch.sha256,
                                  pause2.stdout))

if parity:                              # only in odd versions: created, then deleted
    for i in range(5):
        local.File(f"odd-{i}", path=f"out/odd/{i}.txt",
                   content=sw.fmt("odd {} after {}\\n", i, after.sha256))
'''


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def expected(version: int) -> tuple[dict[str, str], set[str]]:
    """What PROGRAM declares for ``version``, worked out independently of stackwright:
    the files (relative path -> content) and every resource's URN."""
    parity = version % 2
    files: dict[str, str] = {}
    names = {"local:Command": ["pause", "pause-2"], "local:File": []}

    def file(name: str, path: str, content: str) -> str:
        assert path not in files
        files[path] = content
        names["local:File"].append(name)
        return _sha(content)

    root = file("root", "out/root.txt", f"root v{version} after v{version}\n")
    stable = file("stable", "out/stable.txt", "stable\n")
    prev = root
    for i in range(8):
        prev = file(f"chain-{i}", f"out/chain/{i}.txt", f"chain {i} after {prev}\n")
    steady = stable
    for i in range(4):
        steady = file(f"steady-{i}", f"out/steady/{i}.txt", f"steady {i} after {steady}\n")
    moving_path = f"out/moving-{parity}.txt"
    moving = file("moving", moving_path, f"moving after {prev}\n")
    dbr = file("moving-dbr", f"out/dbr-{parity}.txt", f"dbr after {steady}\n")
    after = file("after-moving", "out/after-moving.txt", f"{moving_path} {moving} {dbr}\n")
    pause2 = after
    for a in range(3):
        branch = file(f"branch-{a}", f"out/tree/{a}/branch.txt", f"branch {a} after {root}\n")
        for b in range(2):
            file(f"leaf-{a}-{b}", f"out/tree/{a}/leaf-{b}.txt",
                 f"leaf {a} {b} after {branch} {pause2}\n")
    if parity:
        for i in range(5):
            file(f"odd-{i}", f"out/odd/{i}.txt", f"odd {i} after {after}\n")
    urns = {f"{STACK}::{PROJECT}::{t}::{n}" for t, ns in names.items() for n in ns}
    return files, urns


_command = cli_command
_env = cli_env


class Project(VersionedProject):
    """On the project's SQLite file, or on the S3 store ``STACKWRIGHT_STATE_URL`` names
    (the ``s3_state_url`` fixture sets it for the test and every command it runs)."""

    def __init__(self, root: Path, program: str = PROGRAM) -> None:
        url = os.environ.get("STACKWRIGHT_STATE_URL", "")
        self.s3 = S3StateStore(url) if url.startswith("s3://") else None
        super().__init__(root, PROJECT, program, STACK, TIMEOUT)

    def store(self) -> StateStore:
        return SqliteStateStore(self.root / ".stackwright" / "state.db") if self.s3 is None else self.s3

    def spawn_up(self) -> subprocess.Popen[bytes]:
        """`up` in its own process group, so a kill also takes its `sleep` children."""
        return subprocess.Popen([*_command(), "up", "--yes", "--parallel", "2"], cwd=self.root,
                                env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def lock_holder(self) -> int | None:
        """The pid recorded in the stack's lock, read without writing anything."""
        if self.s3 is not None:
            held = self.s3.read_lock(STACK)
            return None if held is None else held.pid
        db = self.root / ".stackwright" / "state.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT pid FROM locks WHERE stack = ?", (STACK,)).fetchone()
        finally:
            conn.close()
        return None if row is None else int(row[0])

    def wait_for_lock(self, proc: subprocess.Popen[bytes]) -> bool:
        """Poll until ``proc`` holds the stack lock (True) or has exited (False)."""
        while proc.poll() is None:
            if self.lock_holder() == proc.pid:
                return True
            time.sleep(0.002)
        return False

    def files(self) -> dict[str, str]:
        out: dict[str, str] = {}
        base = self.root / "out"
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file():
                out[path.relative_to(self.root).as_posix()] = path.read_text()
        return out

    def check_converged(self, version: int, context: str, *, listing: bool = False) -> None:
        want_files, want_urns = expected(version)

        # (1) + (2): exactly the declared files, each with the declared content
        found = self.files()
        orphans = sorted(set(found) - set(want_files))
        missing = sorted(set(want_files) - set(found))
        assert not orphans and not missing, f"{context}: orphans {orphans}, missing {missing}"
        wrong = sorted(p for p in want_files if found[p] != want_files[p])
        assert not wrong, f"{context}: wrong content in {wrong}"

        # (3): every declared URN recorded once and nothing else, each File by its own
        # path (no two records of one object), no pending operation, no lock left
        store = self.store()
        snapshot = store.snapshot(STACK)
        lock = store.read_lock(STACK)
        if self.s3 is None:
            store.close()
        assert snapshot.pending == [], f"{context}: pending left: {snapshot.pending}"
        assert lock is None, f"{context}: lock left behind: {lock}"
        assert set(snapshot.resources) == want_urns, (
            f"{context}: state has extra {sorted(set(snapshot.resources) - want_urns)}, "
            f"lacks {sorted(want_urns - set(snapshot.resources))}")
        ids = [r.id for r in snapshot.resources.values()]
        assert len(ids) == len(set(ids)), f"{context}: two records of one object: {sorted(ids)}"
        file_ids = sorted(r.id for r in snapshot.resources.values() if r.type == "local:File")
        assert file_ids == sorted(str((self.root / p).resolve()) for p in want_files), context
        if listing:  # the same through the CLI (a subprocess each time: not every trial)
            lines = self.ok("state", "ls").splitlines()
            urns = [line.split("  ")[0] for line in lines[:-1]]
            assert sorted(urns) == sorted(want_urns), f"{context}: state ls lists {urns}"
            assert lines[-1].startswith(f"{len(want_urns)} resources,"), lines[-1]

        # (4): nothing left to do
        preview = self.ok("preview")
        assert "No changes." in preview and "interrupted" not in preview, f"{context}:\n{preview}"


def on_backend(request: pytest.FixtureRequest, backend: str) -> None:
    """State in the project's SQLite file, or in a fresh bucket of the local emulator."""
    if backend == "s3":
        request.getfixturevalue("s3_state_url")


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "backend"), [(seed, "sqlite") for seed in SEEDS] + [(SEEDS[0], "s3")])
def test_sigkill_during_up_never_orphans_or_duplicates(
        tmp_path: Path, seed: int, backend: str, request: pytest.FixtureRequest,
        record_property: Callable[[str, object], None]) -> None:
    on_backend(request, backend)
    project = Project(tmp_path / PROJECT)
    project.ok("up", "--yes", "--parallel", "2")
    project.check_converged(1, "initial up", listing=True)

    # How long an undisturbed version change holds the lock (from when it is seen taken
    # to when it is seen released); the shorter of two, since the first run of a fresh project pays one-off costs.
    durations = []
    for version in (2, 3):
        project.set_version(version)
        proc = project.spawn_up()
        assert project.wait_for_lock(proc), f"the undisturbed up to version {version} never took the lock"
        locked = time.monotonic()
        while proc.poll() is None and project.lock_holder() == proc.pid:
            time.sleep(0.002)
        durations.append(time.monotonic() - locked)
        assert proc.wait(timeout=TIMEOUT) == 0
        project.check_converged(version, f"undisturbed up to version {version}")
    duration = min(durations)

    rng = random.Random(seed)
    after_lock = 0
    for trial in range(TRIALS_PER_SEED):
        version = 4 + trial
        delay = rng.uniform(0.0, duration)
        context = f"seed {seed} trial {trial} (version {version}, killed {delay:.3f}s after the lock)"
        project.set_version(version)
        proc = project.spawn_up()
        assert project.wait_for_lock(proc), f"{context}: the up never took the lock"
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=TIMEOUT)
        assert code in (0, -signal.SIGKILL), f"{context}: the undisturbed up exited {code}"

        # The way back: the next `up` takes over the lock the killed process left (its
        # pid is gone from this host) and says so; every other trial clears it first
        # with `unlock`, as a user may, which needs no --force for the same reason. A
        # lock left behind is also the proof that the kill landed while it was held.
        holder = project.lock_holder()
        if holder is not None:
            assert holder == proc.pid and code == -signal.SIGKILL, f"{context}: lock of pid {holder}"
            after_lock += 1
            if trial % 2:
                project.ok("unlock")
        done = project.run("up", "--yes", "--parallel", "2")
        assert done.returncode == 0 and "Traceback" not in done.stderr, f"{context}:\n{done.stdout}\n{done.stderr}"
        taken = f"Took over the lock of stack '{STACK}' left by tester (pid {proc.pid} on "
        assert (taken in done.stderr) == (holder is not None and trial % 2 == 0), f"{context}:\n{done.stderr}"
        project.check_converged(version, context, listing=trial == TRIALS_PER_SEED - 1)

    record_property(AFTER_LOCK, after_lock)
    assert after_lock > TRIALS_PER_SEED // 2, f"only {after_lock} of {TRIALS_PER_SEED} kills held the lock"


KILL_BETWEEN_HALVES = """\
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
version = config.require_int("version")
moving = local.File("moving", path=f"out/moving-{version}.txt", content="moving\\n")
if config.get_bool("crash", False):
    # A dependent of the replacement: it runs after the new file is recorded and
    # before the old one is deleted, and kills `up` ($PPID of its shell) right there.
    local.Command("crash", create=sw.fmt("kill -9 $PPID # {}", moving.sha256))
"""


@pytest.mark.parametrize("backend", ["sqlite", "s3"])
def test_kill_between_the_halves_of_a_replacement_deletes_the_old_half(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """The window the random trials found: the new object's record has replaced the old
    one's, the old object is not deleted yet. The next plan shows it, and `up` deletes it."""
    on_backend(request, backend)
    project = Project(tmp_path / PROJECT, KILL_BETWEEN_HALVES)
    project.ok("up", "--yes")
    project.set_version(2, crash="true")
    done = project.run("up", "--yes")
    assert done.returncode == -signal.SIGKILL, done
    assert sorted(project.files()) == ["out/moving-1.txt", "out/moving-2.txt"]

    project.set_version(2, crash="false")
    project.ok("unlock")
    preview = project.ok("preview")
    assert "delete replaced object" in preview and "moving-1.txt" in preview, preview
    assert "1 replaced object(s) to delete" in preview, preview
    out = project.ok("up", "--yes")
    assert sorted(project.files()) == ["out/moving-2.txt"], out
    assert "1 delete-replaced" in out, out
    snapshot = project.store().snapshot(STACK)
    assert snapshot.pending == []
    assert [r.id for r in snapshot.resources.values()] == [
        str((project.root / "out" / "moving-2.txt").resolve())]
    assert "No changes." in project.ok("preview")


def test_a_killed_writes_temp_file_is_removed_by_the_next_write_or_delete(tmp_path: Path) -> None:
    """SIGKILL between the temp file's creation and its rename leaves the temp file;
    the next write or delete of the same path removes it (and nothing else)."""
    from stackwright.providers.local import FileProvider
    from stackwright.providers.protocol import OperationContext

    files = FileProvider()
    ctx = OperationContext(urn="dev::crash::local:File::f", name="f", token="t")
    target = tmp_path / "f.txt"
    others = [tmp_path / n for n in (".f.txt.tmp", ".f.txt.notmine.tmp", ".g.txt.abcd1234.tmp",
                                     "f.txt.abcd1234.tmp")]
    for path in others:
        path.write_text("keep")

    def litter() -> list[Path]:
        paths = [tmp_path / f".f.txt.{s}.tmp" for s in ("abcd1234", "x_9y8z7w")]
        for path in paths:
            path.write_text("half")
        return paths

    for act in (lambda: files.create(ctx, {"path": str(target), "content": "1"}),
                lambda: files.update(ctx, str(target), {}, {}, {"path": str(target), "content": "2"}),
                lambda: files.delete(ctx, str(target), {}, {})):
        leftovers = litter()
        act()
        assert not any(p.exists() for p in leftovers)
        assert all(p.read_text() == "keep" for p in others)
