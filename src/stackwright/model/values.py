"""Value markers shared by every layer: the unknown sentinel and secret wrappers.

Resolved inputs and outputs are plain JSON-like trees (dict, list, str, int, float,
bool, None) that may also hold ``UNKNOWN`` (a value the cloud computes during apply)
and ``Secret`` (a value that must be masked in every output and never stored plain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MASK: Final = "[secret]"
UNKNOWN_TEXT: Final = "(known after apply)"
RECORDED_UNKNOWN_TEXT: Final = "(unknown)"
"""A recorded value that stayed unknown (the step computing it failed)."""


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
    origins: frozenset[str] = field(default=frozenset(), compare=False)
    """For a value computed from secrets (``sw.fmt``, ``.apply``): their plain texts. A
    provider that echoes a part of the value (a command printing the password it was
    given) echoes them, not the whole value. Known while a program's values are
    planned and applied; never stored."""

    def __repr__(self) -> str:
        return MASK


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change once made: the mappings a plan holds (a step's
    inputs, recorded values and options, the stack outputs), so that a plan stays the
    value that was reviewed. Reading, iterating, ``json`` and ``dict(...)`` cost what a
    dict's do; what it holds is not copied (nested dicts and lists stay as they are).
    ``copy``/``deepcopy`` and ``pickle`` give a ``FrozenDict`` again."""

    __slots__ = ()

    def _refuse(self) -> TypeError:
        return TypeError("a plan's mappings cannot be changed (FrozenDict): copy it with dict(...) first")

    def __setitem__(self, key: str, value: Any) -> None:
        raise self._refuse()

    def __delitem__(self, key: str) -> None:
        raise self._refuse()

    def __ior__(self, other: Any) -> FrozenDict:  # type: ignore[misc,override]
        raise self._refuse()

    def clear(self) -> None:
        raise self._refuse()

    def pop(self, *args: Any) -> Any:
        raise self._refuse()

    def popitem(self) -> tuple[str, Any]:
        raise self._refuse()

    def setdefault(self, *args: Any) -> Any:
        raise self._refuse()

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse()

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return FrozenDict, (dict(self),)

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        import copy

        return FrozenDict(copy.deepcopy(dict(self), memo))


def frozen(mapping: Mapping[str, Any]) -> FrozenDict:
    """``mapping`` as a ``FrozenDict`` (itself when it is one)."""
    return mapping if type(mapping) is FrozenDict else FrozenDict(mapping)


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


def is_plain(value: Any) -> bool:
    """True when the value holds only plain data: no Output, no ``Secret``, no
    ``UNKNOWN`` at any depth (most Kubernetes manifests), so that resolving, revealing
    and re-marking it would only copy it."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for item in value:
        if type(item) not in _SCALARS and not is_plain(item):
            return False
    return True


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


def wrap_secret_keys(values: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """Copy of ``values`` with the named top-level keys wrapped as secrets."""
    out = dict(values)
    for key in keys & out.keys():
        if not isinstance(out[key], Secret):
            out[key] = Secret(out[key])
    return out


SHORTEST_DERIVED_TEXT: Final = 4
"""A leaf of a value computed from secrets counts as a secret's text from this length:
its origins are masked anyway, and a fragment such as ``"e"`` (``Output.all(token,
"e").apply(...)``) would mask that letter in every message."""


def secret_texts(value: Any, into: set[str] | None = None) -> set[str]:
    """Every plain text a secret in ``value`` holds: its strings, and any other leaf
    written as text, as an error message would show it; for a value computed from
    secrets, also theirs (``Secret.origins``)."""
    out = set() if into is None else into
    _texts(value, out, inside=0)
    return out


def _texts(value: Any, out: set[str], inside: int) -> None:
    """``inside``: 0 outside any secret, else the shortest leaf that counts."""
    if not inside and type(value) in _SCALARS:  # most leaves: no type check of the ABCs
        return
    if isinstance(value, Secret):
        out.update(value.origins)
        _texts(value.value, out, inside=SHORTEST_DERIVED_TEXT if value.origins else 1)
    elif isinstance(value, Mapping):
        for v in value.values():
            _texts(v, out, inside)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _texts(v, out, inside)
    elif inside and value is not None and not isinstance(value, bool) and value is not UNKNOWN:
        text = str(value)
        if len(text) >= inside:
            out.add(text)


def mark_containing(value: Any, secrets: set[str] | frozenset[str]) -> Any:
    """``value`` with every plain string that contains a secret's text marked secret: a
    command that prints a password it was given does not make the password public."""
    if isinstance(value, str):
        return Secret(value) if any(s in value for s in secrets) else value
    if isinstance(value, Mapping):
        return {k: mark_containing(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mark_containing(v, secrets) for v in value]
    return value


def mask_text(text: str, secrets: set[str] | frozenset[str]) -> str:
    """``text`` (an error message, a command's output) with every secret replaced by
    ``[secret]``, longest first so that no part of a longer secret is left showing."""
    for plain in sorted((s for s in secrets if s in text), key=len, reverse=True):
        text = text.replace(plain, MASK)
    return text


def mask_message(text: str, secrets: set[str] | frozenset[str]) -> str:
    """``text`` (an exception's message) with every secret masked as written and as
    ``repr`` escapes it: a message often quotes the value it refused."""
    return mask_text(text, {*secrets, *(repr(plain)[1:-1] for plain in secrets)})


def remark_secrets(original: Any, changed: Any) -> Any:
    """``changed`` (``original`` revealed, then normalised by a provider) with the
    secrets of ``original`` marked again where they were, at any depth. Where the two
    no longer have the same shape, the whole value that holds a secret is secret."""
    if not is_secret(original):
        return changed
    if isinstance(original, Secret):
        return changed if isinstance(changed, Secret) else Secret(changed, original.origins)
    if isinstance(original, Mapping) and isinstance(changed, Mapping) and original.keys() <= changed.keys():
        return {k: remark_secrets(original.get(k), v) for k, v in changed.items()}
    if (isinstance(original, (list, tuple)) and isinstance(changed, (list, tuple))
            and len(original) == len(changed)):
        return [remark_secrets(o, c) for o, c in zip(original, changed)]
    return Secret(changed)


def carry_secrets(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """``outputs`` where an output named like a secret input (a provider echoing its
    input back) stays as secret as the input was."""
    return {k: remark_secrets(inputs[k], v) if k in inputs else v for k, v in outputs.items()}


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
    if type(value) in _SCALARS:
        return value
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
