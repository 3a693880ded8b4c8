"""Readiness as objects: wait strategies that poll a condition until it holds.

A strategy knows *what* it waits for (:meth:`WaitStrategy.check`), how long (``timeout``),
how often (``interval``) and which errors mean "not yet" (``retryable``). Waiting is
``strategy.wait()`` or, inside an event loop, ``await strategy.wait_async()``; both poll with
``time.monotonic()`` and short sleeps, never a fixed delay.

Example::

    api = DsmApiReady("http://127.0.0.1:5000", timeout=600)
    info = api.wait(
        describe=lambda: container_log_tail(),        # evidence for the timeout message
        alive=lambda: None if running() else "container exited",
        progress=True,                                # tqdm bar in notebooks
    )

``HttpReady`` accepts any HTTP answer; ``DsmApiReady`` needs ``SYNO.API.Info`` to answer with
``SYNO.API.Auth`` listed (the "please wait" page virtual-dsm serves with HTTP 200 is not
ready); ``DsmLoginReady`` needs a login to succeed. ``AllReady`` composes strategies and
``PollReady`` wraps any callable.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

import requests

from vdsmlib.errors import VdsmError

__all__ = [
    "AliveCheck",
    "AllReady",
    "DsmApiReady",
    "DsmLoginReady",
    "HttpReady",
    "NotReady",
    "OnTick",
    "PollReady",
    "ReadinessAborted",
    "ReadinessTimeout",
    "WaitStrategy",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_tick(elapsed_seconds, last_error)`` is called after every poll.
OnTick = Callable[[float, BaseException | None], None]
#: ``alive()`` returns None while the waited-on thing lives, else why it died.
AliveCheck = Callable[[], str | None]

#: Longest sleep between two polls; the house rule forbids fixed sleeps of 2 s or more.
MAX_INTERVAL = 1.9
#: Shortest network timeout of a probe: a last poll with a few milliseconds left would only
#: time out and hide the real reason of the previous polls. A wait may overrun by this much.
MIN_PROBE_TIMEOUT = 1.0


def _probe_timeout(request_timeout: float, budget: float) -> float:
    return min(request_timeout, max(budget, MIN_PROBE_TIMEOUT))


class NotReady(VdsmError):
    """Raised by :meth:`WaitStrategy.check` while the condition does not hold yet."""


class ReadinessTimeout(VdsmError):
    """A wait strategy ran out of time.

    ``what`` names the condition, ``waited`` the seconds spent, ``last_error`` the last reason
    it was not ready (None if it never failed, which cannot time out), ``attempts`` the polls.
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


class _Progress:
    """A tqdm bar over the timeout, driven by ticks."""

    def __init__(self, what: str, timeout: float) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=round(timeout, 1), desc=what[:60], unit="s", bar_format=None, leave=False
        )
        self._shown = 0.0

    def tick(self, elapsed: float, last_error: BaseException | None) -> None:
        step = round(elapsed, 1) - self._shown
        if step > 0:
            self._bar.update(step)
            self._shown += step
        self._bar.set_postfix_str(_short(last_error, 60) if last_error else "", refresh=False)

    def close(self) -> None:
        self._bar.close()


