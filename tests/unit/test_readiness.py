"""Wait strategies: polling, timeouts, abort on death, async, and the HTTP/DSM probes against
real HTTP servers on 127.0.0.1 (a "please wait" page, an API that is not up yet)."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vdsmlib.errors import VdsmError
from vdsmlib.readiness import (
    AllReady,
    DsmApiReady,
    HttpReady,
    NotReady,
    PollReady,
    ReadinessAborted,
    ReadinessTimeout,
    WaitStrategy,
)
from vdsmlib.webapi import WebApiError


class Counter:
    """Not ready for the first ``fails`` calls, then returns ``value``."""

    def __init__(self, fails: int, value: Any = "up", error: Exception | None = None) -> None:
        self.fails = fails
        self.value = value
        self.error = error or NotReady("still booting")
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error
        return self.value


def test_polls_until_ready_and_reports_ticks() -> None:
    counter = Counter(fails=3)
    ticks: list[tuple[float, BaseException | None]] = []

    result = PollReady(counter, "thing", timeout=5, interval=0.01).wait(
        on_tick=lambda elapsed, err: ticks.append((elapsed, err))
    )

    assert result == "up"
    assert counter.calls == 4
    assert len(ticks) == 4
    assert [e for e, _ in ticks] == sorted(e for e, _ in ticks)
    assert isinstance(ticks[0][1], NotReady)


def test_falsy_result_is_not_ready() -> None:
    values: Iterator[object] = iter([0, "", None, [], "done"])
    assert PollReady(lambda: next(values), "x", interval=0.01).wait() == "done"
    # With truthy=False any return counts.
    assert PollReady(lambda: 0, "zero", truthy=False).wait() == 0


def test_timeout_says_what_how_long_and_last_error() -> None:
    counter = Counter(fails=10**6, error=ConnectionRefusedError("port 5000 closed"))
    start = time.monotonic()

    with pytest.raises(ReadinessTimeout) as exc:
        PollReady(counter, "DSM boot", timeout=0.3, interval=0.05).wait(
            describe=lambda: "log tail: qemu started"
        )

    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.0
    err = exc.value
    assert isinstance(err, VdsmError)
    assert err.what == "DSM boot"
    assert 0.3 <= err.waited < 1.0
    assert isinstance(err.last_error, ConnectionRefusedError)
    assert err.attempts == counter.calls >= 3
    message = str(err)
    assert "DSM boot not ready after 0." in message
    assert "ConnectionRefusedError: port 5000 closed" in message
    assert "log tail: qemu started" in message


def test_describe_failing_does_not_hide_the_timeout() -> None:
    def broken() -> str:
        raise RuntimeError("docker gone")

    with pytest.raises(ReadinessTimeout, match="describe\\(\\) failed: RuntimeError"):
        PollReady(Counter(10**6), "x", timeout=0.1, interval=0.05).wait(describe=broken)


def test_non_retryable_errors_propagate_at_once() -> None:
    counter = Counter(fails=5, error=ValueError("bad config"))
    with pytest.raises(ValueError, match="bad config"):
        PollReady(counter, "x", timeout=5, interval=0.01).wait()
    assert counter.calls == 1
    # ... unless declared retryable.
    counter = Counter(fails=2, error=ValueError("flaky"))
    assert PollReady(counter, "x", interval=0.01).with_retryable(ValueError).wait() == "up"


def test_keyboard_interrupt_is_never_wrapped() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PollReady(interrupted, "x", timeout=5).wait()


def test_alive_check_aborts_at_once() -> None:
    counter = Counter(fails=10**6)
    polls: list[int] = []

    def alive() -> str | None:
        polls.append(counter.calls)
        return "container exited with code 88" if len(polls) >= 2 else None

    start = time.monotonic()
    with pytest.raises(ReadinessAborted) as exc:
        PollReady(counter, "DSM", timeout=30, interval=0.01).wait(alive=alive)

    assert time.monotonic() - start < 1
    assert isinstance(exc.value, ReadinessTimeout)
    assert exc.value.reason == "container exited with code 88"
    assert "container exited with code 88" in str(exc.value)
    assert counter.calls == 2


def test_interval_must_stay_short() -> None:
    with pytest.raises(ValueError, match="interval"):
        PollReady(lambda: 1, "x", interval=2.0)
    with pytest.raises(ValueError, match="timeout"):
        PollReady(lambda: 1, "x", timeout=0)


def test_with_timeout_returns_a_copy() -> None:
    original = PollReady(lambda: 1, "x", timeout=5, interval=0.2)
    longer = original.with_timeout(60).with_interval(0.1)
    assert (original.timeout, original.interval) == (5, 0.2)
    assert (longer.timeout, longer.interval) == (60, 0.1)
    assert "timeout=60" in repr(longer)


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert PollReady(Counter(2), "with bar", interval=0.01).wait(progress=True) == "up"
    assert "with bar" in capsys.readouterr().err


def test_all_ready_polls_each_until_ready_once() -> None:
    a, b = Counter(fails=1, value="a"), Counter(fails=4, value="b")
    both = AllReady(
        PollReady(a, "first", interval=0.01), PollReady(b, "second", interval=0.01), timeout=5
    )
    assert both.wait() == ("a", "b")
    assert a.calls == 2  # not polled again once ready
    assert b.calls == 5
    assert both.description() == "first and second"
    # A second wait starts from scratch.
    assert both.wait() == ("a", "b")


def test_all_ready_respects_each_strategys_retryable() -> None:
    strict = PollReady(Counter(fails=3, error=KeyError("k")), "strict", interval=0.01)
    with pytest.raises(KeyError):
        AllReady(PollReady(Counter(0), "fine"), strict).wait()


def test_async_wait() -> None:
    counter = Counter(fails=2)

    async def main() -> Any:
        return await PollReady(counter, "x", interval=0.01).wait_async()

    assert asyncio.run(main()) == "up"


def test_async_alive_and_timeout() -> None:
    async def aborted() -> None:
        await PollReady(Counter(10**6), "x", interval=0.01).wait_async(alive=lambda: "gone")

    with pytest.raises(ReadinessAborted, match="gone"):
        asyncio.run(aborted())

    async def timed_out() -> None:
        await PollReady(Counter(10**6), "y", timeout=0.2, interval=0.05).wait_async()

    with pytest.raises(ReadinessTimeout, match="y not ready"):
        asyncio.run(timed_out())


def test_async_wait_can_be_cancelled() -> None:
    async def main() -> None:
        task = asyncio.create_task(
            PollReady(Counter(10**6), "x", timeout=30, interval=0.05).wait_async()
        )
        await asyncio.sleep(0.2)
        task.cancel()
        await task

    start = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert time.monotonic() - start < 2


def test_custom_strategy_gets_the_remaining_budget() -> None:
    budgets: list[float] = []

    class Budgeted(WaitStrategy[None]):
        def check(self, budget: float) -> None:
            budgets.append(budget)
            raise NotReady("no")

    with pytest.raises(ReadinessTimeout):
        Budgeted(timeout=0.3, interval=0.1).wait()
    assert budgets[0] <= 0.3
    assert budgets[-1] < budgets[0]


# -- HTTP probes against real local servers ----------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        self.server.hits += 1  # type: ignore[attr-defined]
        if mode == "please-wait" or not self.path.startswith("/webapi/query.cgi"):
            body = b"<html><body><h1>Please wait while Virtual DSM starts...</h1></body></html>"
            ctype = "text/html"
        elif mode == "no-auth":
            body = json.dumps({"success": True, "data": {"SYNO.API.Info": {}}}).encode()
            ctype = "application/json"
        else:
            data = {"SYNO.API.Auth": {"path": "entry.cgi", "minVersion": 1, "maxVersion": 7}}
            body = json.dumps({"success": True, "data": data}).encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.mode = "please-wait"  # type: ignore[attr-defined]
    httpd.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _url(httpd: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_http_ready_accepts_any_answer(web: http.server.ThreadingHTTPServer) -> None:
    assert HttpReady(_url(web) + "/anything").wait() == 200


def test_http_ready_times_out_on_a_closed_port() -> None:
    url = _closed_port_url()
    with pytest.raises(ReadinessTimeout) as exc:
        HttpReady(url, timeout=0.3, interval=0.05).wait()
    assert f"HTTP answer from {url}" in str(exc.value)
    assert isinstance(exc.value.last_error, NotReady)


def test_please_wait_page_is_not_dsm_readiness(web: http.server.ThreadingHTTPServer) -> None:
    with pytest.raises(ReadinessTimeout) as exc:
        DsmApiReady(_url(web), timeout=0.4, interval=0.05).wait()
    assert isinstance(exc.value.last_error, WebApiError)
    assert "not JSON" in str(exc.value)
    assert "Please wait" in str(exc.value)


def test_api_without_auth_is_not_ready(web: http.server.ThreadingHTTPServer) -> None:
    web.mode = "no-auth"  # type: ignore[attr-defined]
    with pytest.raises(ReadinessTimeout, match=r"lists no SYNO\.API\.Auth"):
        DsmApiReady(_url(web), timeout=0.3, interval=0.05).wait()


def test_dsm_api_ready_once_the_api_answers(web: http.server.ThreadingHTTPServer) -> None:
    def switch() -> None:
        web.mode = "ready"  # type: ignore[attr-defined]

    timer = threading.Timer(0.3, switch)
    timer.start()
    try:
        info = DsmApiReady(_url(web), timeout=5, interval=0.05).wait()
    finally:
        timer.cancel()
    assert "SYNO.API.Auth" in info
    assert web.hits >= 3  # type: ignore[attr-defined]


def test_dsm_api_ready_async(web: http.server.ThreadingHTTPServer) -> None:
    web.mode = "ready"  # type: ignore[attr-defined]
    info = asyncio.run(DsmApiReady(_url(web), timeout=5).wait_async())
    assert info["SYNO.API.Auth"]["maxVersion"] == 7
