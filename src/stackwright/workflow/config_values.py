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
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString, SingleQuotedScalarString

from stackwright.errors import ProjectError
from stackwright.model.values import MASK
from stackwright.operations.keyring import (
    KEY_FILE, Keyring, KeySpec, add_local_key, drop_local_keys, parse_spec, passphrase_key, write_key_file,
)
from stackwright.operations.session import SECURE, is_secure, naming_config_key, open_store
from stackwright.program.project import ConfigLines, Project
from stackwright.workflow.stack_file import StackFile, add_key, remove_key

NEW_PASSPHRASE_ENV = "STACKWRIGHT_NEW_PASSPHRASE"
"""The passphrase `secrets rotate` moves a passphrase stack to."""

_YAML_1_1 = yaml.resolver.Resolver()
_TEXT_TAG = "tag:yaml.org,2002:str"
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")
"""Line breaks YAML folds into ``\\n`` (or a space) in a block or a single-quoted scalar."""


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
    *parents, last = _parts(key)
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


def _parts(key: str) -> list[str]:
    """The parts of a dotted ``key``; an empty one (``""``, ``a..b``, ``.a``) would be
    written as a key ``''`` nobody meant."""
    parts = key.split(".")
    if not all(parts):
        raise ProjectError(f"invalid config key {key!r}: a part of it is empty (nested keys are written db.port)")
    return parts


def parse_value(text: str, *, as_text: bool = False) -> str | int | float | bool:
    """What ``config set KEY VALUE`` stores: a number or a boolean when ``text`` is that
    value's one spelling (``3``, ``2.5``, ``true``), the one `config get` prints back;
    else the text exactly as typed (``1.10``, ``0777``, ``no``, ``a # b``, lines)."""
    if as_text:
        return text
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer too long for int()
        return text
    typed = isinstance(value, (int, float, bool)) and json.dumps(value) == text
    return value if typed else text


def _written(text: str) -> str:
    """``text`` as a scalar that reads back as this same text in YAML 1.2 (ruamel, which
    edits the file) and in YAML 1.1 (PyYAML, which reads it for the program): plain
    ``no`` or ``1:20`` are text to the one and not to the other, so they are quoted.
    Several lines are a literal block, double-quoted instead when they hold a line break
    other than ``\\n`` (folded) or a tab (libyaml refuses a line of only a tab there)."""
    written: str = text
    if _OTHER_BREAKS.search(text) or ("\n" in text and "\t" in text):
        written = DoubleQuotedScalarString(text)
    elif "\n" in text:
        written = LiteralScalarString(text)
    elif _YAML_1_1.resolve(yaml.ScalarNode, text, (True, False)) != _TEXT_TAG:  # type: ignore[no-untyped-call]
        written = SingleQuotedScalarString(text)
    return written


def set_value(project: Project, stack: str, key: str, text: str, *, secret: bool, as_text: bool = False) -> None:
    """Set ``key`` (dotted for nested mappings) to ``text``, or to the number or boolean it
    spells unless ``as_text``; a secret is stored only as ciphertext."""
    file, shown = _open_file(project, stack)
    node, last = _walk(file.config(shown), key, shown, create=True)
    value: Any = parse_value(text, as_text=as_text)
    if isinstance(value, str):
        value = _written(value)
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
        return json.loads(_open(Keyring.for_stack(project, stack), value, key, file, shown)) if show_secrets else MASK
    return value


def _open(keyring: Keyring, holder: Mapping[str, Any], key: str, file: StackFile, shown: str) -> bytes:
    """The plain text of the secret config value ``key``; an error names it and its line."""
    with naming_config_key(key, shown, ConfigLines(file.path)):
        return keyring.open(holder[SECURE])


def remove_value(project: Project, stack: str, key: str) -> None:
    """Remove ``key``, and each mapping above it that the removal left empty (``config
    rm db.password`` leaves no ``db: {}``); ``config:`` itself stays."""
    file, shown = _open_file(project, stack)
    config = file.config(shown)
    node, last = _walk(config, key, shown, create=False)
    if last not in node:
        raise ProjectError(f"config key {key!r} is not set", file=shown)
    remove_key(node, last)
    parts = _parts(key)[:-1]
    while parts and not node:
        node, last = _walk(config, ".".join(parts), shown, create=False)
        remove_key(node, last)
        parts.pop()
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
    sealed = dict(_secure_values(file.config(shown)))
    plain = [_open(old, holder, key, file, shown) for key, holder in sealed.items()]
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
    for holder, value in zip(sealed.values(), plain):
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

