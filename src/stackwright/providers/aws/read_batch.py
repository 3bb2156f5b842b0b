"""Reads of many objects of one type answered by few AWS calls, for one refresh.

A refresh announces every id it is about to read (``ResourceProvider.batch_reads``).
Ids map to *keys*, what one describe call can ask for (a subnet id, or the role whose
attachments an attachment id names), and the keys are cut into chunks of at most
``per_call``. The first read of a key fetches its whole chunk in one call; the other
reads of that chunk wait for it and answer from it. A failed fetch (throttled...) is
raised to the read that made it and retried like any read; a read waiting on the same
chunk then tries the fetch itself. An answer serves one read of each announced id and
is dropped when the refresh ends, so nothing read later (an apply) sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

Fetch = Callable[[list[str]], Mapping[str, Any]]
"""Keys to ``{key: raw answer}``; a key missing from the answer is an object that is gone."""

MISS: Any = object()
"""What ``take`` answers for an id that no fetch covers: read it on its own."""


class _Chunk:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.lock = threading.Lock()
        self.answers: Mapping[str, Any] | None = None


class ReadBatch:
    """The chunks of one refresh for one resource type."""

    def __init__(self, fetch: Fetch, key: Callable[[str], str] = str, per_call: int = 100) -> None:
        self._fetch = fetch
        self._key = key
        self._per_call = max(1, per_call)
        self._lock = threading.Lock()
        self._waiting: set[str] = set()
        self._chunks: dict[str, _Chunk] = {}

    @contextmanager
    def reads(self, ids: Sequence[str]) -> Iterator[None]:
        """While open, ``take`` answers each of ``ids`` once from its chunk's fetch."""
        self._announce(ids)
        try:
            yield
        finally:
            self._forget(ids)

    def _announce(self, ids: Iterable[str]) -> None:
        with self._lock:
            fresh = [i for i in ids if i and i not in self._waiting]
            self._waiting.update(fresh)
            keys = sorted({self._key(i) for i in fresh} - set(self._chunks))
            for start in range(0, len(keys), self._per_call):
                chunk = _Chunk(keys[start:start + self._per_call])
                self._chunks.update(dict.fromkeys(chunk.keys, chunk))

    def _forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._waiting.difference_update(ids)
            kept = {self._key(i) for i in self._waiting}
            for key in {self._key(i) for i in ids if i} - kept:
                self._chunks.pop(key, None)

    def take(self, id: str) -> Any:
        """The raw answer for ``id`` (``None``: it is gone), or ``MISS``."""
        with self._lock:
            if id not in self._waiting:
                return MISS
            self._waiting.discard(id)
            key = self._key(id)
            chunk = self._chunks.get(key)
        if chunk is None:
            return MISS
        try:
            return self._answers(chunk).get(key)
        except BaseException:
            with self._lock:
                if self._chunks.get(key) is chunk:
                    self._waiting.add(id)  # the engine retries this read: it may use the chunk
            raise

    def _answers(self, chunk: _Chunk) -> Mapping[str, Any]:
        with chunk.lock:
            if chunk.answers is None:
                chunk.answers = dict(self._fetch(list(chunk.keys)))
            return chunk.answers
