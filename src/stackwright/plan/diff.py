"""Property-level diff of two input trees, for people to review.

Which properties force a replacement is the provider's call; this module only says
what differs and where (``tags.env``, ``rules[2].port``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackwright.dataclass_methods import FrozenCompared, slotted_frozen_record
from stackwright.model.values import UNKNOWN, Secret


@slotted_frozen_record
class PropertyDiff(FrozenCompared):
    """One difference. Every command loads it: its methods are written, not generated
    (see stackwright.dataclass_methods); it behaves as ``@dataclass(frozen=True, slots=True)``."""

    path: str
    kind: str  # "add" | "delete" | "update"
    old: Any = None
    new: Any = None
    replaces: bool = False

    def __init__(self, path: str, kind: str, old: Any = None, new: Any = None, replaces: bool = False) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "old", old)
        object.__setattr__(self, "new", new)
        object.__setattr__(self, "replaces", replaces)


def diff_values(old: Any, new: Any, path: str = "") -> list[PropertyDiff]:
    """Every leaf difference between two values; unknown new values count as updates."""
    if old == new and new is not UNKNOWN:
        return []
    if isinstance(old, Secret) or isinstance(new, Secret) or new is UNKNOWN:
        return [PropertyDiff(path, "update", old, new)]
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _diff_mappings(old, new, path)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out: list[PropertyDiff] = []
        for index, (a, b) in enumerate(zip(old, new)):
            out.extend(diff_values(a, b, f"{path}[{index}]"))
        return out
    return [PropertyDiff(path, "update", old, new)]


def _diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[PropertyDiff]:
    out: list[PropertyDiff] = []
    for key in sorted(set(old) | set(new), key=str):
        sub = f"{path}.{key}" if path else str(key)
        if key not in old:
            out.append(PropertyDiff(sub, "add", None, new[key]))
        elif key not in new:
            out.append(PropertyDiff(sub, "delete", old[key], None))
        else:
            out.extend(diff_values(old[key], new[key], sub))
    return out


def diff_inputs(
    old: Mapping[str, Any], new: Mapping[str, Any], replace_keys: frozenset[str] = frozenset()
) -> tuple[PropertyDiff, ...]:
    """Diffs of two input maps, each marked when its top-level key forces replacement."""
    diffs = diff_values(dict(old), dict(new))
    return tuple(
        PropertyDiff(d.path, d.kind, d.old, d.new, _top(d.path) in replace_keys) for d in diffs
    )


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]