class _Poll:
    """The bookkeeping of one wait, shared by the sync and the async loop."""

    def __init__(
        self,
        strategy: WaitStrategy[Any],
        describe: Callable[[], str] | None,
        progress: object,
        on_tick: OnTick | None,
    ) -> None:
        self.strategy = strategy
        self.what = strategy.description()
        self.describe = describe
        self.on_tick = on_tick
        self.start = time.monotonic()
        self.deadline = self.start + strategy.timeout
        self.attempts = 0
        self.last_error: BaseException | None = None
        self.bar = _Progress(self.what, strategy.timeout) if progress else None

    def budget(self) -> float:
        """Seconds left, at least a little so a last poll can still answer."""
        return max(self.deadline - time.monotonic(), 0.05)

    def failed(self, err: Exception) -> None:
        """Record a failed poll; re-raise errors that are not retryable."""
        self.attempts += 1
        if not isinstance(err, NotReady) and not self.strategy.is_retryable(err):
            raise err
        if self.last_error is None or str(err) != str(self.last_error):
            log.debug("%s: not ready yet: %s", self.what, _short(err))
        self.last_error = err

    def tick(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.bar is not None:
            self.bar.tick(elapsed, self.last_error)
        if self.on_tick is not None:
            self.on_tick(elapsed, self.last_error)

    def sleep_for(self) -> float | None:
        """Seconds to sleep before the next poll, or None when time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        return min(self.strategy.interval, left)

    def _evidence(self) -> str:
        if self.describe is None:
            return ""
        try:
            return f"; {self.describe()}"
        except Exception as err:  # evidence is best effort, the timeout is the real error
            return f"; (describe() failed: {_short(err)})"

    def timeout_error(self) -> ReadinessTimeout:
        waited = time.monotonic() - self.start
        return ReadinessTimeout(
            f"{self.what} not ready after {waited:.1f}s ({self.attempts} attempts, "
            f"timeout {self.strategy.timeout:g}s); last error: {_short(self.last_error)}"
            f"{self._evidence()}. Raise the timeout if the target is just slow, "
            "otherwise check its logs.",
            what=self.what,
            waited=waited,
            last_error=self.last_error,
            attempts=self.attempts,
        )

    def aborted_error(self, reason: str) -> ReadinessAborted:
        waited = time.monotonic() - self.start
        return ReadinessAborted(
            f"stopped waiting for {self.what} after {waited:.1f}s: {reason}; "
            f"last error: {_short(self.last_error)}{self._evidence()}",
            what=self.what,
            waited=waited,
            last_error=self.last_error,
            attempts=self.attempts,
            reason=reason,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class WaitStrategy(ABC, Generic[T]):
    """Poll :meth:`check` until it returns, for at most ``timeout`` seconds.

    Subclasses implement :meth:`check` (return the ready value, or raise :class:`NotReady` or a
    ``retryable`` error) and :meth:`description`. ``retryable`` defaults to ``OSError`` (which
    covers ``requests`` errors) and :class:`VdsmError`; :meth:`is_retryable` can refine it.
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        interval: float = 0.5,
        retryable: tuple[type[Exception], ...] = (OSError, VdsmError),
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if not 0 < interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be in (0, {MAX_INTERVAL}] seconds, got {interval}")
        self.timeout = float(timeout)
        self.interval = float(interval)
        self.retryable = tuple(retryable)

    # -- what to wait for --------------------------------------------------------------------

    @abstractmethod
    def check(self, budget: float) -> T:
        """Poll once; ``budget`` is the time left, to bound network timeouts."""

    async def check_async(self, budget: float) -> T:
        """Poll once without blocking the event loop (default: :meth:`check` in a thread)."""
        return await asyncio.to_thread(self.check, budget)

    def description(self) -> str:
        """What is waited for, for messages and progress bars."""
        return type(self).__name__

    def is_retryable(self, err: Exception) -> bool:
        """True if ``err`` from :meth:`check` means "not yet" rather than "never"."""
        return isinstance(err, self.retryable)

    def reset(self) -> None:
        """Forget state from an earlier wait (for strategies that keep some)."""

    # -- fluent configuration (returns a modified copy) ----------------------------------------

    def with_timeout(self, seconds: float) -> Self:
        """A copy with another timeout."""
        clone = copy.copy(self)
        WaitStrategy.__init__(
            clone, timeout=seconds, interval=self.interval, retryable=self.retryable
        )
        return clone

    def with_interval(self, seconds: float) -> Self:
        """A copy with another poll interval."""
        clone = copy.copy(self)
        WaitStrategy.__init__(
            clone, timeout=self.timeout, interval=seconds, retryable=self.retryable
        )
        return clone

    def with_retryable(self, *errors: type[Exception]) -> Self:
        """A copy that also retries on ``errors``."""
        clone = copy.copy(self)
        clone.retryable = self.retryable + tuple(errors)
        return clone

    # -- waiting -------------------------------------------------------------------------------

    def wait(
        self,
        describe: Callable[[], str] | None = None,
        progress: object = None,
        *,
        on_tick: OnTick | None = None,
        alive: AliveCheck | None = None,
    ) -> T:
        """Block until ready and return what :meth:`check` returned.

        ``describe()`` adds evidence (a log tail) to the timeout message; ``progress`` truthy
        shows a tqdm bar; ``on_tick(elapsed, last_error)`` runs after every poll; ``alive()``
        runs after every failed poll and aborts with :class:`ReadinessAborted` when it returns
        a reason. Raises :class:`ReadinessTimeout` when time is up.
        """
        self.reset()
        poll = _Poll(self, describe, progress, on_tick)
        try:
            while True:
                try:
                    result = self.check(poll.budget())
                except Exception as err:
                    poll.failed(err)
                else:
                    poll.tick()
                    log.debug("%s ready after %.1fs", poll.what, time.monotonic() - poll.start)
                    return result
                if alive is not None and (reason := alive()):
                    raise poll.aborted_error(reason)
                poll.tick()
                pause = poll.sleep_for()
                if pause is None:
                    raise poll.timeout_error()
                time.sleep(pause)
        finally:
            poll.close()

    async def wait_async(
        self,
        describe: Callable[[], str] | None = None,
        progress: object = None,
        *,
        on_tick: OnTick | None = None,
        alive: AliveCheck | None = None,
    ) -> T:
        """Like :meth:`wait`, without blocking the event loop (``alive`` runs in a thread)."""
        self.reset()
        poll = _Poll(self, describe, progress, on_tick)
        try:
            while True:
                try:
                    result = await self.check_async(poll.budget())
                except Exception as err:
                    poll.failed(err)
                else:
                    poll.tick()
                    return result
                if alive is not None and (reason := await asyncio.to_thread(alive)):
                    raise poll.aborted_error(reason)
                poll.tick()
                pause = poll.sleep_for()
                if pause is None:
                    raise poll.timeout_error()
                await asyncio.sleep(pause)
        finally:
            poll.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.description()!r}, timeout={self.timeout:g}, "
            f"interval={self.interval:g})"
        )


