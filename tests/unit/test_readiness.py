"""The wait loop (timeouts, retryable errors, abort on death, progress, the sync wrapper) and
the DSM probes against real HTTP servers on 127.0.0.1 (a "please wait" page, an API that is not
up yet, a closed port, a connection reset, a SYN nobody answers)."""

from __future__ import annotations

import asyncio
import http.server
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vdsmlib.errors import VdsmError
from vdsmlib.readiness import (
    PROGRESS_LINE_EVERY,
    NotReady,
    ReadinessAborted,
    ReadinessTimeout,
    SyncInEventLoopError,
    WaitStrategy,
    _Progress,
    wait_for,
    wait_for_sync,
)
from vdsmlib.webapi import WebApiError
from vdsmlib.webapi.readiness import DsmApiReady


class Counter:
    """A probe: not ready for the first ``fails`` polls, then returns ``value``."""

    def __init__(self, fails: int, value: Any = "up", error: Exception | None = None) -> None:
        self.fails = fails
        self.value = value
        self.error = error or NotReady("still booting")
        self.calls = 0
        self.budgets: list[float] = []

    async def __call__(self, budget: float) -> Any:
        self.calls += 1
        self.budgets.append(budget)
        if self.calls <= self.fails:
            raise self.error
        return self.value


class CounterReady(WaitStrategy[Any]):
    """A wait object over a :class:`Counter`."""

    def __init__(self, counter: Counter, what: str, **timing: float) -> None:
        super().__init__(**timing)
        self.counter = counter
        self.what = what

    async def check_async(self, budget: float) -> Any:
        return await self.counter(budget)

    def description(self) -> str:
        return self.what


def wait(counter: Counter, what: str = "x", **options: Any) -> Any:
    """Run :func:`wait_for` on ``counter`` from a test (a fresh event loop)."""
    options.setdefault("timeout", 5)
    options.setdefault("interval", 0.01)
    return asyncio.run(wait_for(counter, what=what, **options))


def test_polls_until_ready_and_reports_ticks() -> None:
    counter = Counter(fails=3)
    ticks: list[tuple[float, BaseException | None]] = []

    result = wait(counter, "thing", on_tick=lambda elapsed, err: ticks.append((elapsed, err)))

    assert result == "up"
    assert counter.calls == 4
    assert len(ticks) == 4
    assert [e for e, _ in ticks] == sorted(e for e, _ in ticks)
    assert isinstance(ticks[0][1], NotReady)


def test_probe_gets_the_remaining_budget() -> None:
    counter = Counter(fails=10**6)
    with pytest.raises(ReadinessTimeout):
        wait(counter, timeout=0.3, interval=0.1)
    assert counter.budgets[0] <= 0.3
    assert counter.budgets[-1] < counter.budgets[0]


