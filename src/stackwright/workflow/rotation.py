"""`secrets rotate`: re-encrypting secrets at rest under a new key.

Whose key it is decides what a rotation re-encrypts. The local key
(``.stackwright/secrets.key``) and the passphrase (``STACKWRIGHT_PASSPHRASE``, salted
with the project's name) are the project's: every stack holding a value sealed with one
of them depends on that same key. Rotating such a key (a new key of the same kind)
therefore re-encrypts every stack of the project, not only the one named: in each
stack file and each stack's state, the values that key sealed (values sealed with other
keys stay as they are); the old local key is dropped only once nothing it sealed is
left. age recipients and a KMS key are named by each stack file: rotating them, or
moving one stack to another key (``--to``), re-encrypts that stack alone and leaves
every key the others use in place.

All or nothing, as far as files allow: the lock of every stack re-encrypted is taken
first (one held by another command refuses the rotation); every secret is opened and
sealed anew before anything is written; a new local key is written (after the old ones,
which still open everything) before anything it sealed is stored; the state of every
stack is rewritten in one transaction, then each stack file atomically. A failure in
between leaves every secret readable, with the old key or the new.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from stackwright.errors import ProjectError
from stackwright.operations.keyring import (
    KEY_FILE, Keyring, KeySpec, drop_local_keys, joined, local_key_of, parse_spec, passphrase_key,
    rotated_local_keys, write_key_file,
)
from stackwright.operations.session import SECURE, is_secure, stack_locks
from stackwright.program.project import Project
from stackwright.state.store import StateStore
from stackwright.workflow.config_values import open_file, open_value
from stackwright.workflow.stack_file import StackFile, add_key

NEW_PASSPHRASE_ENV = "STACKWRIGHT_NEW_PASSPHRASE"
"""The passphrase `secrets rotate` moves a passphrase stack to."""
SHARED_KEYS = ("local", "passphrase")
"""Kinds of key every stack of a project shares: rotating one re-encrypts them all."""


@dataclass(frozen=True)
class Rotated:
    stack: str
    key: str
    config_values: int
    """Secret config values of ``stack`` re-encrypted."""
    stacks: tuple[str, ...]
    """Every stack whose secrets were re-encrypted (in its state or its stack file),
    ``stack`` first."""


class StackResealer:
    """Reseals one stack's tokens (``state.codec.Resealer``): every one, or only those
    of ``kind`` (another stack that shares the rotated key)."""

    def __init__(self, opener: Keyring, sealer: Keyring, kind: str | None) -> None:
        self.opener = opener
        self.sealer = sealer
        self.kind = kind

    def resealed(self, token: str) -> bool:
        return self.kind is None or token.startswith(self.kind + ":")

    def reseal(self, token: str) -> str:
        return self.sealer.seal(self.opener.open(token)) if self.resealed(token) else token

    def seal(self, plain: bytes) -> str | None:
        return self.sealer.seal(plain) if self.kind is None else None


def rotate(project: Project, store: StateStore, stack: str, to: str | None = None, who: str = "") -> Rotated:
    """Re-encrypt ``stack``'s secret config values and state under a new key: ``to``
    (``local``, ``passphrase``, ``awskms://...``, ``age:age1...,age1...``), else a new
    key of the same kind (a new local key; ``STACKWRIGHT_NEW_PASSPHRASE``; the age
    recipients or KMS key the stack file names now); and, for a new local key or
    passphrase, every other stack's values the old one sealed (see the module's
    docstring). A wrong or missing key, an altered ciphertext or a stack locked by
    another command changes nothing. ``store`` is the project's state; ``who`` is
    recorded as the holder of the locks."""
    old = Keyring.for_stack(project, stack)
    spec = _target(to, old.spec)
    shared = spec.scheme if to is None and spec.scheme in SHARED_KEYS else None
    in_state = {info.name for info in store.list_stacks()}
    others = sorted((in_state | set(project.stack_files())) - {stack}) if shared else []
    involved = [stack, *others]
    hint = f"rotating the project's {shared} key re-encrypts every stack that uses it; " if shared else ""
    with stack_locks(store, [s for s in involved if s in in_state], who, "secrets rotate", hint):
        return _rotate(project, store, involved, in_state, old, spec, shared, to)


def _rotate(project: Project, store: StateStore, involved: list[str], in_state: set[str], old: Keyring,
            spec: KeySpec, shared: str | None, to: str | None) -> Rotated:
    stack = involved[0]
    new, local_keys = _new_keyring(project, spec, same_kind=to is None)
    # Opening uses the keys as they are on disk (a missing key file says so), but for a
    # passphrase rotation, which also opens with the new one: a rotation that failed
    # half-way can then be run again.
    opener = new if shared == "passphrase" else old
    resealers = {s: StackResealer(opener, new, None if s == stack else shared) for s in involved}
    files = {s: _sealed_config(project, s, resealers[s]) for s in involved}
    key_file = project.state_dir / KEY_FILE
    if local_keys is not None:
        write_key_file(key_file, local_keys)
    try:
        changed = store.reseal({s: resealers[s] for s in involved if s in in_state})
    except BaseException:
        if local_keys is not None:
            _put_back(key_file, local_keys[1:])
        raise
    own = files[stack]
    count = own[1] if own is not None else 0
    if to is not None:
        file = own[0] if own is not None else open_file(project, stack)[0]
        _set_spec(file, spec)
        files[stack] = (file, count)
    for edit in files.values():
        if edit is not None:
            edit[0].save()
    if shared == "local":
        drop_local_keys(project)
    rewritten = [s for s in involved[1:] if s in changed or files[s] is not None]
    return Rotated(stack, spec.text(), count, (stack, *rewritten))


def _put_back(key_file: Path, keys: list[bytes]) -> None:
    """The local keys as they were before a rotation that failed to store anything."""
    if keys:
        write_key_file(key_file, keys)
    else:
        key_file.unlink(missing_ok=True)


def _sealed_config(project: Project, stack: str, resealer: StackResealer) -> tuple[StackFile, int] | None:
    """``stack``'s file with each secret value ``resealer`` reseals sealed anew (not yet
    written), and how many; None when it has none (or no file)."""
    path = project.stack_file(stack)
    if not path.exists():
        return None
    shown = project.relative(path)
    file = StackFile.load(path, shown)
    found = [(key, holder) for key, holder in _secure_values(file.data.get("config"))
             if resealer.resealed(holder[SECURE])]
    for key, holder in found:
        holder[SECURE] = resealer.sealer.seal(open_value(resealer.opener, holder, key, file, shown))
    return (file, len(found)) if found else None


def _target(to: str | None, current: KeySpec) -> KeySpec:
    if to is None:
        return current
    if to.startswith("age:"):
        return parse_spec({"age": [r.strip() for r in to[4:].split(",") if r.strip()]}, "--to")
    return parse_spec(to, "--to")


def _new_keyring(project: Project, spec: KeySpec, same_kind: bool) -> tuple[Keyring, list[bytes] | None]:
    """The keyring that seals under the new key (and opens with the old one too), and
    for a local key the key file's new content: the new key, then the old ones."""
    new = Keyring(project, spec)
    if spec.scheme == "local":
        keys = rotated_local_keys(project)
        new.use(local_key_of(project, keys))
        return new, keys
    if spec.scheme == "passphrase" and os.environ.get(NEW_PASSPHRASE_ENV):
        new.use(joined(passphrase_key(project, NEW_PASSPHRASE_ENV), passphrase_key(project)))
    elif spec.scheme == "passphrase" and same_kind:
        raise ProjectError(f"set {NEW_PASSPHRASE_ENV} to the new passphrase",
                           hint="the old one stays in STACKWRIGHT_PASSPHRASE until the rotation is done")
    return new, None


def _secure_values(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, MutableMapping[str, Any]]]:
    """Each ``{secure: ...}`` under ``node`` and its dotted key."""
    if is_secure(node):
        yield ".".join(map(str, path)), node
    elif isinstance(node, MutableMapping):
        for key, value in node.items():
            yield from _secure_values(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _secure_values(value, (*path, index))


def _set_spec(file: StackFile, spec: KeySpec) -> None:
    value: Any = spec.url or spec.scheme
    if spec.scheme == "age":
        value = CommentedMap([("age", list(spec.recipients))])
    if "secrets" in file.data:
        file.data["secrets"] = value
    else:
        add_key(file.data, "secrets", value)
