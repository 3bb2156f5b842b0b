"""The ``local`` provider: files on this machine and shell commands.

Both run in the CLI's process. Relative paths and command directories resolve against
the project's folder (``root`` in the provider's config, which the session sets), else
the working directory; commands without ``dir`` run in that folder. Only the standard
library is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.protocol import (
    Created,
    DiffResult,
    OperationContext,
    ReadResult,
    ResourceProvider,
)
from stackwright.providers.registry import SimpleProvider

if TYPE_CHECKING:  # imported where used: a program of files only runs no command
    import subprocess

__all__ = ["Command", "CommandProvider", "File", "FileProvider", "provider"]

VERSION = "0.1.0"
STDERR_LINES = 20
"""How much of a failed command's stderr the error message carries."""


class File(Resource, type="local:File"):
    """A file whose content and permission bits Stackwright owns."""

    path: str
    content: str = ""
    mode: int = 0o644
    sha256: Output[str]
    size: Output[int]


class Command(Resource, type="local:Command"):
    """Shell commands run on create, update, read and delete."""

    create: str
    delete: str | None = None
    update: str | None = None
    read: str | None = None
    environment: dict[str, str] = {}
    triggers: list[str] = []
    dir: str | None = None
    stdout: Output[str]


# --- File -------------------------------------------------------------------------


class FileProvider(ResourceProvider):
    """Files are written whole and atomically, so a crash never leaves half a file."""

    type_token = "local:File"
    resource_class = File
    in_process = True
    replace_on = frozenset({"path"})
    computed_on_update = frozenset({"sha256", "size"})
    """A content change changes both, so dependents cannot use the recorded values."""
    derived_outputs = {"sha256": frozenset({"content"}), "size": frozenset({"content"})}
    """Secret when the content is: its digest confirms a guess offline, its length
    narrows one."""
    root: str | None = None

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        path, content, mode = inputs.get("path"), inputs.get("content", ""), inputs.get("mode", 0o644)
        if not isinstance(path, str) or not path:
            raise InputError("path must be a non-empty string", prop="path")
        if not isinstance(content, str):
            raise InputError("content must be a string", prop="content")
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
            raise InputError(f"mode must be an integer between 0 and 0o7777, got {mode!r}",
                             prop="mode", hint="write it in octal, e.g. mode=0o600")
        return {"path": path, "content": content, "mode": mode}

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        """A path spelled differently but naming the same file is an in-place update.

        Replacing it would create the new file and then delete the old one, which is
        the same file.
        """
        result = super().diff(old_inputs, old_outputs, new_inputs)
        if "path" in result.replaces and _same_file(old_inputs.get("path"), new_inputs.get("path"), self.root):
            replaces = tuple(k for k in result.replaces if k != "path")
            return DiffResult(changed=result.changed, replaces=replaces)
        return result

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        path = _absolute(inputs["path"], self.root)
        data = str(inputs.get("content", "")).encode("utf-8")
        _write_atomically(path, data, int(inputs.get("mode", 0o644)))
        ctx.log(f"wrote {len(data)} bytes to {path}")
        return Created(id=path, outputs=_file_outputs(data))

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        """The file as it is now, so edits made outside Stackwright show as drift."""
        if id is None:
            path = inputs.get("path")
            if not isinstance(path, str) or not path:
                return None
            id = _absolute(path, self.root)
        found = _read_file(id)
        if found is None:
            return None
        data, mode = found
        declared = inputs.get("path")
        path = declared if isinstance(declared, str) and _absolute(declared, self.root) == id else id
        live = {"path": path, "content": data.decode("utf-8", errors="replace"), "mode": mode}
        return ReadResult(id=id, inputs=live, outputs=_file_outputs(data))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        data = str(new_inputs.get("content", "")).encode("utf-8")
        _write_atomically(id, data, int(new_inputs.get("mode", 0o644)))
        ctx.log(f"rewrote {id} ({len(data)} bytes)")
        return _file_outputs(data)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """Already gone is as good as deleted, so a retried delete succeeds."""
        _remove_scratch(id)
        try:
            os.remove(id)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProviderError(f"cannot delete {id}: {exc.strerror or exc}") from exc
        ctx.log(f"deleted {id}")


def _absolute(path: str, root: str | None) -> str:
    return os.path.abspath(os.path.join(root, path) if root else path)


def _same_file(old: Any, new: Any, root: str | None) -> bool:
    return isinstance(old, str) and isinstance(new, str) and bool(old) and bool(new) \
        and _absolute(old, root) == _absolute(new, root)


