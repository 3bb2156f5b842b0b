"""Property diffs for people, property path by property path, values in full: what
`preview --diff`, `refresh` and `history show` print.

A plan records what differs by input (``PropertyDiff``: a path, old and new values);
a list that grew or shrank is one difference holding both lists. Here every such
difference is taken apart: mappings key by key; lists element by element, the
elements matched by an identifying key when every element has one (``name``, ``id``...:
Kubernetes containers and env vars, IAM statements by ``Sid``), else by content and
position (an inserted security-group rule is one added element, not a changed list).
Added and removed elements, and created resources' inputs, are printed whole, over as
many lines as they need. Secrets are masked at any depth, before anything is
formatted; multi-line strings are shown line by line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click

from stackwright.model.values import MASK, UNKNOWN, UNKNOWN_TEXT, Secret, masked

Change = tuple[str, str, Any, Any]
"""(kind, path, old, new): kind is "add", "delete", "update" or "order"."""

IDENTITY_KEYS = ("name", "id", "key", "sid", "Sid", "uid", "Name", "Id", "Key")
"""Keys that name a list's elements, tried in this order: the first that every element
of both lists has, with a distinct text or number in each list, matches them."""

REPLACES_NOTE = "  [forces replacement]"


def change_lines(path: str, kind: str, old: Any, new: Any, *, replaces: bool = False,
                 unknown: str = UNKNOWN_TEXT) -> list[str]:
    """One recorded difference as lines (coloured), taken apart into the nested ones."""
    if kind == "add":
        changes: list[Change] = [("add", path, None, new)]
    elif kind == "delete":
        changes = [("delete", path, old, None)]
    else:
        changes = list(nested_changes(old, new, path)) or [("update", path, old, new)]
    lines: list[str] = []
    for change in changes:
        shown = _change_text(change, unknown)
        if replaces:
            shown[0] += click.style(REPLACES_NOTE, fg="magenta")
        lines += shown
    return lines


def nested_changes(old: Any, new: Any, path: str = "") -> Iterator[Change]:
    """Every difference between two values, as deep as both sides have the same shape
    (the values as they are: ``value_lines`` masks secrets when they are printed)."""
    if _same(old, new):
        return
    if old is UNKNOWN or new is UNKNOWN or isinstance(old, Secret) or isinstance(new, Secret):
        yield ("update", path, old, new)
    elif isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield ("add", sub, None, new[key])
            elif key not in new:
                yield ("delete", sub, old[key], None)
            else:
                yield from nested_changes(old[key], new[key], sub)
    elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        yield from _list_changes(list(old), list(new), path)
    else:
        yield ("update", path, old, new)


def _same(old: Any, new: Any) -> bool:
    """Equal, and not ``1`` and ``True`` (equal in Python, not in a manifest)."""
    return (old is not UNKNOWN and new is not UNKNOWN and isinstance(old, bool) == isinstance(new, bool)
            and old == new)


def _list_changes(old: list[Any], new: list[Any], path: str) -> Iterator[Change]:
    key = _identity_key(old, new)
    if key is not None:
        yield from _by_identity(old, new, path, key)
        return
    matcher = difflib.SequenceMatcher(None, [_canonical(e) for e in old], [_canonical(e) for e in new],
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for n in range(paired):  # an element changed in place: what changed in it
            yield from nested_changes(old[i1 + n], new[j1 + n], f"{path}[{j1 + n}]")
        for i in range(i1 + paired, i2):
            yield ("delete", f"{path}[{i}]", old[i], None)
        for j in range(j1 + paired, j2):
            yield ("add", f"{path}[{j}]", None, new[j])


def _identity_key(old: list[Any], new: list[Any]) -> str | None:
    elements = old + new
    if not elements or not all(isinstance(e, Mapping) for e in elements):
        return None
    for key in IDENTITY_KEYS:
        if all(isinstance(e.get(key), (str, int)) and not isinstance(e.get(key), bool) for e in elements) \
                and all(len({e[key] for e in side}) == len(side) for side in (old, new)):
            return key
    return None


def _by_identity(old: list[Any], new: list[Any], path: str, key: str) -> Iterator[Change]:
    before = {e[key]: e for e in old}
    after = {e[key]: e for e in new}
    for element in old:
        if element[key] not in after:
            yield ("delete", f"{path}[{key}={element[key]}]", element, None)
    for element in new:
        sub = f"{path}[{key}={element[key]}]"
        if element[key] not in before:
            yield ("add", sub, None, element)
        else:
            yield from nested_changes(before[element[key]], element, sub)
    kept = [e[key] for e in old if e[key] in after]
    if kept != [e[key] for e in new if e[key] in before]:
        yield ("order", path, kept, [e[key] for e in new if e[key] in before])


def _canonical(value: Any) -> str:
    """A text that is the same for equal elements (matching only: never shown; a
    secret's stands for its value by a digest)."""
    return json.dumps(value, sort_keys=True, default=_token)


def _token(value: Any) -> str:
    if value is UNKNOWN:
        return "\0unknown"
    if isinstance(value, Secret):
        return "\0secret " + hashlib.sha256(_canonical(value.value).encode()).hexdigest()
    return str(value)


def _change_text(change: Change, unknown: str) -> list[str]:
    kind, path, old, new = change
    if kind == "add":
        return _styled(_labelled(f"+ {path}: ", value_lines(new, unknown)), "green")
    if kind == "delete":
        return _styled(_labelled(f"- {path}: ", value_lines(old, unknown)), "red")
    if kind == "order":
        return _styled([f"~ {path}: order {_inline(old)} => {_inline(new)}"], "yellow")
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        return _styled([f"~ {path}:"], "yellow") + _text_diff(old, new)
    before, after = value_lines(old, unknown), value_lines(new, unknown)
    if len(before) == 1 and len(after) == 1:
        return _styled([f"~ {path}: {before[0]} => {after[0]}"], "yellow")
    joined = [*before[:-1], f"{before[-1]} => {after[0]}", *after[1:]]
    return _styled(_labelled(f"~ {path}: ", joined), "yellow")


def value_lines(value: Any, unknown: str = UNKNOWN_TEXT) -> list[str]:
    """A (masked) value as JSON: one line for a scalar or an empty container, indented
    lines for the others; unknown values named."""
    if value is UNKNOWN:
        return [unknown]
    if isinstance(value, Secret):
        return [MASK]
    shown = masked(value)
    indent = 2 if isinstance(shown, (Mapping, list)) and shown else None
    return json.dumps(shown, indent=indent, default=lambda v: unknown if v is UNKNOWN else str(v)).splitlines()


def _inline(values: Sequence[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _labelled(label: str, lines: list[str]) -> list[str]:
    """``label`` before the first line; the others indented under the label's marker."""
    return [label + lines[0], *("  " + line for line in lines[1:])]


def _styled(lines: list[str], colour: str) -> list[str]:
    return [click.style(line, fg=colour) for line in lines]


def _text_diff(old: str, new: str) -> list[str]:
    """Two texts of several lines: the lines that differ, with two of context."""
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(click.style("    " + line, fg="cyan"))
        elif line.startswith("+"):
            out.append(click.style("    + " + line[1:], fg="green"))
        elif line.startswith("-"):
            out.append(click.style("    - " + line[1:], fg="red"))
        else:
            out.append("      " + line[1:])
    return out