class PollReady(WaitStrategy[T]):
    """Wait until ``fn()`` returns a truthy value (or, with ``truthy=False``, returns at all).

    >>> PollReady(lambda: path.exists(), "boot image written", timeout=30).wait()
    """

    def __init__(
        self,
        fn: Callable[[], T],
        what: str,
        *,
        truthy: bool = True,
        timeout: float = 60.0,
        interval: float = 0.5,
        retryable: tuple[type[Exception], ...] = (OSError, VdsmError),
    ) -> None:
        super().__init__(timeout=timeout, interval=interval, retryable=retryable)
        self.fn = fn
        self.what = what
        self.truthy = truthy

    def check(self, budget: float) -> T:
        value = self.fn()
        if self.truthy and not value:
            raise NotReady(f"{self.what}: got {value!r}")
        return value

    def description(self) -> str:
        return self.what


class AllReady(WaitStrategy[tuple[Any, ...]]):
    """Wait until every strategy is ready, under one timeout; returns their results in order.

    Strategies that became ready are not polled again.
    """

    def __init__(
        self,
        *strategies: WaitStrategy[Any],
        timeout: float | None = None,
        interval: float | None = None,
    ) -> None:
        if not strategies:
            raise ValueError("AllReady needs at least one strategy")
        super().__init__(
            timeout=timeout if timeout is not None else max(s.timeout for s in strategies),
            interval=interval if interval is not None else min(s.interval for s in strategies),
        )
        self.strategies = strategies
        self._done: dict[int, Any] = {}
        self._failing: WaitStrategy[Any] | None = None

    def reset(self) -> None:
        self._done = {}
        self._failing = None
        for strategy in self.strategies:
            strategy.reset()

    def check(self, budget: float) -> tuple[Any, ...]:
        deadline = time.monotonic() + budget
        for index, strategy in enumerate(self.strategies):
            if index in self._done:
                continue
            self._failing = strategy
            self._done[index] = strategy.check(max(deadline - time.monotonic(), 0.05))
        self._failing = None
        return tuple(self._done[i] for i in range(len(self.strategies)))

    def is_retryable(self, err: Exception) -> bool:
        failing = self._failing
        return failing.is_retryable(err) if failing is not None else super().is_retryable(err)

    def description(self) -> str:
        return " and ".join(s.description() for s in self.strategies)


