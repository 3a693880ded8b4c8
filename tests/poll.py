"""Polling from synchronous test code through the library's wait loop (vdsmlib.readiness).

Tests never sleep for a fixed time to let things settle, nor write their own ``while`` poll
loops: they poll a condition with :func:`poll` (blocking code) or ``await wait_for(...)``
(async code)::

    status = poll(lambda: requests.get(url, timeout=2).status_code, what="the web page",
                  timeout=90, interval=0.2, retryable=(requests.RequestException,))

``check()`` says "not yet" by raising :class:`~vdsmlib.readiness.NotReady` or one of
``retryable``; what it returns ends the wait. The arguments are :func:`wait_for`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from vdsmlib.readiness import AliveCheck, wait_for, wait_for_sync

T = TypeVar("T")


def poll(
    check: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.5,
    retryable: tuple[type[BaseException], ...] = (),
    describe: Callable[[], str] | None = None,
    alive: AliveCheck | None = None,
) -> T:
    """Call the blocking ``check()`` (in a thread) through :func:`wait_for` until it returns
    a value, and return it; :class:`~vdsmlib.readiness.ReadinessTimeout` when time is up.

    Blocks the caller, also a test's running event loop (a sync context manager entered in an
    async test, as ``tests.guest.run_guest`` is): there the wait runs in a worker thread, where
    :func:`wait_for_sync` does not refuse.
    """

    async def probe(budget: float) -> T:
        return await asyncio.to_thread(check)

    def make() -> T:
        return wait_for_sync(
            lambda: wait_for(
                probe,
                what=what,
                timeout=timeout,
                interval=interval,
                retryable=retryable,
                describe=describe,
                alive=alive,
            ),
            what,
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return make()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="poll") as pool:
        return pool.submit(make).result()
