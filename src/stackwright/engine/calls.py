"""Running provider calls off the event loop, with retries and events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from stackwright.engine.events import EventSink
from stackwright.engine.retry import RetryPolicy, retrying
from stackwright.errors import ProviderError, StackwrightError
from stackwright.providers.protocol import OperationContext

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class CallWithdrawn(StackwrightError):
    """A queued call was withdrawn before it started (see ``withdraw_queued``)."""


class _Calls:
    sink: EventSink
    timeout: float

    def on_retry(self, urn: str, action: str) -> Callable[[int, float, ProviderError], None]:
        """What a retry of ``urn``'s ``action`` tells the sink."""
        def report(n: int, delay: float, error: ProviderError) -> None:
            self.sink.step_retrying(urn, action, n, delay, error.message)

        return report

    def context(self, urn: str, name: str, token: str, provider_config: Mapping[str, Any] | None = None,
                *, lineage: str = "", recovering: bool = False) -> OperationContext:
        return OperationContext(urn=urn, name=name, token=token, timeout=self.timeout,
                                log=lambda message: self.sink.step_log(urn, message),
                                provider_config=provider_config or {}, lineage=lineage, recovering=recovering)


class ProviderCalls(_Calls):
    """Worker threads for blocking provider calls (boto3 is synchronous).

    At most ``parallel`` calls run at once; more may wait in the queue. A worker that
    finishes a call takes the next queued one at once, without waiting for the event
    loop, so callers that queue work ahead keep every slot busy. Finished calls are
    handed to the event loop in batches: one wake-up of the loop delivers every result
    that arrived since the last one, instead of one wake-up per call.

    The workers take plain jobs from a queue (no ``concurrent.futures`` future, lock
    and condition per call, which cost more than the bookkeeping of a step): a job is
    claimed by removing it from ``_queued``, by the worker that starts it or by
    ``withdraw_queued``, whichever comes first.

    Workers are added only as calls block (``_grow``): while every worker is inside a
    call and calls wait in the queue, more are started, up to ``parallel``. Calls that
    return at once (an in-memory provider) are all served by one or two workers, so
    that dozens of threads do not take turns at the interpreter lock for nothing.
    """

    def __init__(self, parallel: int, policy: RetryPolicy, sink: EventSink, timeout: float = 1800.0) -> None:
        import queue
        import threading
        from collections import deque

        self.parallel = max(1, parallel)
        self.policy = policy
        self.sink = sink
        self.timeout = timeout
        self.attempts = 0
        self.withdrawn = False
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queued: dict[asyncio.Future[Any], str] = {}
        """The calls no worker has started yet: their answer and URN."""
        self._workers: list[threading.Thread] = []
        self._calling = 0
        """How many workers are inside a provider call (blocked in it, with many workers)."""
        self._growing = False
        """A ``_grow`` check is scheduled on the loop."""
        self._grow_after = GROW_AFTER
        """Seconds to the next look: doubled (up to ``GROW_AFTER_MOST``) while the workers
        keep up, so that a walk of instant calls does not run a timer every millisecond."""
        self._results: deque[tuple[asyncio.Future[Any], Any, BaseException | None]] = deque()
        self._waking = False
        self._waking_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, urn: str, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` on a worker; retryable errors are retried with backoff.
        The first attempt is made here: only a retryable failure needs ``retrying``."""
        if self.withdrawn:
            raise CallWithdrawn(urn)
        try:
            return await self._attempt(urn, fn, args)
        except ProviderError as error:
            failed = error
        try:
            return await retrying(self.policy, lambda: self._attempt(urn, fn, args), self.on_retry(urn, action),
                                  failed=failed)
        except CallWithdrawn:
            # A retry withdrawn on an interrupt: an earlier attempt failed only
            # transiently and may have taken effect, so its outcome stays unknown.
            raise failed from None
        finally:
            del failed  # its traceback holds this frame: no cycle for the collector to find

    async def _attempt(self, urn: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """One try of the call: queued for a worker, its result awaited."""
        import asyncio

        loop = self._loop or self._running_loop()
        self.attempts += 1
        answer: asyncio.Future[T] = loop.create_future()
        self._submit(answer, urn, fn, args)
        try:
            return await answer
        except asyncio.CancelledError:
            self._queued.pop(answer, None)  # not started: it never will be
            raise
        except StackwrightError:
            raise
        except Exception as exc:  # noqa: BLE001 - a provider bug fails this step only
            raise provider_bug(exc) from exc

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the calls' answers are settled on, kept from the first call."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        return self._loop

    def _submit(self, answer: asyncio.Future[Any], urn: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Queue a call: the first one starts a worker, later ones have ``_grow`` look,
        a moment later, whether the workers there are blocked in their calls."""
        self._queued[answer] = urn
        self._jobs.put((answer, urn, fn, args))
        if not self._workers:
            self._add_worker()
        elif not self._growing and len(self._workers) < self.parallel:
            assert self._loop is not None
            self._growing = True
            self._loop.call_later(self._grow_after, self._grow)

    def _grow(self) -> None:
        """On the loop: when calls are waiting and every worker is inside a call, start
        a worker for each waiting call (up to ``parallel`` in all); look again later
        while calls still wait. A worker that is not inside a call is about to take
        the next one, so calls that return at once never add workers."""
        self._growing = False
        waiting = self._jobs.qsize()
        if not waiting or len(self._workers) >= self.parallel:
            return
        if self._calling >= len(self._workers):
            for _ in range(min(waiting, self.parallel - len(self._workers))):
                self._add_worker()
            self._grow_after = GROW_AFTER
        else:
            self._grow_after = min(2 * self._grow_after, GROW_AFTER_MOST)
        assert self._loop is not None
        self._growing = True
        self._loop.call_later(self._grow_after, self._grow)

    def _add_worker(self) -> None:
        import threading

        worker = threading.Thread(target=self._work, name=f"provider_{len(self._workers)}", daemon=True)
        worker.start()
        self._workers.append(worker)

    def _work(self) -> None:
        """A worker: runs queued calls until ``close`` sends it ``None``."""
        jobs, queued = self._jobs, self._queued
        while (job := jobs.get()) is not None:
            answer, urn, fn, args = job
            if queued.pop(answer, None) is not None:  # else withdrawn before it started
                self._call(answer, urn, fn, args)

    def _call(self, answer: asyncio.Future[Any], urn: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """On a worker: run the call, queue its result, and wake the loop unless a
        wake-up is already on its way."""
        with self._waking_lock:
            self._calling += 1
        try:
            self.sink.call_started(urn)
            self._results.append((answer, fn(*args), None))
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting step
            self._results.append((answer, None, exc))
        with self._waking_lock:
            self._calling -= 1
            wake, self._waking = not self._waking, True
        if wake:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """On the loop: settle every call whose result has arrived."""
        with self._waking_lock:
            self._waking = False
        results = self._results
        while results:
            answer, value, error = results.popleft()
            if answer.done():
                continue
            if error is None:
                answer.set_result(value)
            else:
                answer.set_exception(error)

    def withdraw_queued(self) -> int:
        """Stop starting calls: the ones still waiting for a worker are withdrawn and,
        like every later first attempt, raise ``CallWithdrawn`` to their caller (a
        withdrawn retry raises its call's last transient error instead: see ``run``).
        Calls already running finish, and so do the retries not yet queued. Returns
        how many queued calls were withdrawn."""
        self.withdrawn = True
        withdrawn = 0
        for answer in list(self._queued):
            urn = self._queued.pop(answer, None)
            if urn is not None:
                withdrawn += 1
                if not answer.done():
                    answer.set_exception(CallWithdrawn(urn))
        return withdrawn

    def close(self) -> None:
        """Wait for the calls under way to finish, then for every worker to stop."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()
        self._workers.clear()


GROW_AFTER: Final = 0.001
"""Seconds between looks at whether the workers are blocked in their calls (``_grow``)."""
GROW_AFTER_MOST: Final = 0.016
"""The longest wait between two looks, reached while the workers keep up."""

_Job = tuple["asyncio.Future[Any]", str, Callable[..., Any], tuple[Any, ...]]


class InlineCalls(_Calls):
    """``ProviderCalls`` for in-process providers: each call runs on the calling
    thread, and ``run`` never suspends, so a step that only calls these can be driven
    without an event loop. Retries wait with ``RetryPolicy.wait``."""

    def __init__(self, policy: RetryPolicy, sink: EventSink, timeout: float = 1800.0) -> None:
        self.policy = policy
        self.sink = sink
        self.timeout = timeout
        self.attempts = 0
        self.withdrawn = False

    async def run(self, urn: str, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` now; retryable errors are retried with backoff, waiting
        with ``RetryPolicy.wait`` (nothing here suspends)."""
        async def attempt() -> T:
            self.attempts += 1
            try:
                self.sink.call_started(urn)
                return fn(*args)
            except StackwrightError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider bug fails this step only
                raise provider_bug(exc) from exc

        async def wait(delay: float) -> None:
            self.policy.wait(delay)

        return await retrying(self.policy, attempt, self.on_retry(urn, action), sleep=wait)

    def withdraw_queued(self) -> int:
        """Nothing is ever queued: a call runs the moment it is made."""
        self.withdrawn = True
        return 0

    def close(self) -> None:
        """Nothing to release."""


def provider_bug(exc: Exception) -> ProviderError:
    """What a step reports when its provider call raised something other than our own
    errors: a permanent failure naming the exception."""
    return ProviderError(f"{type(exc).__name__}: {exc}")
