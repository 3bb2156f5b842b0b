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
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

__all__ = ["POLICY_MARK", "PolicyInfo", "Violation", "policy"]

POLICY_MARK = "__stackwright_policy__"
"""The attribute ``@policy`` sets on a function; its value is a ``PolicyInfo``."""

F = TypeVar("F", bound=Callable[..., Any])
DefaultEnforcement = Literal["mandatory", "advisory"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing a policy objects to; ``urn`` names the resource when there is one."""

    message: str
    urn: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """How a policy was declared: its name (default: the function's) and the
    enforcement used when the environment does not configure one."""

    name: str | None = None
    enforcement: DefaultEnforcement = "mandatory"


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
