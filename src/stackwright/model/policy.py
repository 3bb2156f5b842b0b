"""What a user policy is written with: ``@sw.policy`` and ``sw.Violation``.

A user policy is a plain function in ``<project>/policies/*.py`` that receives the
plan and returns (or yields) violations::

    import stackwright as sw

    @sw.policy
    def no_world_writable_files(plan):
        for step in plan.steps:
            if step.type == "local:File" and step.inputs and step.inputs.get("mode") == 0o777:
                yield sw.Violation("world-writable file", urn=step.urn)

The decorator only marks the function (and may name it); the workflow layer finds,
runs and enforces policies. Functions named ``policy_*`` are found without it. This
module stays tiny and import-free so that ``import stackwright`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from stackwright.dataclass_methods import FrozenCompared, frozen_record

__all__ = ["POLICY_MARK", "PolicyInfo", "Violation", "policy"]

POLICY_MARK = "__stackwright_policy__"
"""The attribute ``@policy`` sets on a function; its value is a ``PolicyInfo``."""

F = TypeVar("F", bound=Callable[..., Any])
DefaultEnforcement = Literal["mandatory", "advisory"]


# ``import stackwright`` loads these classes: their methods are written, not generated
# (see stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True, slots=True)``.


@frozen_record
class Violation(FrozenCompared):
    """One thing a policy objects to; ``urn`` names the resource when there is one."""

    __slots__ = ("message", "urn")
    message: str
    urn: str | None

    def __init__(self, message: str, urn: str | None = None) -> None:
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "urn", urn)


@frozen_record
class PolicyInfo(FrozenCompared):
    """How a policy was declared: its name (default: the function's) and the
    enforcement used when the environment does not configure one."""

    __slots__ = ("name", "enforcement")
    name: str | None
    enforcement: DefaultEnforcement

    def __init__(self, name: str | None = None, enforcement: DefaultEnforcement = "mandatory") -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "enforcement", enforcement)


@overload
def policy(fn: F, /) -> F: ...


@overload
def policy(
    *, name: str | None = None, enforcement: DefaultEnforcement = "mandatory",
) -> Callable[[F], F]: ...


def policy(
    fn: F | None = None, /, *, name: str | None = None,
    enforcement: DefaultEnforcement = "mandatory",
) -> F | Callable[[F], F]:
    """Mark a function as a policy: ``@sw.policy`` or ``@sw.policy(name=..., enforcement=...)``.

    Environments override the enforcement in ``stackwright.yaml``
    (``environments.<env>.policies: {name: mandatory|advisory|off}``).
    """
    if enforcement not in ("mandatory", "advisory"):
        raise ValueError(f"enforcement must be 'mandatory' or 'advisory', not {enforcement!r}")
    info = PolicyInfo(name=name, enforcement=enforcement)

    def mark(target: F) -> F:
        setattr(target, POLICY_MARK, info)
        return target

    return mark(fn) if fn is not None else mark
