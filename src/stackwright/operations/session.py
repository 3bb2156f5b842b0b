"""Opening a stack: its project, config, state store, providers and the caller's identity."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackwright.dataclass_methods import Compared
from stackwright.engine.events import EventSink
from stackwright.errors import LockHeldError, ProjectError, StateError
from stackwright.model.context import ConfigSource
from stackwright.model.desired import DesiredGraph
from stackwright.model.values import Secret
from stackwright.operations.keyring import Keyring, SecretsError
from stackwright.operations.workspace_links import WorkspaceLinks
from stackwright.program.project import Project, load_stack_config
from stackwright.program.runner import run_program
from stackwright.state.codec import gc_paused, lock_holder
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import LockInfo
from stackwright.state.store import StateStore

if TYPE_CHECKING:
    from stackwright.program.digest import ProgramDigest
    from stackwright.program.workspace import Workspace

SECURE = "secure"
"""``password: {secure: <ciphertext>}`` in a stack file: a secret config value."""
CO_AUTHORS_ENV = "STACKWRIGHT_CO_AUTHORS"
"""Comma-separated identities that count as authors of the plans a command saves,
besides whoever makes them (``who``): where self-approval is off, none of them may
approve. CI sets it to whoever merged another's pull request (docs/ci.md)."""


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared.


@dataclass(init=False, repr=False, eq=False)
class StackSession(Compared):
    """An open stack: its project, state store, config, providers and who is acting."""

    project: Project
    stack: str
    store: StateStore
    config: ConfigSource
    providers: ProviderRegistry
    named: str | None
    """Who the caller said is acting (--as, a run's identity); None: ``who`` finds it."""
    held_lock: LockInfo | None = None
    """The stack's lock, when the caller took it and will release it (`run --shard`
    claims a stack with its lock); updates then work under it instead of taking one."""
    _links: WorkspaceLinks | None = field(default=None, init=False, repr=False)
    _who: str | None = field(default=None, init=False, repr=False)
    _asked: tuple[dict[str, str], str] | None = field(default=None, init=False, repr=False)
    """The environment and working folder ``who`` asks git in, when not settled at once."""
    _co_authors: tuple[str, ...] = field(default=(), init=False, repr=False)
    _fingerprint: ProgramDigest | None = field(default=None, init=False, repr=False)

    def __init__(self, project: Project, stack: str, store: StateStore, config: ConfigSource,
                 providers: ProviderRegistry, named: str | None, held_lock: LockInfo | None = None) -> None:
        self.project = project
        self.stack = stack
        self.store = store
        self.config = config
        self.providers = providers
        self.named = named
        self.held_lock = held_lock
        self._links = None
        self._who = named or os.environ.get("STACKWRIGHT_USER") or None
        self._asked = None if self._who else (dict(os.environ), os.getcwd())
        self._co_authors = co_authors(os.environ)
        self._fingerprint = None

    @property
    def who(self) -> str:
        """Who is acting (``identity``). Settled when the session opens, before any of
        the user's code runs (a program or policy file could otherwise set
        STACKWRIGHT_USER and sign in another's name); only asking git is put off to
        first need, with the environment and folder as they were then: a preview
        records nothing, so it never runs `git config`."""
        if self._who is None:
            assert self._asked is not None
            env, cwd = self._asked
            self._who = identity(self.named, env, cwd)
        return self._who

    @property
    def co_authors(self) -> tuple[str, ...]:
        """Who else counts as the author of a plan this session saves
        (``CO_AUTHORS_ENV``, read when the session opens, as ``who`` is), ``who`` left out."""
        return tuple(name for name in self._co_authors if name != self.who)

    def config_secrets(self) -> set[str]:
        """The plain texts of the stack's secret config: a value a program made of them
        (``sw.fmt``) may show them in part, and so may a provider's outputs."""
        from stackwright.model.values import secret_texts

        return secret_texts(self.config.data)

    def run_program(self, targets: Sequence[str] = ()) -> DesiredGraph:
        """The desired graph; with ``targets``, complete only for what they name (see
        ``program.runner.run_program``). The cycle collector is paused meanwhile: a
        program of thousands of manifests makes millions of acyclic containers, and full
        collections over them took longer than the program itself."""
        links = self.workspace_links()
        with gc_paused():
            return run_program(self.project, self.stack, self.config, read_stack_outputs=links.read_outputs,
                               python_path=links.python_path(), targets=targets)

    def program_fingerprint(self) -> ProgramDigest:
        """The digest of the program this session runs: the project's files and the
        workspace's shared ``python_path`` (``program.digest``). Taken once per session:
        the staging gate and the plan's pins judge one program, and in a workspace of
        many stacks a project's folder is not read again for each use."""
        if self._fingerprint is None:
            from stackwright.program.digest import program_fingerprint

            self._fingerprint = program_fingerprint(self.project, self.workspace_links().python_path())
        return self._fingerprint

    def workspace_links(self) -> WorkspaceLinks:
        """Other stacks' outputs and shared code, from the workspace (if any) around
        the project; opened on first use so that commands without a program pay nothing."""
        if self._links is None:
            self._links = WorkspaceLinks(self.project, self.stack, self.store)
        return self._links

    def link_workspace(self, workspace: Workspace, known: dict[str, Mapping[str, Any]],
                       stores: Callable[[Project], StateStore]) -> None:
        """Read other stacks through ``workspace``, starting from the outputs ``known``
        in this run (planned by an earlier preview, or read already), from the state
        stores ``stores`` lends."""
        self._links = WorkspaceLinks(self.project, self.stack, self.store, workspace, known, stores)

    def close(self) -> None:
        self.store.close()


