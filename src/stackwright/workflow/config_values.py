"""`config set|get|rm` and `secrets rotate`: editing ``stacks/<stack>.yaml`` in place.

Edits keep the file's comments, order and indentation (``stack_file``). A secret value
is written as ``key: {secure: <ciphertext>}``, sealed with the stack's key
(``operations.keyring``); the program reads it back as a secret (``config.require_secret``).
Rotation (``rotation``) re-encrypts these values, and the state, under a new key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString, SingleQuotedScalarString

from stackwright.errors import ProjectError
from stackwright.model.values import MASK
from stackwright.operations.keyring import Keyring
from stackwright.operations.session import SECURE, is_secure, naming_config_key
from stackwright.program.project import ConfigLines, Project
from stackwright.workflow.stack_file import StackFile, add_key, remove_key

_YAML_1_1 = yaml.resolver.Resolver()
_TEXT_TAG = "tag:yaml.org,2002:str"
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")
"""Line breaks YAML folds into ``\\n`` (or a space) in a block or a single-quoted scalar."""


def open_file(project: Project, stack: str) -> tuple[StackFile, str]:
    """``stacks/<stack>.yaml`` to edit (made when missing), and its path as shown."""
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
    file, shown = open_file(project, stack)
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
    file, shown = open_file(project, stack)
    node, last = _walk(file.config(shown), key, shown, create=False)
    if last not in node:
        raise ProjectError(f"config key {key!r} is not set", file=shown,
                           hint=f"stackwright config set {key} VALUE")
    value = node[last]
    if is_secure(value):
        return json.loads(open_value(Keyring.for_stack(project, stack), value, key, file, shown)) if show_secrets else MASK
    return value


def open_value(keyring: Keyring, holder: Mapping[str, Any], key: str, file: StackFile, shown: str) -> bytes:
    """The plain text of the secret config value ``key``; an error names it and its line."""
    with naming_config_key(key, shown, ConfigLines(file.path)):
        return keyring.open(holder[SECURE])


def remove_value(project: Project, stack: str, key: str) -> None:
    """Remove ``key``, and each mapping above it that the removal left empty (``config
    rm db.password`` leaves no ``db: {}``); ``config:`` itself stays."""
    file, shown = open_file(project, stack)
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
