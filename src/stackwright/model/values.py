"""Value markers shared by every layer: the unknown sentinel and secret wrappers.

Resolved inputs and outputs are plain JSON-like trees (dict, list, str, int, float,
bool, None) that may also hold ``UNKNOWN`` (a value the cloud computes during apply)
and ``Secret`` (a value that must be masked in every output and never stored plain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

MASK: Final = "[secret]"
UNKNOWN_TEXT: Final = "(known after apply)"


class Unknown:
    """The type of ``UNKNOWN``; a singleton that survives copying and pickling."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return UNKNOWN_TEXT

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown()


@dataclass(frozen=True, slots=True)
class Secret:
    """A value whose plain text must never reach a terminal, a log or a plan file."""

    value: Any

    def __repr__(self) -> str:
        return MASK


_SCALARS = frozenset({str, int, float, bool, type(None)})


def is_unknown(value: Any) -> bool:
    """True when the value is, or contains, ``UNKNOWN``."""
    if type(value) in _SCALARS:
        return False
    if value is UNKNOWN:
        return True
    if isinstance(value, Secret):
        return is_unknown(value.value)
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def is_secret(value: Any) -> bool:
    """True when the value is, or contains, a ``Secret``."""
    if type(value) in _SCALARS:
        return False
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(is_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_secret(v) for v in value)
    return False


def reveal(value: Any) -> Any:
    """The plain value with every ``Secret`` unwrapped; only providers may see it."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reveal(v) for v in value]
    return value


def masked(value: Any) -> Any:
    """The value as it may be shown to people: secrets replaced by ``[secret]``."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value


def rewrap_secrets(original: Any, plain: Any) -> Any:
    """``plain`` (a revealed and possibly normalised copy of ``original``) with every
    value that was a ``Secret`` in ``original``, at any depth, wrapped again."""
    if isinstance(original, Secret):
        return plain if isinstance(plain, Secret) else Secret(plain)
    if isinstance(original, Mapping) and isinstance(plain, Mapping):
        return {k: rewrap_secrets(original[k], v) if k in original else v for k, v in plain.items()}
    if isinstance(original, (list, tuple)) and isinstance(plain, list) and len(original) == len(plain):
        return [rewrap_secrets(o, v) for o, v in zip(original, plain)]
    return plain


def wrap_secret_keys(values: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """Copy of ``values`` with the named top-level keys wrapped as secrets."""
    out = dict(values)
    for key in keys & out.keys():
        if not isinstance(out[key], Secret):
            out[key] = Secret(out[key])
    return out


def marker_json(value: Any) -> Any:
    """``json`` ``default`` hook giving the stored form of ``Secret`` and ``UNKNOWN``."""
    if isinstance(value, Secret):
        return {"$secret": value.value}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> Any:
    """Stored form: secrets become ``{"$secret": ...}``, unknowns ``{"$unknown": true}``.

    The state and plan layers may encrypt the ``$secret`` payload; this function only
    marks it.
    """
    if isinstance(value, Secret):
        return {"$secret": to_json(value.value)}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """Inverse of ``to_json``."""
    if isinstance(value, dict):
        if len(value) == 1:
            if "$secret" in value:
                return Secret(from_json(value["$secret"]))
            if value.get("$unknown") is True:
                return UNKNOWN
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
