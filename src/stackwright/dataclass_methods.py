"""The methods ``@dataclass`` generates, written once, for classes every command loads.

``@dataclass`` writes each class's ``__init__``, ``__repr__`` and ``__eq__`` (frozen:
also ``__setattr__``, ``__delattr__`` and ``__hash__``) as source text and compiles it
when the module is imported: 0.45 ms a class, 0.8 ms a frozen one, which for the sixty
classes a small `stackwright up` loads was a third of its time. A class on that path
is declared ``@dataclass(init=False, repr=False, eq=False)`` (``frozen=True`` kept
where it was, so that assigning a field still raises and mypy still says so), writes
its own ``__init__`` (a plain one, as fast to call as the generated one), and takes
equality, hashing and ``repr`` from a base below, which behave as the generated ones
do. A frozen one is declared ``@frozen_record`` (``@slotted_frozen_record`` for
``slots=True`` with defaults) and inherits ``FrozenCompared``. It stays a dataclass:
``fields``, ``replace`` and ``asdict`` work on it.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, fields
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_COMPARED: dict[type, tuple[str, ...]] = {}


def _compared(value: object) -> tuple[Any, ...]:
    """The values of the fields of ``value`` that take part in equality, in order."""
    cls = value.__class__
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(f.name for f in fields(value) if f.compare)  # type: ignore[arg-type]
    return tuple(getattr(value, name) for name in names)


class Compared:
    """``__eq__`` and ``__repr__`` as ``@dataclass`` generates them: equal to an instance
    of the same class whose compared fields are equal, in order; unhashable, like a
    dataclass that is not frozen."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _compared(self) == _compared(other)

    @recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{self.__class__.__qualname__}({shown})"


class FrozenCompared(Compared):
    """``Compared``, frozen and hashed by its compared fields as ``@dataclass(frozen=True)``
    makes it: assigning or deleting an attribute raises ``FrozenInstanceError`` (its
    ``__init__`` sets fields with ``object.__setattr__``, as the generated one does). A
    slotted one pickles as ``@dataclass(frozen=True, slots=True)`` makes it (its fields'
    values in order), since unpickling cannot assign to a frozen instance."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(_compared(self))

    def __getstate__(self) -> Any:
        if hasattr(self, "__dict__"):
            return self.__dict__
        return [getattr(self, f.name) for f in fields(self)]  # type: ignore[arg-type]

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
            return
        for f, value in zip(fields(self), state):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, value)


@dataclass_transform(frozen_default=True, eq_default=False)
def frozen_record(cls: type[T]) -> type[T]:
    """``@dataclass(init=False, repr=False, eq=False)`` for a ``FrozenCompared`` class,
    which is what makes it frozen; type checkers treat it as ``frozen=True``."""
    _check_frozen(cls)
    return dataclass(init=False, repr=False, eq=False)(cls)


@dataclass_transform(frozen_default=True, eq_default=False)
def slotted_frozen_record(cls: type[T]) -> type[T]:
    """``frozen_record`` with ``slots=True``: for a class whose fields keep their
    defaults (a class that writes its own ``__slots__`` cannot declare any), which
    ``@dataclass`` makes again with a slot per field."""
    _check_frozen(cls)
    return dataclass(init=False, repr=False, eq=False, slots=True)(cls)


def _check_frozen(cls: type) -> None:
    if not issubclass(cls, FrozenCompared):
        raise TypeError(f"{cls.__qualname__} must inherit FrozenCompared to be frozen")
