"""Engine events. The engine emits; the CLI's progress display, logs and metrics
listen. Every method has a no-op default so a listener implements only what it needs."""

from __future__ import annotations


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

    def apply_finished(self) -> None:
        """The walk is over; listeners drawing live displays stop here."""

    def stopping(self) -> None:
        """An interrupt was received; no new steps start."""
