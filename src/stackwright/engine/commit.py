"""Group commit: state writes made in one event-loop tick share one transaction.

Each caller awaits its write; the await returns only after the transaction that holds
it has committed, so "recorded before the provider call" and "recorded before any
dependent starts" still hold, while a burst of steps finishing together costs one
commit instead of one each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stackwright.state.store import StackWriter

if TYPE_CHECKING:
    import asyncio


class GroupCommit:
    def __init__(self, writer: StackWriter) -> None:
        self.writer = writer
        self._queue: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[None]]] = []
        self.commits = 0

    async def __call__(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        import asyncio

        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._queue:
            asyncio.get_running_loop().call_soon(self._flush)
        self._queue.append((write, args, kwargs, future))
        await future

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        try:
            with self.writer.batch():
                for write, args, kwargs, _ in queue:
                    write(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every waiter learns its write failed
            for *_, future in queue:
                if not future.done():
                    future.set_exception(exc)
            return
        self.commits += 1
        for *_, future in queue:
            if not future.done():
                future.set_result(None)
