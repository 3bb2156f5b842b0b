"""``StackReference``: read another stack's outputs, e.g. the network stack's VPC id.

    network = sw.StackReference("network/production")   # project/stack
    vpc_id = network.output("vpc_id")                    # an Output, secret if it was
    staging = sw.StackReference("staging")               # a stack of this project

The outputs are the ones last recorded by that stack's `up`, read when the program
runs, so that the reference is known before any plan is made (`stackwright run`
checks it against the dependencies the workspace file declares). A stack that was
never applied, a stack destroyed since (it records no resources and no outputs), or an
output its last apply left unknown, gives an unknown value: the preview shows what
depends on it as known after apply, and apply refuses, naming the stack and the output.
A stack that was applied but does not export the name is an error at once, and so is a stack that does not exist (a workspace's stacks that were
not created yet are not applied yet: `run up` creates them first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stackwright.errors import ProgramError, StackDestroyed, StackNotApplied, StackReferenceError, StackwrightError
from stackwright.model import context
from stackwright.model.output import Output, outputs_within
from stackwright.model.values import is_secret, is_unknown

_STACK = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class StackReference:
    """The latest recorded outputs of the stack ``name`` (``project/stack`` or ``stack``)."""

    def __init__(self, name: str) -> None:
        ctx = context.current()
        file, line = context.user_frame()
        self.name = qualified_name(name, ctx.project, file, line)
        if ctx.read_stack_outputs is None:
            raise ProgramError(
                f"cannot read stack {self.name}: this run has no access to recorded state",
                file=file, line=line,
                hint="stack references work under `stackwright preview|up|run`; in unit tests "
                "set ProgramContext.read_stack_outputs")
        ctx.stack_references.add(self.name)
        self._reads = ctx.stack_reads
        self.applied = True
        self._unapplied = ""
        """Why nothing applied is there to read: the stack was never applied, or destroyed."""
        try:
            self._outputs: Mapping[str, Any] = dict(ctx.read_stack_outputs(self.name))
        except StackNotApplied as exc:
            self.applied, self._outputs = False, {}
            self._unapplied = ("was destroyed (it records no resources and no outputs)"
                               if isinstance(exc, StackDestroyed) else "has not been applied yet")
        except StackwrightError as exc:
            if exc.file is None:
                exc.file, exc.line = file, line
            raise

    def output(self, key: str) -> Output[Any]:
        """The output ``key``; an error naming the stack and its outputs if the stack
        was applied and does not export it."""
        file, line = context.user_frame()
        if self.applied and key not in self._outputs:
            known = ", ".join(sorted(self._outputs)) or "none"
            raise ProgramError(
                f"stack {self.name} has no output {key!r} (its outputs: {known})",
                file=file, line=line,
                hint=f"export it in {self.name}'s program with sw.export({key!r}, ...) and "
                "apply that stack first (`stackwright run up` applies dependencies first)")
        return self._value(key, file, line)

    def get_output(self, key: str, default: Any = None) -> Output[Any]:
        """The output ``key``, or ``default`` when the applied stack does not export it."""
        if self.applied and key not in self._outputs:
            return Output.from_value(default)
        file, line = context.user_frame()
        return self._value(key, file, line)

    def _value(self, key: str, file: str | None, line: int | None) -> Output[Any]:
        hint = (f"apply stack {self.name} first (`stackwright run up` applies dependencies "
                "first), then this one")
        if not self.applied:
            return Output.unavailable(StackReferenceError(
                f"stack {self.name} {self._unapplied}, so its output {key!r} is unknown",
                file=file, line=line, hint=hint))
        value = self._outputs[key]
        if is_unknown(value):
            return Output.unavailable(StackReferenceError(
                f"output {key!r} of stack {self.name} is unknown: that stack's last apply "
                "failed before computing it", file=file, line=line, hint=hint))
        out = _as_output(value)
        self._reads[out] = f"{self.name} output {key}"
        return out

    def output_names(self) -> list[str]:
        return sorted(self._outputs)

    def __repr__(self) -> str:
        return f"StackReference({self.name!r})"


def stacks_read(value: Any, reads: Mapping[Any, str]) -> list[str]:
    """What ``value`` (an input, possibly nested) reads from other stacks, as
    ``network/dev output vpc_id``; ``reads`` is ``DesiredGraph.stack_reads``."""
    if not reads:
        return []
    return sorted({reads[out] for out in outputs_within(value) if out in reads})


def _as_output(value: Any) -> Output[Any]:
    """Secret outputs stay secret in the referencing stack."""
    return Output.from_value(value, secret=is_secret(value))


def qualified_name(name: str, project: str, file: str | None, line: int | None) -> str:
    """``project/stack``; a bare ``stack`` names a stack of the current project."""
    project_part, _, stack = name.strip().rpartition("/")
    if not _STACK.match(stack) or (name.count("/") and not project_part):
        raise ProgramError(
            f"invalid stack reference {name!r}", file=file, line=line,
            hint='write "project/stack" (e.g. "network/production") or "stack" for a stack '
            "of this project")
    return f"{project_part or project}/{stack}"
