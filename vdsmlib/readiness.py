"""Readiness: the one wait loop of the library, and the wait objects built on it.

Everything that waits for something to become true (DSM's Web API, a login, a QMP socket, a
container to exit, a wizard screen to show or leave) polls through :func:`wait_for`: an async
loop with a timeout, a poll interval, an explicit set of retryable errors, a progress bar, an
``alive`` check that stops early when the waited-on thing died, and a ``describe`` callback
whose evidence (a container log tail) goes into the timeout message. It never sleeps for a
fixed time to "let things settle"; it polls a condition.

A probe says "not yet" by raising :class:`NotReady` or one of the ``retryable`` errors; any
other exception is a bug or a hard failure and ends the wait unchanged, so a typo never turns
into a timeout. :func:`wait_for_sync` runs the loop from synchronous code and refuses to run
inside a running event loop (a Jupyter cell, async code), as playwright-python's sync API does.

Wait objects (:class:`WaitStrategy`) package a probe with its defaults; DSM's own (the Web API
up, a login accepted) are in :mod:`vdsmlib.webapi.readiness`:

    api = DsmApiReady("http://127.0.0.1:5000", timeout=600)
    info = await api.wait_async(
        describe=lambda: container_log_tail(),        # evidence for the timeout message
        alive=lambda: None if running() else "container exited",
        progress=True,                                # tqdm bar in notebooks
    )
    info = api.with_timeout(30).wait()                # from synchronous code

"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Self, TypeVar

from vdsmlib.errors import VdsmError

__all__ = [
    "AliveCheck",
    "NotReady",
    "OnTick",
    "ReadinessAborted",
    "ReadinessTimeout",
    "SyncInEventLoopError",
    "WaitStrategy",
    "wait_for",
    "wait_for_sync",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_tick(elapsed_seconds, last_error)`` is called after every poll.
OnTick = Callable[[float, BaseException | None], None]
#: ``alive()`` returns None while the waited-on thing lives, else why it died.
AliveCheck = Callable[[], str | None]
#: A probe: polls once within ``budget`` seconds; returns the ready value or raises.
Probe = Callable[[float], Awaitable[T]]

#: Longest sleep between two polls: a wait is a poll, never a long fixed sleep.
MAX_INTERVAL = 1.9
#: Shortest network timeout of a probe: a last poll with a few milliseconds left would only
#: time out and hide the real reason of the previous polls. A wait may overrun by this much.
MIN_PROBE_TIMEOUT = 1.0
#: Budget of a poll when time is (nearly) up, so a last poll can still answer.
_LAST_POLL_BUDGET = 0.05


def probe_timeout(request_timeout: float, budget: float) -> float:
    """The network timeout of one probe: ``request_timeout``, cut to the budget left (but
    never below :data:`MIN_PROBE_TIMEOUT`)."""
    return min(request_timeout, max(budget, MIN_PROBE_TIMEOUT))


class NotReady(VdsmError):
    """Raised by a probe while the condition does not hold yet (always retried)."""


class SyncInEventLoopError(VdsmError):
    """A synchronous wait was called inside a running event loop, which it would block."""


class ReadinessTimeout(VdsmError):
    """A wait ran out of time.

    ``what`` names the condition, ``waited`` the seconds spent, ``last_error`` the last reason
    it was not ready (None if no poll finished), ``attempts`` the polls.
    """

    def __init__(
        self,
        message: str,
        *,
        what: str = "",
        waited: float = 0.0,
        last_error: BaseException | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.what = what
        self.waited = waited
        self.last_error = last_error
        self.attempts = attempts


class ReadinessAborted(ReadinessTimeout):
    """The wait stopped early because the ``alive`` check reported the target dead.

    A subclass of :class:`ReadinessTimeout` so one ``except`` covers "it never became ready".
    """

    def __init__(
        self,
        message: str,
        *,
        what: str,
        waited: float,
        last_error: BaseException | None,
        attempts: int,
        reason: str,
    ) -> None:
        super().__init__(
            message, what=what, waited=waited, last_error=last_error, attempts=attempts
        )
        self.reason = reason


def _short(err: BaseException | None, limit: int = 300) -> str:
    if err is None:
        return "none"
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: seconds between the plain progress lines where no bar can redraw (a CI log)
PROGRESS_LINE_EVERY = 30.0


def _can_redraw() -> bool:
    """A bar can redraw in place: a running notebook kernel (a widget) or a terminal on
    stderr (ipykernel imported alone, as by a test, is no kernel)."""
    import sys

    ipython = sys.modules.get("IPython")  # only when something imported it: not a dependency
    if ipython is not None and getattr(ipython.get_ipython(), "kernel", None) is not None:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A tqdm bar over the timeout, driven by ticks; where it cannot redraw (stderr is no
    terminal: a CI log), a plain log line every :data:`PROGRESS_LINE_EVERY` seconds instead."""

    def __init__(self, what: str, timeout: float, *, redraw: bool | None = None) -> None:
        self._what, self._timeout = what, timeout
        self._shown = 0.0
        self._next_line = PROGRESS_LINE_EVERY
        self._bar: Any = None
        if redraw if redraw is not None else _can_redraw():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=round(timeout, 1), desc=what[:60], unit="s", leave=False)

    def tick(self, elapsed: float, last_error: BaseException | None) -> None:
        if self._bar is None:
            if elapsed >= self._next_line:
                log.info(
                    "%s: still waiting, %.0f s of %.0f s (last: %s)",
                    self._what,
                    elapsed,
                    self._timeout,
                    _short(last_error, 120),
                )
                while self._next_line <= elapsed:
                    self._next_line += PROGRESS_LINE_EVERY
            return
        step = round(elapsed, 1) - self._shown
        if step > 0:
            self._bar.update(step)
            self._shown += step
        self._bar.set_postfix_str(_short(last_error, 60) if last_error else "", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _check_timing(timeout: float, interval: float) -> None:
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if not 0 < interval <= MAX_INTERVAL:
        raise ValueError(f"interval must be in (0, {MAX_INTERVAL}] seconds, got {interval}")


def _evidence(describe: Callable[[], str] | None) -> str:
    if describe is None:
        return ""
    try:
        text = describe()
    except Exception as err:  # evidence is best effort: the timeout stays the error raised
        return f"; (describe() failed: {_short(err)})"
    return f"; {text}" if text else ""


async def wait_for(
    probe: Probe[T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.5,
    retryable: tuple[type[BaseException], ...] = (),
    describe: Callable[[], str] | None = None,
    progress: object = None,
    alive: AliveCheck | None = None,
    on_tick: OnTick | None = None,
) -> T:
    """Poll ``probe(budget)`` until it returns; return its value.

    ``budget`` is the time left (at least a little), to bound the probe's own timeouts. A probe
    raising :class:`NotReady` or an instance of ``retryable`` means "not yet"; anything else
    ends the wait as it is. ``alive()`` runs (in a thread) after every failed poll and aborts
    with :class:`ReadinessAborted` when it names a reason. ``describe()`` adds evidence to the
    timeout message; ``progress`` truthy shows a tqdm bar; ``on_tick(elapsed, last_error)`` runs
    after every poll. Raises :class:`ReadinessTimeout` when ``timeout`` seconds have passed.

    Example::

        await wait_for(lambda budget: probe_socket(budget), what="QMP socket", timeout=30,
                       interval=0.1, retryable=(ConnectionRefusedError,))
    """
    _check_timing(timeout, interval)
    start = time.monotonic()
    deadline = start + timeout
    attempts = 0
    last_error: BaseException | None = None
    bar = _Progress(what, timeout) if progress else None

    def tick() -> None:
        elapsed = time.monotonic() - start
        if bar is not None:
            bar.tick(elapsed, last_error)
        if on_tick is not None:
            on_tick(elapsed, last_error)

    try:
        while True:
            attempts += 1
            try:
                result = await probe(max(deadline - time.monotonic(), _LAST_POLL_BUDGET))
            except NotReady as err:
                error: BaseException = err
            except retryable as err:
                error = err
            else:
                tick()
                log.debug("%s ready after %.1fs", what, time.monotonic() - start)
                return result
            if last_error is None or str(error) != str(last_error):
                log.debug("%s: not ready yet: %s", what, _short(error))
            last_error = error
            if alive is not None and (reason := await asyncio.to_thread(alive)):
                waited = time.monotonic() - start
                raise ReadinessAborted(
                    f"stopped waiting for {what} after {waited:.1f}s: {reason}; "
                    f"last error: {_short(last_error)}{_evidence(describe)}",
                    what=what,
                    waited=waited,
                    last_error=last_error,
                    attempts=attempts,
                    reason=reason,
                )
            tick()
            left = deadline - time.monotonic()
            if left <= 0:
                waited = time.monotonic() - start
                raise ReadinessTimeout(
                    f"{what} not ready after {waited:.1f}s ({attempts} attempts, "
                    f"timeout {timeout:g}s); last error: {_short(last_error)}"
                    f"{_evidence(describe)}. Raise the timeout if the target is just slow, "
                    "otherwise check its logs.",
                    what=what,
                    waited=waited,
                    last_error=last_error,
                    attempts=attempts,
                )
            await asyncio.sleep(min(interval, left))
    finally:
        if bar is not None:
            bar.close()


def wait_for_sync(make: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """Run the coroutine ``make()`` creates to completion from synchronous code.

    Refuses inside a running event loop (it would block it, and ``asyncio.run`` cannot nest):
    there, ``await`` the async form instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    raise SyncInEventLoopError(
        f"waiting for {what} synchronously inside a running event loop (a Jupyter cell or "
        "async code) would block it: use the async form, e.g. `await ....wait_async(...)`."
    )


class WaitStrategy(ABC, Generic[T]):
    """A wait object: what to poll (:meth:`check_async`), how long, how often, which errors
    mean "not yet". Wait with ``await strategy.wait_async()`` or, from synchronous code,
    ``strategy.wait()``; both run :func:`wait_for`.
    """

    #: Errors of :meth:`check_async` that mean "not yet" (besides :class:`NotReady`).
    retryable: tuple[type[BaseException], ...] = ()

    def __init__(self, *, timeout: float = 60.0, interval: float = 0.5) -> None:
        _check_timing(timeout, interval)
        self.timeout = float(timeout)
        self.interval = float(interval)

    @abstractmethod
    async def check_async(self, budget: float) -> T:
        """Poll once; ``budget`` is the time left, to bound network timeouts."""

    def description(self) -> str:
        """What is waited for, for messages and progress bars."""
        return type(self).__name__

    # -- fluent configuration (returns a modified copy) ----------------------------------------

    def with_timeout(self, seconds: float) -> Self:
        """A copy with another timeout."""
        _check_timing(seconds, self.interval)
        clone = copy.copy(self)
        clone.timeout = float(seconds)
        return clone

    def with_interval(self, seconds: float) -> Self:
        """A copy with another poll interval."""
        _check_timing(self.timeout, seconds)
        clone = copy.copy(self)
        clone.interval = float(seconds)
        return clone

    # -- waiting -------------------------------------------------------------------------------

    async def wait_async(
        self,
        describe: Callable[[], str] | None = None,
        progress: object = None,
        *,
        on_tick: OnTick | None = None,
        alive: AliveCheck | None = None,
    ) -> T:
        """Poll until ready and return what :meth:`check_async` returned (see
        :func:`wait_for` for the arguments); :class:`ReadinessTimeout` when time is up."""
        return await wait_for(
            self.check_async,
            what=self.description(),
            timeout=self.timeout,
            interval=self.interval,
            retryable=self.retryable,
            describe=describe,
            progress=progress,
            alive=alive,
            on_tick=on_tick,
        )

    def wait(
        self,
        describe: Callable[[], str] | None = None,
        progress: object = None,
        *,
        on_tick: OnTick | None = None,
        alive: AliveCheck | None = None,
    ) -> T:
        """:meth:`wait_async` for synchronous code; refuses inside a running event loop."""
        return wait_for_sync(
            lambda: self.wait_async(describe, progress, on_tick=on_tick, alive=alive),
            self.description(),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.description()!r}, timeout={self.timeout:g}, "
            f"interval={self.interval:g})"
        )
