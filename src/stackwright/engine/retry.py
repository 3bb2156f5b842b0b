"""Retrying retryable provider errors with exponential backoff and full jitter."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from stackwright.dataclass_methods import Compared
from stackwright.errors import ProviderError

if TYPE_CHECKING:
    import random

T = TypeVar("T")


def _new_rng() -> random.Random:
    import random

    return random.Random()


async def _sleep(seconds: float) -> None:
    """``asyncio.sleep``, with asyncio imported only when a retry waits."""
    import asyncio

    await asyncio.sleep(seconds)


@dataclass(init=False, repr=False, eq=False)
class RetryPolicy(Compared):
    """``max_attempts`` tries in all; delay before try n is uniform in
    ``[0, min(max_delay, base * 2**n)]``, but never less than a provider's retry_after.

    Every command loads it: its methods are written, not generated (see
    stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared."""

    max_attempts: int = 8
    base: float = 0.2
    max_delay: float = 20.0
    rng: random.Random = field(default_factory=_new_rng)
    sleep: Callable[[float], Awaitable[None]] = _sleep
    wait: Callable[[float], None] = time.sleep
    """How an in-line apply (no event loop) waits before a retry."""

    def __init__(self, max_attempts: int = 8, base: float = 0.2, max_delay: float = 20.0,
                 rng: random.Random | None = None, sleep: Callable[[float], Awaitable[None]] = _sleep,
                 wait: Callable[[float], None] = time.sleep) -> None:
        self.max_attempts = max_attempts
        self.base = base
        self.max_delay = max_delay
        self.rng = _new_rng() if rng is None else rng
        self.sleep = sleep
        self.wait = wait

    def delay(self, attempt: int, error: ProviderError) -> float:
        ceiling = min(self.max_delay, self.base * (2 ** attempt))
        return max(self.rng.uniform(0, ceiling), error.retry_after or 0.0)


async def retrying(
    policy: RetryPolicy,
    call: Callable[[], Awaitable[T]],
    on_retry: Callable[[int, float, ProviderError], None] = lambda attempt, delay, error: None,
    *, sleep: Callable[[float], Awaitable[None]] | None = None, failed: ProviderError | None = None,
) -> T:
    """Await ``call()`` until it succeeds, fails permanently, or attempts run out.
    ``sleep`` waits before a retry (default ``policy.sleep``); ``failed``: the error of
    a first attempt the caller made itself."""
    attempt = 0
    while True:
        if failed is None:
            try:
                return await call()
            except ProviderError as error:
                failed = error
        attempt += 1
        if not failed.retryable or attempt >= policy.max_attempts:
            try:
                raise failed
            finally:
                failed = None  # its traceback holds this frame: no cycle left behind
        delay = policy.delay(attempt, failed)
        on_retry(attempt, delay, failed)
        await (sleep or policy.sleep)(delay)
        failed = None
