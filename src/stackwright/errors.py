"""Error types. User mistakes carry where they happened and what to do next.

Every error Stackwright raises derives from ``StackwrightError``; the CLI prints one
in one or two lines without a traceback. Anything else reaching the CLI is a bug: it is
printed as one "internal error" line, with the traceback only under ``--debug``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class StackwrightError(Exception):
    """An error the user can act on: it names the place and carries a hint."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        resource: str | None = None,
        prop: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.resource = resource
        self.prop = prop
        self.hint = hint

    def location(self) -> str:
        """``file:line`` of the user's code, or an empty string when unknown."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def headline(self) -> str:
        parts = [p for p in (self.location(), self._subject()) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message

    def _subject(self) -> str:
        if self.resource and self.prop:
            return f"{self.resource}.{self.prop}"
        return self.resource or (f"property {self.prop}" if self.prop else "")

    def __str__(self) -> str:
        return self.headline() + (f"\n  hint: {self.hint}" if self.hint else "")


class ProgramError(StackwrightError):
    """The user's program failed to load or raised while declaring resources."""


class CallbackError(ProgramError):
    """An ``Output.apply`` callback raised; ``file``/``line`` point into the callback."""


class StackReferenceError(ProgramError):
    """Another stack's output is not there to read: that stack was never applied, or
    its last apply left the output unknown."""


class InputError(StackwrightError):
    """A resource input is missing, unknown or of the wrong type."""


class ConfigError(StackwrightError):
    """Stack configuration is missing a key or holds a value of the wrong type."""


class ProjectError(StackwrightError):
    """The project or stack files are missing or malformed."""


class StackNotApplied(ProjectError):
    """Another stack's outputs were asked for, and that stack was never applied."""


class StackDestroyed(StackNotApplied):
    """Another stack's outputs were asked for, and that stack was applied but records
    nothing now (no resources, no outputs): it was destroyed."""


class GraphError(StackwrightError):
    """The declared resources do not form a valid graph (cycles, duplicates)."""


class PlanError(StackwrightError):
    """The change cannot be planned as asked (protected resources, bad targets)."""

    plan: Any = None
    """When the plan could be made but is refused (it would delete or replace a
    protected resource): that plan, so that a command can show it before the refusal."""


class StateError(StackwrightError):
    """The state store is corrupt, from a newer version, or inconsistent."""


class NotRecordedError(StateError):
    """The state store answered, and records no such stack, or no such checkpoint of
    the stack: unlike its parent, nothing is wrong with the store."""


class LockHeldError(StackwrightError):
    """Another writer holds the stack's lock."""


class ReadOnlyStateError(StateError):
    """A write or a lock was attempted on a state store opened read-only
    (``STACKWRIGHT_STATE_READ_ONLY=1`` or ``state: {read_only: true}``)."""


class ApplyFailed(StackwrightError):
    """One or more steps failed; the summary is in the message."""


class ProviderError(StackwrightError):
    """A provider operation failed.

    ``retryable`` errors (throttling, transient network faults) are retried by the
    engine with backoff; ``retry_after`` lets a provider ask for a minimum delay.
    Permanent errors fail the step at once.
    """

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after: float | None = None,
        resource: str | None = None, hint: str | None = None,
    ) -> None:
        super().__init__(message, resource=resource, hint=hint)
        self.retryable = retryable
        self.retry_after = retry_after

    @classmethod
    def transient(cls, message: str, retry_after: float | None = None) -> ProviderError:
        return cls(message, retryable=True, retry_after=retry_after)


class NotFoundError(ProviderError):
    """A provider's permanent answer that the object a call acts on, or one the call
    names, does not exist: most often deleted outside Stackwright. On an update or a
    delete the engine's failure says how to record that it is gone (``refresh``)."""


class CreatedButFailed(ProviderError):
    """A create made its object, then failed (it never became healthy). The engine
    records the object under ``id`` with ``outputs`` and fails the step, so the object
    is not orphaned: removing it from the program deletes it."""

    def __init__(self, message: str, id: str, outputs: Mapping[str, Any], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.id = id
        self.outputs = outputs


@contextmanager
def about(resource: str) -> Iterator[None]:
    """Our errors raised inside name ``resource``, unless they name one already."""
    try:
        yield
    except StackwrightError as exc:
        exc.resource = exc.resource or resource
        raise


def raised(exc: BaseException) -> str:
    """What the user's code did, for a message: ``called exit(1)`` for ``sys.exit(1)``
    (whose argument is a status or a message), else ``raised ValueError: why``, or
    ``raised GeneratorExit`` when there is no why."""
    if isinstance(exc, SystemExit):
        return "called exit()" if exc.code is None else f"called exit({exc.code!r})"
    why = str(exc)
    return f"raised {type(exc).__name__}: {why}" if why else f"raised {type(exc).__name__}"
