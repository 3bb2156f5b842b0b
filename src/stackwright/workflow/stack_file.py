"""Editing ``stacks/<stack>.yaml`` in place: comments, key order, quoting and the file's
own indentation survive, so that a tool's edit reads like a person's in review.

ruamel.yaml's round-trip mode does most of it. Two things it does not: guess the
indentation (we measure it) and keep a comment that follows the last key of a mapping
where it was when a key is added after it or removed (we move it).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from stackwright.errors import ProjectError

_DASH = re.compile(r"^(?P<indent> *)- +\S")
_KEY_ONLY = re.compile(r"^(?P<indent> *)[^#\s-][^#]*:\s*(#.*)?$")


@dataclass
class StackFile:
    """One stack file loaded for round-trip editing; ``data`` is the live document."""

    path: Path
    text: str
    data: CommentedMap
    yaml: YAML

    @classmethod
    def load(cls, path: Path, shown: str) -> StackFile:
        """Load ``path`` (``shown`` names it in errors); it must be a mapping."""
        if not path.exists():
            raise ProjectError("the stack file does not exist", file=shown,
                               hint="create it with a `config:` section")
        text = path.read_text(encoding="utf-8")
        yaml = round_trip_yaml(text)
        try:
            data = yaml.load(text)
        except YAMLError as exc:
            raise ProjectError(f"invalid YAML: {exc}".splitlines()[0], file=shown) from None
        if not isinstance(data, CommentedMap):
            raise ProjectError("a stack file must be a mapping with a `config:` key", file=shown)
        return cls(path, text, data, yaml)

    def config(self, shown: str) -> CommentedMap:
        """The ``config:`` mapping, which every edit here is about."""
        config = self.data.get("config")
        if not isinstance(config, CommentedMap):
            raise ProjectError("the stack file has no `config:` mapping", file=shown)
        return config

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()

    def save(self) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half."""
        write_atomically(self.path, self.dump())

    def restore(self) -> None:
        """Put back the text this was loaded from (an edit that was not applied)."""
        write_atomically(self.path, self.text)


def round_trip_yaml(text: str) -> YAML:
    """A round-trip loader/dumper that writes with ``text``'s own indentation."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    mapping, sequence, offset = guess_indent(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.explicit_start = text.lstrip().startswith("---")
    return yaml


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence item indent, dash offset) as the file uses them."""
    mapping: int | None = None
    dash: tuple[int, int] | None = None
    parent: int | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        found = _DASH.match(line)
        if found and parent is not None and dash is None:
            content = len(line) - len(line[indent + 1:].lstrip(" "))
            dash = (indent - parent, content - parent)
        elif parent is not None and indent > parent and mapping is None and not found:
            mapping = indent - parent
        key_only = _KEY_ONLY.match(line)
        parent = len(key_only.group("indent")) if key_only else None
    mapping = mapping or 2
    offset, sequence = dash if dash is not None else (0, 2)
    return mapping, max(sequence, offset + 2), offset


def write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- keys added after, or removed from, the end of a mapping ----------------------------


def add_key(mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Append ``key: value`` (a scalar), moving the comment lines that followed the
    mapping's last value (a blank line, the next section's heading) after the new key."""
    holder = trailing_holder(mapping)
    mapping[key] = value
    if holder is None or not isinstance(mapping, CommentedMap):
        return
    eol, following = split_comment(holder)
    if following:
        set_trailing(holder, eol)
        set_trailing((mapping, key), following)


def remove_key(mapping: MutableMapping[str, Any], key: str) -> None:
    """Delete ``key``; the comment lines that followed it now follow the new last value."""
    holder = trailing_holder(mapping) if list(mapping)[-1:] == [key] else None
    following = split_comment(holder)[1] if holder is not None else ""
    if isinstance(mapping, CommentedMap):
        mapping.ca.items.pop(key, None)
    del mapping[key]
    target = trailing_holder(mapping) if following else None
    if target is not None:
        eol, rest = split_comment(target)
        set_trailing(target, join_comment(eol, rest + following[1:] if rest else following))


Holder = tuple[CommentedMap | CommentedSeq, Any]
"""A collection and the key or index whose trailing comment ends the collection's text."""


def trailing_holder(node: Any) -> Holder | None:
    """Where the comment after ``node``'s last line is kept: the last key of the deepest
    last mapping (or last item of a list), as ruamel attaches it."""
    if isinstance(node, CommentedMap) and node:
        last = list(node)[-1]
        inner = trailing_holder(node[last]) if isinstance(node[last], (CommentedMap, CommentedSeq)) else None
        return inner or (node, last)
    if isinstance(node, CommentedSeq) and node:
        inner = trailing_holder(node[-1]) if isinstance(node[-1], (CommentedMap, CommentedSeq)) else None
        return inner or (node, len(node) - 1)
    return None


def _slot(holder: Holder) -> int:
    """Mappings keep a value's trailing comment at 2, lists an item's at 0."""
    return 2 if isinstance(holder[0], CommentedMap) else 0


def split_comment(holder: Holder) -> tuple[str, str]:
    """(the end-of-line comment, the comment lines after it) of ``holder``; the second
    part starts with a newline so that it can stand after any value."""
    node, key = holder
    entry = node.ca.items.get(key)
    token = entry[_slot(holder)] if entry and len(entry) > _slot(holder) else None
    value = str(token.value) if isinstance(token, CommentToken) else ""
    if not value.startswith("#"):
        return "", value
    head, newline, tail = value.partition("\n")
    return head + newline, ("\n" + tail) if tail else ""


def join_comment(eol: str, following: str) -> str:
    if eol and following:
        return eol + following[1:]
    return eol or following


def set_trailing(holder: Holder, value: str) -> None:
    node, key = holder
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    slot = _slot(holder)
    token = entry[slot]
    if not value:
        entry[slot] = None
    elif isinstance(token, CommentToken):
        token.value = value
    else:
        entry[slot] = CommentToken(value, CommentMark(0), None)
