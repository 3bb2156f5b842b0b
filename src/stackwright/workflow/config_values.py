"""`config set|get|rm` and `secrets rotate`: editing ``stacks/<stack>.yaml`` in place.

Edits keep the file's comments, order and indentation (``stack_file``). A secret value
is written as ``key: {secure: <ciphertext>}``, sealed with the stack's key
(``operations.keyring``); the program reads it back as a secret (``config.require_secret``).
Rotation re-encrypts the stack's config and state under a new key: state first, in one
transaction, then the stack file, while the old key still opens everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap

from stackwright.errors import ProjectError
from stackwright.model.values import MASK
from stackwright.operations.keyring import (
    KEY_FILE, Keyring, KeySpec, add_local_key, drop_local_keys, parse_spec, passphrase_key, write_key_file,
)
from stackwright.operations.session import SECURE, is_secure, open_store
from stackwright.program.project import Project
from stackwright.workflow.stack_file import StackFile, add_key, remove_key

NEW_PASSPHRASE_ENV = "STACKWRIGHT_NEW_PASSPHRASE"
"""The passphrase `secrets rotate` moves a passphrase stack to."""


def _open_file(project: Project, stack: str) -> tuple[StackFile, str]:
    path = project.stack_file(stack)
    shown = project.relative(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("config: {}\n", encoding="utf-8")
    file = StackFile.load(path, shown)
    if file.data.get("config") is None:
        add_key(file.data, "config", CommentedMap())
    return file, shown


def _walk(config: MutableMapping[str, Any], key: str, shown: str, create: bool) -> tuple[MutableMapping[str, Any], str]:
    """The mapping that holds the last part of a dotted ``key``, and that part."""
    *parents, last = key.split(".")
    node = config
    for part in parents:
        child = node.get(part)
        if child is None and create:
            add_key(node, part, CommentedMap())
            child = node[part]
        if not isinstance(child, MutableMapping):
            raise ProjectError(f"config key {key!r}: {part!r} is not a mapping", file=shown)
        node = child
    return node, last


def parse_value(text: str) -> Any:
    """A value as YAML reads it (``3`` is a number, ``true`` a boolean); anything that is
    not a plain scalar stays the text it was."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) else text


def set_value(project: Project, stack: str, key: str, text: str, *, secret: bool) -> None:
    """Set ``key`` (dotted for nested mappings); a secret is stored only as ciphertext."""
    file, shown = _open_file(project, stack)
    node, last = _walk(file.config(shown), key, shown, create=True)
    value: Any = parse_value(text)
    if secret:
        sealed = Keyring.for_stack(project, stack).seal(json.dumps(text).encode())
        value = CommentedMap([(SECURE, sealed)])
        value.fa.set_flow_style()
    if last in node:
        node[last] = value
    else:
        add_key(node, last, value)
    file.save()


def get_value(project: Project, stack: str, key: str, *, show_secrets: bool) -> Any:
    """The value of ``key``; a secret masked unless ``show_secrets`` (which needs the key)."""
    file, shown = _open_file(project, stack)
    node, last = _walk(file.config(shown), key, shown, create=False)
    if last not in node:
        raise ProjectError(f"config key {key!r} is not set", file=shown,
                           hint=f"stackwright config set {key} VALUE")
    value = node[last]
    if is_secure(value):
        return json.loads(Keyring.for_stack(project, stack).open(value[SECURE])) if show_secrets else MASK
    return value


def remove_value(project: Project, stack: str, key: str) -> None:
    file, shown = _open_file(project, stack)
    node, last = _walk(file.config(shown), key, shown, create=False)
    if last not in node:
        raise ProjectError(f"config key {key!r} is not set", file=shown)
    remove_key(node, last)
    file.save()


# --- rotation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotated:
    stack: str
    key: str
    config_values: int


def rotate(project: Project, stack: str, to: str | None = None) -> Rotated:
    """Re-encrypt ``stack``'s secret config values and state under a new key: ``to``
    (``local``, ``passphrase``, ``awskms://...``, ``age:age1...,age1...``), else a new
    key of the same kind (a new local key; ``STACKWRIGHT_NEW_PASSPHRASE``; the age
    recipients or KMS key the stack file names now).

    Everything is opened before anything is written: a wrong or missing key, or an
    altered ciphertext, changes nothing."""
    file, shown = _open_file(project, stack)
    old = Keyring.for_stack(project, stack)
    spec = _target(to, old.spec)
    sealed = list(_secure_values(file.config(shown)))
    plain = [old.open(holder[SECURE]) for holder in sealed]
    new, old_local_keys = _new_keyring(project, spec, same_kind=to is None)
    store = open_store(project, stack)
    try:
        store.reseal(stack, new)
    except BaseException:
        if old_local_keys is not None:
            write_key_file(project.state_dir / KEY_FILE, old_local_keys)
        raise
    finally:
        store.close()
    for holder, value in zip(sealed, plain):
        holder[SECURE] = new.seal(value)
    if to is not None:
        _set_spec(file, spec)
    file.save()
    if spec.scheme == "local" and old.spec.scheme == "local" and to is None:
        drop_local_keys(project)
    return Rotated(stack, spec.text(), len(sealed))


def _target(to: str | None, current: KeySpec) -> KeySpec:
    if to is None:
        return current
    if to.startswith("age:"):
        return parse_spec({"age": [r.strip() for r in to[4:].split(",") if r.strip()]}, "--to")
    return parse_spec(to, "--to")


def _new_keyring(project: Project, spec: KeySpec, same_kind: bool) -> tuple[Keyring, list[bytes] | None]:
    """The keyring that seals under the new key, and the local keys before a new one
    was added (to put back if the rotation fails)."""
    new = Keyring(project, spec)
    if spec.scheme == "local":
        return new, add_local_key(project)
    if spec.scheme == "passphrase" and os.environ.get(NEW_PASSPHRASE_ENV):
        new.use(passphrase_key(project, NEW_PASSPHRASE_ENV))
    elif spec.scheme == "passphrase" and same_kind:
        raise ProjectError(f"set {NEW_PASSPHRASE_ENV} to the new passphrase",
                           hint="the old one stays in STACKWRIGHT_PASSPHRASE until the rotation is done")
    return new, None


def _secure_values(node: Any) -> Iterator[MutableMapping[str, Any]]:
    if is_secure(node):
        yield node
    elif isinstance(node, MutableMapping):
        for value in node.values():
            yield from _secure_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _secure_values(value)


def _set_spec(file: StackFile, spec: KeySpec) -> None:
    value: Any = spec.url or spec.scheme
    if spec.scheme == "age":
        value = CommentedMap([("age", list(spec.recipients))])
    if "secrets" in file.data:
        file.data["secrets"] = value
    else:
        add_key(file.data, "secrets", value)