class HttpReady(WaitStrategy[int]):
    """Ready when ``url`` gives any HTTP answer (even 404 or 503); returns the status code."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        interval: float = 0.5,
        request_timeout: float = 5.0,
    ) -> None:
        super().__init__(timeout=timeout, interval=interval)
        self.url = url
        self.request_timeout = request_timeout

    def check(self, budget: float) -> int:
        try:
            with requests.get(
                self.url,
                timeout=_probe_timeout(self.request_timeout, budget),
                allow_redirects=False,
            ) as resp:
                return resp.status_code
        except requests.RequestException as err:
            raise NotReady(f"no HTTP answer from {self.url}: {err}") from err

    def description(self) -> str:
        return f"HTTP answer from {self.url}"


class DsmApiReady(WaitStrategy[dict[str, Any]]):
    """Ready when DSM's ``SYNO.API.Info`` answers with ``SYNO.API.Auth`` listed.

    Port 5000 answers long before DSM does (virtual-dsm's "please wait" page, HTTP 200), so
    only the API's own answer counts. Returns the ``SYNO.API.Info`` data.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__(timeout=timeout, interval=interval)
        self.base_url = base_url
        self.request_timeout = request_timeout

    def check(self, budget: float) -> dict[str, Any]:
        from vdsmlib.webapi.client import DsmClient

        with DsmClient(
            self.base_url, timeout=_probe_timeout(self.request_timeout, budget)
        ) as client:
            info = client.api_info("ALL")
        if "SYNO.API.Auth" not in info:
            raise NotReady(
                f"SYNO.API.Info at {self.base_url} answers but lists no SYNO.API.Auth yet "
                f"({len(info)} APIs)"
            )
        return info

    def description(self) -> str:
        return f"DSM Web API at {self.base_url}"


#: Login errors that will not go away by waiting (wrong password, disabled account, 2FA ...).
FATAL_LOGIN_CODES = frozenset({400, 401, 402, 403, 404, 406, 407, 408, 409, 410, 411})


class DsmLoginReady(WaitStrategy[None]):
    """Ready when ``user`` can log in to DSM (and out again).

    Login errors in ``fatal_codes`` (by default wrong password, disabled account, 2FA, ...)
    end the wait at once instead of timing out; pass ``fatal_codes=frozenset()`` while the
    account may still be being created.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        request_timeout: float = 10.0,
        fatal_codes: frozenset[int] = FATAL_LOGIN_CODES,
    ) -> None:
        super().__init__(timeout=timeout, interval=interval)
        self.base_url = base_url
        self.user = user
        self._password = password
        self.request_timeout = request_timeout
        self.fatal_codes = fatal_codes

    def check(self, budget: float) -> None:
        from vdsmlib.webapi.client import DsmClient

        with (
            DsmClient(
                self.base_url, timeout=_probe_timeout(self.request_timeout, budget)
            ) as client,
            client.login(self.user, self._password),
        ):
            return None

    def is_retryable(self, err: Exception) -> bool:
        from vdsmlib.webapi.client import WebApiError

        if isinstance(err, WebApiError) and err.code in self.fatal_codes:
            return False
        return super().is_retryable(err)

    def description(self) -> str:
        return f"DSM login of {self.user!r} at {self.base_url}"

    def __repr__(self) -> str:  # never show the password
        return f"DsmLoginReady({self.base_url!r}, {self.user!r}, timeout={self.timeout:g})"
