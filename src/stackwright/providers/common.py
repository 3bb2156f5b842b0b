"""Helpers every provider may use, whatever cloud it talks to: polling until an object
settles, and idempotency tokens derived from ``OperationContext.token``.

Nothing here knows a cloud's API; a provider's own shared code (``aws/base.py``...)
builds on it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from stackwright.errors import ProviderError
from stackwright.providers.protocol import OperationContext

__all__ = ["idempotency_token", "wait_until"]


def wait_until(
    ctx: OperationContext, what: str, probe: Callable[[], bool], *,
    interval: float = 2.0, timeout: float | None = None,
) -> None:
    """Poll ``probe`` until it is true; a permanent error after ``timeout`` seconds
    (default: the operation's own timeout). Polls start fast and back off to ``interval``."""
    deadline = time.monotonic() + (timeout if timeout is not None else ctx.timeout)
    delay = 0.05
    while not probe():
        if time.monotonic() > deadline:
            raise ProviderError(f"timed out waiting for {what}")
        ctx.log(f"waiting for {what}")
        time.sleep(delay)
        delay = min(interval, delay * 2)


def idempotency_token(token: str, purpose: str = "", limit: int = 64) -> str:
    """A token an API accepts (at most ``limit`` characters), stable for ``token``.

    ``purpose`` tells apart several calls made for one operation, since APIs reject a
    token reused with different parameters.
    """
    text = f"{token}:{purpose}" if purpose else token
    return text if len(text) <= limit else hashlib.sha256(text.encode()).hexdigest()[:limit]
