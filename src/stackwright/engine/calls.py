"""Running provider calls off the event loop, with retries and events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from stackwright.engine.events import EventSink
from stackwright.engine.retry import RetryPolicy, retrying
from stackwright.errors import ProviderError, StackwrightError
from stackwright.providers.protocol import OperationContext

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")


class CallWithdrawn(StackwrightError):
    """A queued call was withdrawn before it started (see ``withdraw_queued``)."""


class ProviderCalls:
    """One thread pool for blocking provider calls (boto3 is synchronous).

    At most ``parallel`` calls run at once; more may wait in the pool's queue. A worker
    that finishes a call takes the next queued one at once, without waiting for the
    event loop, so callers that queue work ahead keep every slot busy.
    """

    def __init__(self, parallel: int, policy: RetryPolicy, sink: EventSink, timeout: float = 1800.0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="provider")
        self.policy = policy
        self.sink = sink
        self.timeout = timeout
        self.attempts = 0
        self.withdrawn = False
        self._submitted: set[Future[Any]] = set()

    def context(self, urn: str, name: str, token: str,
                provider_config: Mapping[str, Any] | None = None) -> OperationContext:
        return OperationContext(urn=urn, name=name, token=token, timeout=self.timeout,
                                log=lambda message: self.sink.step_log(urn, message),
                                provider_config=provider_config or {})

    async def run(self, urn: str, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` in the pool; retryable errors are retried with backoff."""
        import asyncio

        loop = asyncio.get_running_loop()
        first = True

        async def attempt() -> T:
            nonlocal first
            if first and self.withdrawn:
                raise CallWithdrawn(urn)
            first = False
            self.attempts += 1
            job = self.pool.submit(self._call, urn, fn, *args)
            self._submitted.add(job)
            try:
                return await asyncio.wrap_future(job, loop=loop)
            except asyncio.CancelledError:
                if self.withdrawn and job.cancelled():
                    raise CallWithdrawn(urn) from None
                raise
            except (ProviderError, StackwrightError):
                raise
            except Exception as exc:  # noqa: BLE001 - a provider bug fails this step only
                raise ProviderError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                self._submitted.discard(job)

        def on_retry(n: int, delay: float, error: ProviderError) -> None:
            self.sink.step_retrying(urn, action, n, delay, error.message)

        return await retrying(self.policy, attempt, on_retry)

    def _call(self, urn: str, fn: Callable[..., T], *args: Any) -> T:
        self.sink.call_started(urn)
        return fn(*args)

    def withdraw_queued(self) -> int:
        """Stop starting calls: the ones still waiting for a worker are cancelled and,
        like every later first attempt, raise ``CallWithdrawn`` to their caller. Calls
        already running finish, and so do their retries (their outcome is unknown
        until they are done). Returns how many queued calls were cancelled."""
        self.withdrawn = True
        return sum(job.cancel() for job in list(self._submitted))

    def close(self) -> None:
        self.pool.shutdown(wait=True)

