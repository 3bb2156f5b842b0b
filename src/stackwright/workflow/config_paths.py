"""Config paths such as ``platform.node_groups[*].desired_size``: how environments name
the settings that ``pause`` overrides.

Grammar: dot-separated keys, each optionally followed by selectors in brackets —
``[*]`` every list item, ``[2]`` one item, ``[name=batch]`` the items whose ``name`` is
``batch`` — and ``*`` as a key for every key of a mapping.

A pattern expands, against one stack's config, to concrete *slots*. A slot's path names
list items by ``name`` when they have a unique one (``node_groups[name=general]``), so a
saved value goes back to the right node group even if the list was reordered meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, MutableSequence
from dataclasses import dataclass
from typing import Any, Literal

from stackwright.errors import ProjectError

StepKind = Literal["key", "any_key", "index", "any_item", "match"]

_TOKEN = re.compile(r"(?P<dot>\.)|\[(?P<selector>[^\]]*)\]|(?P<key>[^.\[\]]+)")
_MATCH = re.compile(r"^(?P<field>[^=\s]+)=(?P<value>.*)$")
_PLAIN_NAME = re.compile(r"^[^.\[\]=]+$")


@dataclass(frozen=True)
class Step:
    """One hop of a path: a key, an index, a ``field=value`` match or a wildcard."""

    kind: StepKind
    key: str = ""
    index: int = 0
    value: str = ""

    def text(self) -> str:
        """The step as written in a path (a key without its leading dot)."""
        if self.kind == "key":
            return self.key
        if self.kind == "any_key":
            return "*"
        if self.kind == "index":
            return f"[{self.index}]"
        if self.kind == "any_item":
            return "[*]"
        return f"[{self.key}={self.value}]"


@dataclass(frozen=True)
class Slot:
    """One concrete setting a pattern reached: its container, the key or index in it,
    and whether it exists yet (a missing last key is created, then removed again)."""

    path: str
    container: Any
    key: str | int
    exists: bool

    @property
    def value(self) -> Any:
        return self.container[self.key] if self.exists else None


def parse_path(path: str) -> list[Step]:
    """The steps of ``path``; a malformed path is a project error naming it."""
    steps: list[Step] = []
    position, expect_key = 0, True
    for match in _TOKEN.finditer(path):
        if match.start() != position:
            break
        position = match.end()
        if match.group("dot") is not None:
            if expect_key:
                raise _bad(path, "empty key")
            expect_key = True
            continue
        if match.group("key") is not None:
            if not expect_key:
                raise _bad(path, "missing '.' before a key")
            steps.append(Step("any_key") if match.group("key") == "*" else Step("key", key=match.group("key")))
        else:
            if expect_key and steps:
                raise _bad(path, "a selector must follow a key")
            steps.append(_selector(path, match.group("selector")))
        expect_key = False
    if position != len(path) or expect_key or not steps or steps[0].kind not in ("key", "any_key"):
        raise _bad(path, "expected keys separated by '.', with [*], [N] or [field=value] selectors")
    return steps


def _selector(path: str, text: str) -> Step:
    text = text.strip()
    if text == "*":
        return Step("any_item")
    if text.isdigit():
        return Step("index", index=int(text))
    found = _MATCH.match(text)
    if found is None:
        raise _bad(path, f"unknown selector [{text}]")
    return Step("match", key=found.group("field"), value=found.group("value").strip())


def _bad(path: str, why: str) -> ProjectError:
    return ProjectError(f"invalid config path {path!r}: {why}",
                        hint="e.g. platform.node_groups[*].desired_size or services[name=api].replicas")


def expand(config: Any, path: str) -> list[Slot]:
    """Every slot ``path`` reaches in ``config``. A missing intermediate key is an error
    (a typo would otherwise pause nothing); a missing last key is a slot to create."""
    return list(_walk(config, parse_path(path), "", path))


def _walk(node: Any, steps: list[Step], prefix: str, pattern: str) -> Iterator[Slot]:
    step, rest = steps[0], steps[1:]
    for key, label in _children(node, step, prefix, pattern):
        here = prefix + label
        if not rest:
            yield Slot(here, node, key, _has(node, key))
        elif not _has(node, key):
            raise ProjectError(f"config path {pattern!r}: {here} does not exist",
                               hint="fix the environment's `pause:` settings or the stack's config")
        else:
            yield from _walk(node[key], rest, here, pattern)


def _children(node: Any, step: Step, prefix: str, pattern: str) -> Iterator[tuple[str | int, str]]:
    """The keys or indexes ``step`` selects in ``node``, each with its concrete label."""
    dot = "." if prefix else ""
    if step.kind in ("key", "any_key"):
        if not isinstance(node, MutableMapping):
            raise _not_a(pattern, prefix, "mapping")
        keys = [step.key] if step.kind == "key" else [str(k) for k in node]
        yield from ((key, dot + key) for key in keys)
        return
    if not isinstance(node, MutableSequence):
        raise _not_a(pattern, prefix, "list")
    labels = item_labels(node)
    if step.kind == "any_item":
        yield from enumerate(labels)
    elif step.kind == "index":
        if step.index >= len(node):
            raise ProjectError(f"config path {pattern!r}: {prefix} has no item {step.index}",
                               hint="fix the environment's `pause:` settings or the stack's config")
        yield step.index, labels[step.index]
    else:
        yield from ((i, labels[i]) for i, item in enumerate(node)
                    if isinstance(item, MutableMapping) and str(item.get(step.key)) == step.value)


def _not_a(pattern: str, prefix: str, what: str) -> ProjectError:
    return ProjectError(f"config path {pattern!r}: {prefix or 'config'} is not a {what}",
                        hint="fix the environment's `pause:` settings or the stack's config")


def item_labels(items: MutableSequence[Any]) -> list[str]:
    """``[name=X]`` for items with a unique, plain ``name``; ``[N]`` for the others."""
    names = [item.get("name") if isinstance(item, MutableMapping) else None for item in items]
    labels = []
    for index, name in enumerate(names):
        plain = isinstance(name, str) and _PLAIN_NAME.match(name) and names.count(name) == 1
        labels.append(f"[name={name}]" if plain else f"[{index}]")
    return labels


def _has(node: Any, key: str | int) -> bool:
    if isinstance(node, MutableMapping):
        return key in node
    return isinstance(key, int) and 0 <= key < len(node)


def resolve(config: Any, path: str) -> Slot:
    """The one slot a concrete path (as ``expand`` wrote it) names now."""
    slots = expand(config, path)
    if len(slots) != 1:
        raise ProjectError(f"config path {path!r} names {len(slots)} settings now, not one")
    return slots[0]