def test_timeout_says_what_how_long_and_last_error() -> None:
    counter = Counter(fails=10**6, error=ConnectionRefusedError("port 5000 closed"))
    start = time.monotonic()

    with pytest.raises(ReadinessTimeout) as exc:
        wait(
            counter,
            "DSM boot",
            timeout=0.3,
            interval=0.05,
            retryable=(ConnectionRefusedError,),
            describe=lambda: "log tail: qemu started",
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
        wait(Counter(10**6), timeout=0.1, interval=0.05, describe=broken)


def test_errors_outside_the_retryable_set_end_the_wait_unchanged() -> None:
    # A bug in a probe (here a KeyError) is raised at once, never turned into a timeout.
    counter = Counter(fails=5, error=KeyError("typo"))
    with pytest.raises(KeyError, match="typo"):
        wait(counter, retryable=(OSError,))
    assert counter.calls == 1
    # A declared retryable error is retried.
    counter = Counter(fails=2, error=ConnectionResetError("reset"))
    assert wait(counter, retryable=(OSError,)) == "up"
    assert counter.calls == 3


def test_keyboard_interrupt_is_never_wrapped() -> None:
    async def interrupted(budget: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(wait_for(interrupted, what="x", timeout=5, retryable=(Exception,)))


def test_alive_check_aborts_at_once() -> None:
    counter = Counter(fails=10**6)
    polls: list[int] = []

    def alive() -> str | None:
        polls.append(counter.calls)
        return "container exited with code 88" if len(polls) >= 2 else None

    start = time.monotonic()
    with pytest.raises(ReadinessAborted) as exc:
        wait(counter, "DSM", timeout=30, alive=alive)

    assert time.monotonic() - start < 1
    assert isinstance(exc.value, ReadinessTimeout)
    assert exc.value.reason == "container exited with code 88"
    assert "container exited with code 88" in str(exc.value)
    assert counter.calls == 2


def test_interval_must_stay_short() -> None:
    with pytest.raises(ValueError, match="interval"):
        wait(Counter(0), interval=2.0)
    with pytest.raises(ValueError, match="timeout"):
        CounterReady(Counter(0), "x", timeout=0)
    with pytest.raises(ValueError, match="interval"):
        CounterReady(Counter(0), "x").with_interval(5)


def test_with_timeout_returns_a_copy() -> None:
    original = CounterReady(Counter(0), "x", timeout=5, interval=0.2)
    longer = original.with_timeout(60).with_interval(0.1)
    assert (original.timeout, original.interval) == (5, 0.2)
    assert (longer.timeout, longer.interval) == (60, 0.1)
    assert "timeout=60" in repr(longer)


def test_progress_bar_where_it_can_redraw(capsys: pytest.CaptureFixture[str]) -> None:
    bar = _Progress("with bar", 10, redraw=True)
    bar.tick(1.0, None)
    bar.close()
    assert "with bar" in capsys.readouterr().err


def test_no_bar_redraws_in_a_log_a_plain_line_now_and_then(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """stderr is no terminal here (a CI log): no bar, a line every PROGRESS_LINE_EVERY s."""
    assert wait(Counter(2), "no bar", progress=True) == "up"
    assert "no bar" not in capsys.readouterr().err
    quiet = _Progress("DSM Web API", 600, redraw=False)
    with caplog.at_level("INFO", logger="vdsmlib.readiness"):
        for elapsed in [0.5 * i for i in range(1, 2 * 95)]:  # ticks every 0.5 s for 95 s
            quiet.tick(elapsed, None)
    quiet.close()
    lines = [r.getMessage() for r in caplog.records if "DSM Web API" in r.getMessage()]
    assert len(lines) == int(95 // PROGRESS_LINE_EVERY), lines
    assert lines[0].startswith("DSM Web API: still waiting, 30 s of 600 s")


def test_sync_wait_and_async_wait_are_one_loop() -> None:
    counter = Counter(fails=2)
    assert CounterReady(counter, "x", interval=0.01).wait() == "up"
    assert counter.calls == 3

    async def main() -> Any:
        return await CounterReady(Counter(fails=2), "x", interval=0.01).wait_async()

    assert asyncio.run(main()) == "up"


def test_sync_wait_refuses_inside_a_running_event_loop() -> None:
    counter = Counter(fails=0)

    async def in_a_notebook_cell() -> Any:
        return CounterReady(counter, "DSM Web API", interval=0.01).wait()

    with pytest.raises(SyncInEventLoopError, match=r"DSM Web API.*await .*wait_async"):
        asyncio.run(in_a_notebook_cell())
    assert counter.calls == 0  # refused before polling

    async def nothing() -> None:
        return None

    async def also_the_bare_wrapper() -> None:
        wait_for_sync(nothing, "nothing")

    with pytest.raises(SyncInEventLoopError):
        asyncio.run(also_the_bare_wrapper())


def test_async_alive_and_timeout() -> None:
    with pytest.raises(ReadinessAborted, match="gone"):
        wait(Counter(10**6), alive=lambda: "gone")
    with pytest.raises(ReadinessTimeout, match="y not ready"):
        wait(Counter(10**6), "y", timeout=0.2, interval=0.05)


def test_async_wait_can_be_cancelled() -> None:
    counter = Counter(10**6)

    async def polled_twice(budget: float) -> None:
        if counter.calls < 2:
            raise NotReady(f"{counter.calls} polls")

    async def main() -> None:
        task = asyncio.create_task(wait_for(counter, what="x", timeout=30, interval=0.05))
        await wait_for(polled_twice, what="the wait to poll", timeout=5, interval=0.01)
        task.cancel()
        await task

    start = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert time.monotonic() - start < 2


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


def test_dsm_api_ready_retries_a_refused_connection() -> None:
    url = _closed_port_url()
    with pytest.raises(ReadinessTimeout) as exc:
        DsmApiReady(url, timeout=0.3, interval=0.05).wait()
    assert f"DSM Web API at {url}" in str(exc.value)
    assert isinstance(exc.value.last_error, WebApiError)
    assert exc.value.attempts >= 2


def test_dsm_api_ready_retries_a_reset_connection() -> None:
    # A guest booting behind NAT may accept and drop connections before DSM listens.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        stop = threading.Event()

        def reset_everything() -> None:
            server.settimeout(0.05)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                conn.close()  # RST instead of an answer

        thread = threading.Thread(target=reset_everything, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.getsockname()[1]}"
            with pytest.raises(ReadinessTimeout) as exc:
                DsmApiReady(url, timeout=0.4, interval=0.05).wait()
        finally:
            stop.set()
            thread.join(5)
    assert exc.value.attempts >= 2
    assert isinstance(exc.value.last_error, WebApiError)


def test_dsm_api_ready_retries_a_syn_nobody_answers() -> None:
    # A full accept queue drops further SYNs, as a NAT rule with nothing behind it does: the
    # probe's request timeout bounds each attempt and the wait goes on.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)

        async def queue_full(budget: float) -> None:
            # backlog 0 holds one connection: once one filler is connected, SYNs are dropped
            _, writable, _ = select.select([], fillers, [], 0)
            if not any(f.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for f in writable):
                raise NotReady("no filler connected yet")

        wait_for_sync(
            lambda: wait_for(queue_full, what="a full accept queue", timeout=5, interval=0.01),
            "a full accept queue",
        )
        try:
            start = time.monotonic()
            with pytest.raises(ReadinessTimeout) as exc:
                DsmApiReady(
                    f"http://127.0.0.1:{port}", timeout=2.5, interval=0.05, request_timeout=1
                ).wait()
            assert time.monotonic() - start < 6
        finally:
            for filler in fillers:
                filler.close()
    assert exc.value.attempts >= 2
    assert "ConnectTimeout" in str(exc.value)


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
