"""Running provider calls off the event loop, with retries and events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from stackwright.engine.events import EventSink
from stackwright.engine.retry import RetryPolicy, retrying
from stackwright.errors import ProviderError, StackwrightError
from stackwright.providers.protocol import OperationContext

T = TypeVar("T")


class ProviderCalls:
    """One thread pool for blocking provider calls (boto3 is synchronous)."""

    def __init__(self, parallel: int, policy: RetryPolicy, sink: EventSink, timeout: float = 1800.0) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="provider")
        self.policy = policy
        self.sink = sink
        self.timeout = timeout
        self.attempts = 0

    def context(self, urn: str, name: str, token: str) -> OperationContext:
        return OperationContext(urn=urn, name=name, token=token, timeout=self.timeout,
                                log=lambda message: self.sink.step_log(urn, message))

    async def run(self, urn: str, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` in the pool; retryable errors are retried with backoff."""
        loop = asyncio.get_running_loop()

        async def attempt() -> T:
            self.attempts += 1
            try:
                return await loop.run_in_executor(self.pool, lambda: fn(*args))
            except (ProviderError, StackwrightError):
                raise
            except Exception as exc:  # noqa: BLE001 - a provider bug fails this step only
                raise ProviderError(f"{type(exc).__name__}: {exc}") from exc

        def on_retry(n: int, delay: float, error: ProviderError) -> None:
            self.sink.step_retrying(urn, action, n, delay, error.message)

        return await retrying(self.policy, attempt, on_retry)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