def _file_outputs(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _read_file(path: str) -> tuple[bytes, int] | None:
    """Content and permission bits, or ``None`` when nothing is there."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(f"{path} exists but is not a regular file")
            return f.read(), stat.S_IMODE(info.st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError as exc:
        raise ProviderError(f"{path} exists but is a directory") from exc
    except PermissionError as exc:
        raise ProviderError(f"cannot read {path}: permission denied") from exc


def _write_atomically(path: str, data: bytes, mode: int) -> None:
    """Temp file in the same directory, fsync, rename: readers see old or new, never half."""
    import tempfile

    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        _remove_scratch(path)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=_scratch_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise ProviderError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise ProviderError(f"cannot write {path}: {exc.strerror or exc}") from exc
    _fsync_directory(directory)


def _scratch_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


_SCRATCH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _remove_scratch(path: str) -> None:
    """Remove the temp files of earlier writes of ``path`` that were killed before
    their rename, so a crash leaves no litter once the file is written or deleted again.

    Only names of the exact shape ``mkstemp`` gives ``_write_atomically``'s temp files
    (prefix, 8 random characters, ``.tmp``) are touched.
    """
    directory, prefix = os.path.dirname(path) or ".", _scratch_prefix(path)
    try:
        with os.scandir(directory) as found:
            entries = list(found)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        middle = name[len(prefix):-len(".tmp")]
        if (name.startswith(prefix) and name.endswith(".tmp") and len(middle) == 8
                and set(middle) <= _SCRATCH_CHARS and entry.is_file(follow_symlinks=False)):
            with contextlib.suppress(OSError):
                os.remove(entry.path)


def _fsync_directory(directory: str) -> None:
    """Makes the rename itself durable; not every platform or filesystem allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- Command ----------------------------------------------------------------------


class CommandProvider(ResourceProvider):
    """Commands are opaque: Stackwright cannot see what they did, only their output."""

    type_token = "local:Command"
    resource_class = Command
    replace_on = frozenset({"create", "triggers", "dir", "environment"})
    not_importable = "what a command made cannot be looked at, so the commands cannot be read back from its id"
    computed_on_update = frozenset({"stdout"})
    """An ``update`` command may print something new; we cannot know before running it."""
    secret_when_given = frozenset({"stdout"})
    """A command given a secret may print any part of it, changed in any way."""
    root: str | None = None

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(inputs)
        if not isinstance(checked.get("create"), str) or not checked["create"].strip():
            raise InputError("create must be a non-empty shell command", prop="create")
        for key in ("delete", "update", "read", "dir"):
            if checked.get(key) is not None and not isinstance(checked[key], str):
                raise InputError(f"{key} must be a string or None", prop=key)
        environment = checked.setdefault("environment", {})
        if not isinstance(environment, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
        ):
            raise InputError("environment must map strings to strings", prop="environment")
        triggers = checked.setdefault("triggers", [])
        if not isinstance(triggers, (list, tuple)) or not all(isinstance(t, str) for t in triggers):
            raise InputError("triggers must be a list of strings", prop="triggers")
        return checked

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        stdout = _run("create", inputs["create"], ctx, inputs, {}, self.root)
        return Created(id=ctx.token, outputs={"stdout": stdout})

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        """Without a ``read`` command there is nothing to look at, so state is taken as true.

        With no id there is no way to tell whether an interrupted create ran, so the
        engine runs it again.
        """
        if id is None:
            return None
        command = inputs.get("read")
        if not command:
            return ReadResult(id=id, inputs=dict(inputs), outputs=dict(outputs))
        stdout = _run("read", command, ctx, inputs, _existing(id, outputs), self.root)
        return ReadResult(id=id, inputs=dict(inputs), outputs={"stdout": stdout})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        command = new_inputs.get("update")
        if not command:
            return {"stdout": old_outputs.get("stdout", "")}
        return {"stdout": _run("update", command, ctx, new_inputs, _existing(id, old_outputs), self.root)}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        command = inputs.get("delete")
        if command:
            _run("delete", command, ctx, inputs, _existing(id, outputs), self.root)


def _existing(id: str, outputs: Mapping[str, Any]) -> dict[str, str]:
    """What a command acting on an earlier create needs to know about it."""
    return {"STACKWRIGHT_ID": id, "STACKWRIGHT_STDOUT": str(outputs.get("stdout", ""))}


def _run(
    operation: str, command: str, ctx: OperationContext, inputs: Mapping[str, Any],
    extra_env: Mapping[str, str], root: str | None,
) -> str:
    """Run one shell command; its stripped stdout, or a ProviderError with its stderr.

    The command gets a session (and process group) of its own: a terminal's Ctrl-C goes
    to the whole foreground group, and must reach only stackwright, which lets running
    commands finish and records them, rather than kill them half-way."""
    import subprocess

    env = _environment(ctx, inputs, extra_env)
    directory = inputs.get("dir")
    cwd = _absolute(directory, root) if directory else root
    ctx.log(f"{operation}: {command}")
    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, env=env,
            cwd=cwd, timeout=ctx.timeout,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProviderError(f"{operation} command timed out after {exc.timeout:g}s: {command}") from exc
    except OSError as exc:
        raise ProviderError(f"cannot run {operation} command in {directory!r}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise ProviderError(_failure(operation, done))
    return done.stdout.strip()


def _environment(
    ctx: OperationContext, inputs: Mapping[str, Any], extra_env: Mapping[str, str],
) -> dict[str, str]:
    """The CLI's environment, then the user's variables, then ours, which always win."""
    env = dict(os.environ)
    env.update(inputs.get("environment") or {})
    env.update({"STACKWRIGHT_URN": ctx.urn, "STACKWRIGHT_NAME": ctx.name,
                "STACKWRIGHT_TOKEN": ctx.token})
    env.update(extra_env)
    return env


def _failure(operation: str, done: subprocess.CompletedProcess[str]) -> str:
    tail = (done.stderr or done.stdout or "").strip().splitlines()[-STDERR_LINES:]
    message = f"{operation} command exited with status {done.returncode}"
    return message + (":\n" + "\n".join(tail) if tail else " (no output)")


class LocalProvider(SimpleProvider):
    """Passes the project folder (``root`` in its config) to both resource types."""

    def __init__(self) -> None:
        self.files, self.commands = FileProvider(), CommandProvider()
        super().__init__("local", VERSION, [self.files, self.commands])

    def configure(self, config: Mapping[str, Any]) -> None:
        super().configure(config)
        root = config.get("root")
        self.files.root = self.commands.root = str(root) if root else None


def provider() -> SimpleProvider:
    return LocalProvider()
