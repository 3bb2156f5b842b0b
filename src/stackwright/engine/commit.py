"""Group commit: state writes made in one burst of event-loop turns share one transaction.

Each caller awaits its write; the await returns only after the transaction that holds
it has committed, so "recorded before the provider call" and "recorded before any
dependent starts" still hold, while a burst of steps finishing together costs one
commit instead of one each. The commit waits while each loop turn brings more writes
(at most ``GATHER_TURNS`` turns): steps woken together reach their writes a turn or two
apart, and on SQLite every commit writes each page it touched to the WAL again.

A store whose commits wait on the network (``StackWriter.slow_commits``: S3) commits
from a worker thread, one commit in flight at a time: the event loop keeps preparing
steps meanwhile, and every write queued during a commit joins the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from stackwright.state.store import StackWriter

if TYPE_CHECKING:
    import asyncio

Queued = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "asyncio.Future[None]"]


GATHER_TURNS: Final = 8
"""At most this many loop turns a group commit waits for writes still arriving."""


class GroupCommit:
    def __init__(self, writer: StackWriter) -> None:
        self.writer = writer
        self._queue: list[Queued] = []
        self._in_thread = bool(getattr(writer, "slow_commits", False))
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0
        self._seen = 0
        """Writes queued when ``_start`` last looked."""
        self._waited = 0
        """Loop turns the queued writes have waited for more to join them."""

    async def __call__(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        loop = self._loop or self._running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._queue and not self._flushing:
            loop.call_soon(self._start)
        self._queue.append((write, args, kwargs, future))
        await future

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the walk runs on (one per ``GroupCommit``), kept from the first write."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        return self._loop

    def _start(self) -> None:
        if self._flushing or not self._queue:
            return
        if len(self._queue) > self._seen and self._waited < GATHER_TURNS:
            self._seen = len(self._queue)
            self._waited += 1
            assert self._loop is not None
            self._loop.call_soon(self._start)  # writes are still arriving: take the whole burst
            return
        self._seen = self._waited = 0
        queue, self._queue = self._queue, []
        if not self._in_thread:
            self._settle(queue, self._commit(queue))
            return
        import asyncio

        self._flushing = True
        done = asyncio.get_running_loop().run_in_executor(None, self._commit, queue)
        done.add_done_callback(lambda f: self._finished(queue, f))

    def _finished(self, queue: list[Queued], done: asyncio.Future[BaseException | None]) -> None:
        self._flushing = False
        self._settle(queue, done.result())
        self._start()  # the writes queued while this commit was in flight

    def _commit(self, queue: list[Queued]) -> BaseException | None:
        """One transaction for the queue; the error, if it failed."""
        try:
            with self.writer.batch():
                for write, args, kwargs, _ in queue:
                    write(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every waiter learns its write failed
            return exc
        return None

    def _settle(self, queue: list[Queued], error: BaseException | None) -> None:
        if error is None:
            self.commits += 1
        for *_, future in queue:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


class ImmediateCommit:
    """``GroupCommit`` for a walk that runs one step at a time: each write is its own
    transaction, committed before the call returns (there is nothing to group it with),
    and the call never suspends."""

    def __init__(self, writer: StackWriter) -> None:
        self.writer = writer
        self.commits = 0

    async def __call__(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        write(*args, **kwargs)
        self.commits += 1