def open_store(project: Project, stack: str | None = None) -> StateStore:
    """The project's state: STACKWRIGHT_STATE_URL, else ``state: url:`` in the project
    file, else SQLite at ``.stackwright/state.db``; read-only under
    STACKWRIGHT_STATE_READ_ONLY=1 or ``state: read_only: true``; secrets sealed with
    ``stack``'s key (see ``keyring``), and opened with whichever key made them."""
    from stackwright.state.backends import open_state_store, state_read_only, state_url

    store = open_state_store(state_url(project.settings), project.state_dir / "state.db",
                             project=project.name, root=project.root,
                             read_only=state_read_only(project.settings))
    store.use_cipher(Keyring.for_stack(project, stack))
    return store


def stack_config(project: Project, stack: str, keyring: Keyring | None = None) -> ConfigSource:
    """The stack's ``config:`` with every ``{secure: ciphertext}`` opened into a ``Secret``."""
    source = load_stack_config(project, stack)
    if not any_secure(source.data):
        return source
    ring = keyring or Keyring.for_stack(project, stack)
    return ConfigSource(open_secure(source.data, ring, source), source.file, source.lines)


def any_secure(value: Any) -> bool:
    if isinstance(value, Mapping):
        return is_secure(value) or any(any_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(any_secure(v) for v in value)
    return False


def is_secure(value: Any) -> bool:
    return isinstance(value, Mapping) and list(value) == [SECURE] and isinstance(value[SECURE], str)


def open_secure(value: Any, keyring: Keyring, source: ConfigSource, path: tuple[Any, ...] = ()) -> Any:
    """``value`` (the config under ``path``) with every ``{secure: ...}`` opened."""
    if is_secure(value):
        key = ".".join(map(str, path))
        with naming_config_key(key, source.file, source.lines):
            return Secret(json.loads(keyring.open(value[SECURE])))
    if isinstance(value, Mapping):
        return {k: open_secure(v, keyring, source, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [open_secure(v, keyring, source, (*path, i)) for i, v in enumerate(value)]
    return value


@contextmanager
def naming_config_key(key: str, file: str, lines: Mapping[str, int]) -> Iterator[None]:
    """A secret config value that cannot be opened (altered, or its key missing) is named
    by its key and where it is: the keyring only sees the ciphertext. ``lines`` (each
    key's line in ``file``) is read only then: finding them parses the file again."""
    try:
        yield
    except SecretsError as exc:
        exc.message = f"config key {key!r}: {exc.message}"
        exc.file, exc.line = file, lines.get(key)
        raise


def open_session(project: Project, stack: str, who: str | None = None,
                 registry: ProviderRegistry | None = None, open_secrets: bool = True,
                 may_be_new: bool = False) -> StackSession:
    """The stack must exist in the state store (``stackwright stack init``), unless
    ``may_be_new`` (a saved plan made for a new stack, whose apply creates it). Without
    ``open_secrets`` secret config values stay sealed: enough to review a plan, and
    needing no key."""
    store = open_store(project, stack)
    if not may_be_new and not store.stack_exists(stack):
        known = [s.name for s in store.list_stacks()]
        store.close()
        raise ProjectError(
            f"no stack named {stack!r} in project {project.name!r}",
            hint=f"known stacks: {', '.join(known) or 'none'}; create one with "
            f"`stackwright stack init {stack}`",
        )
    try:
        config = stack_config(project, stack) if open_secrets else load_stack_config(project, stack)
    except BaseException:
        store.close()
        raise
    providers = registry or ProviderRegistry(provider_config(project, config.data))
    return StackSession(project, stack, store, config, providers, who)


def provider_config(project: Project, config: Mapping[str, Any]) -> dict[str, Any]:
    """The provider sections of the stack config (``aws:``, ``k8s:``...), each handed to
    its provider as written: what a setting means (``endpoint: local``...) is the
    provider's business. The ``local`` provider also gets the project folder as its root,
    so its relative paths never depend on the working directory."""
    out = {k: v for k, v in config.items() if isinstance(v, Mapping)}
    out["local"] = {**out.get("local", {}), "root": str(project.root)}
    return out


def identity(explicit: str | None = None, env: Mapping[str, str] | None = None, cwd: str | None = None) -> str:
    """Who is acting: --as, else STACKWRIGHT_USER (CI sets it), else git's user.email,
    else the login name; read from ``env`` and in ``cwd`` (default: this process's).
    Recorded verbatim."""
    env = os.environ if env is None else env
    if explicit:
        return explicit
    if env.get("STACKWRIGHT_USER"):
        return env["STACKWRIGHT_USER"]
    import getpass
    import subprocess

    try:
        email = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, timeout=2,
                               env=dict(env), cwd=cwd).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or next((env[name] for name in _LOGIN_NAMES if env.get(name)), "") or getpass.getuser()


def co_authors(env: Mapping[str, str]) -> tuple[str, ...]:
    """The identities ``CO_AUTHORS_ENV`` names in ``env``, in order, each once."""
    names = (name.strip() for name in env.get(CO_AUTHORS_ENV, "").split(","))
    return tuple(dict.fromkeys(name for name in names if name))


_LOGIN_NAMES = ("LOGNAME", "USER", "LNAME", "USERNAME")
"""Where ``getpass.getuser`` looks first, read here from the environment ``identity`` was given."""


def host_name() -> str:
    """This machine's name as a lock records it: what ``socket.gethostname()`` returns
    (on POSIX both read the kernel's node name), without loading ``socket``, which
    costs every `up` a millisecond and more. In a pid namespace other than the
    machine's own (a container), that namespace's number follows (``runner/pidns:
    4026532199``): a pid names a process only within its namespace, and containers may
    share a host name (host networking) while their pids are unrelated."""
    node = os.uname().nodename
    space = _pid_namespace()
    return node if space in (None, _INIT_PID_NAMESPACE) else f"{node}/pidns:{space}"


_INIT_PID_NAMESPACE = "4026531836"
"""The machine's own pid namespace (Linux's ``PROC_PID_INIT_INO``)."""


@cache
def _pid_namespace() -> str | None:
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:  # not Linux
        return None
    return link.partition("[")[2].rstrip("]") or None


@contextmanager
def stack_lock(session: StackSession, operation: str, sink: EventSink | None = None) -> Iterator[LockInfo]:
    """The stack's lock for ``operation``. A lock a process of this host left behind
    when it died (``lock_is_stale``) is taken over, and ``sink`` told; the operation it
    left open is then checkpointed as interrupted by ``begin``, as after ``unlock``."""
    if session.held_lock is not None:
        yield session.held_lock
        return
    info = LockInfo(owner=session.who, pid=os.getpid(), host=host_name(),
                    acquired_at=time.time(), operation=operation, token=uuid.uuid4().hex)
    left = _acquire(session.store, session.stack, info)
    if left is not None and sink is not None:
        sink.lock_taken_over(session.stack, lock_holder(left))
    try:
        yield info
    finally:
        session.store.release_lock(session.stack, info.token)


@contextmanager
def stack_locks(store: StateStore, stacks: Iterable[str], who: str, operation: str,
                hint: str = "") -> Iterator[None]:
    """The locks of several stacks at once, for commands that change them together
    (`state migrate`, `secrets rotate`): taken in name order, so two such commands never
    wait on each other; one held elsewhere refuses the command before anything changes
    (``hint`` goes before the lock's own hint)."""
    info = LockInfo(owner=who, pid=os.getpid(), host=host_name(), acquired_at=time.time(),
                    operation=operation, token=uuid.uuid4().hex)
    taken: list[str] = []
    try:
        for name in sorted(stacks):
            try:
                store.acquire_lock(name, info)
            except LockHeldError as exc:
                exc.hint = f"{hint}{exc.hint}" if hint and exc.hint else hint or exc.hint
                raise
            taken.append(name)
        yield
    finally:
        for name in taken:
            store.release_lock(name, info.token)


def _acquire(store: StateStore, stack: str, info: LockInfo) -> LockInfo | None:
    """Take the lock; the stale lock taken over, if any. Of two takers of one stale
    lock exactly one wins: the other's release names a token no longer there and its
    acquire meets the winner's lock (LockHeldError naming it)."""
    try:
        store.acquire_lock(stack, info)
        return None
    except LockHeldError:
        held = store.read_lock(stack)
        if held is not None and not lock_is_stale(held):
            raise
    if held is not None:
        store.release_lock(stack, held.token)  # only that holder's lock, if still there
    store.acquire_lock(stack, info)
    return held


def lock_is_stale(info: LockInfo) -> bool:
    """True when the holder ran on this host (in this pid namespace) and its process
    is gone: no process has its pid, or the one that has it ended and waits to be
    reaped, or started after the lock was taken (its pid was given out again: after a
    reboot, or once pids wrapped around). A holder on another host is never judged."""
    if info.host != host_name() or info.pid <= 0:
        return False
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # a process of another user has that pid: maybe a reused one
    return _exited(info.pid) or _started_after(info.pid, info.acquired_at + PID_REUSE_SLACK)


PID_REUSE_SLACK = 60.0
"""How much later than the lock a process must have started to be taken for another
process given the holder's pid (seconds): the start time is measured against the boot
time, which follows steps of the wall clock, so a small step must not make a live
holder look younger than its lock."""


def _exited(pid: int) -> bool:
    """A process that ended but was not reaped yet (still answers ``kill(pid, 0)``);
    known on Linux only."""
    return _stat_fields(pid)[:1] == ["Z"]


def _started_after(pid: int, when: float) -> bool:
    """Whether process ``pid`` started after ``when`` (a wall-clock time); False when
    that cannot be told (not Linux)."""
    fields = _stat_fields(pid)
    try:
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        started = int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return False
    return started > when


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state first, then the
    parent's pid...; the start time is the 20th); none when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def require_no_pending(session: StackSession) -> None:
    snapshot = session.store.snapshot(session.stack)
    if snapshot.pending:
        raise StateError(
            f"{len(snapshot.pending)} operation(s) were interrupted",
            hint="run `stackwright up` (or refresh --yes) to resolve them by reading the live objects",
        )
