"""Engine events. The engine emits; the CLI's progress display, logs and metrics
listen. Every method has a no-op default so a listener implements only what it needs."""

from __future__ import annotations

from stackwright.model.values import mask_text


class EventSink:
    def step_started(self, urn: str, action: str) -> None:
        """A provider call for ``urn`` starts (action: create, update, delete, read...)."""

    def step_finished(self, urn: str, action: str, status: str, elapsed: float,
                      error: str | None = None) -> None:
        """``status`` is "ok", "failed", "skipped" or "not started" (prepared, but
        withdrawn by an interrupt before its provider call began)."""

    def call_started(self, urn: str) -> None:
        """A provider call for ``urn`` left the queue and runs now. Called on the
        provider's worker thread, not the event loop: keep it short and thread-safe."""

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        """A retryable error; the call is tried again after ``delay`` seconds."""

    def step_log(self, urn: str, message: str) -> None:
        """Progress reported by a provider (e.g. waiting for a cluster)."""

    def state_persisted(self, urn: str) -> None:
        """The outcome of a step is durably recorded."""

    def apply_started(self) -> None:
        """The plan was confirmed and planned again under the stack's lock: applying it
        starts now, and from here on its checkpoint records what happens (a failure
        before this applied none of the plan)."""

    def apply_finished(self) -> None:
        """The walk is over; listeners drawing live displays stop here."""

    def stopping(self) -> None:
        """An interrupt was received; no new steps start."""

    def lock_taken_over(self, stack: str, holder: str) -> None:
        """The stack's lock was left by a process of this host that is gone (killed:
        ``holder`` says who it was); it was taken over, and what that process left open
        is checkpointed as interrupted."""


class MaskingSink(EventSink):
    """Passes every event on with the secrets in ``secrets`` masked out of its text (a
    failing command's output, a provider's message). ``secrets`` may grow while the
    engine runs (a password just created)."""

    def __init__(self, inner: EventSink, secrets: set[str]) -> None:
        self.inner = inner
        self.secrets = secrets

    def step_started(self, urn: str, action: str) -> None:
        self.inner.step_started(urn, action)

    def step_finished(self, urn: str, action: str, status: str, elapsed: float,
                      error: str | None = None) -> None:
        self.inner.step_finished(urn, action, status, elapsed,
                                 None if error is None else mask_text(error, self.secrets))

    def call_started(self, urn: str) -> None:
        self.inner.call_started(urn)

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.inner.step_retrying(urn, action, attempt, delay, mask_text(error, self.secrets))

    def step_log(self, urn: str, message: str) -> None:
        self.inner.step_log(urn, mask_text(message, self.secrets))

    def state_persisted(self, urn: str) -> None:
        self.inner.state_persisted(urn)

    def apply_started(self) -> None:
        self.inner.apply_started()

    def apply_finished(self) -> None:
        self.inner.apply_finished()

    def stopping(self) -> None:
        self.inner.stopping()

    def lock_taken_over(self, stack: str, holder: str) -> None:
        self.inner.lock_taken_over(stack, holder)
