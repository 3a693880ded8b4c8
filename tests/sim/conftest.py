"""Fixtures for the simulated DSM guest: run it as a subprocess, drive it with Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vdsmlib.wizard.browser import CHROMIUM_ARGS, DEFAULT_CHROMIUM

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VDSM_CHROMIUM") or DEFAULT_CHROMIUM
_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class GuestServer:
    """A running guest process and where it listens."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the guest wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_guest(env: dict[str, str] | None = None, timeout: float = 20.0) -> Iterator[GuestServer]:
    """Start ``python -m vdsmlib.sim.guest`` on a free port with the given SIM_* env."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    child_env.update(env or {})
    child_env["PYTHONPATH"] = str(REPO)
    fd, log_name = tempfile.mkstemp(prefix="sim-guest-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vdsmlib.sim.guest", "--host", "127.0.0.1", "--port", "0"],
            cwd=REPO,
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + timeout
        url = ""
        while not url:
            match = _LISTENING.search(log_path.read_text(errors="replace"))
            if match:
                url = match.group(1)
                break
            if proc.poll() is not None:
                raise RuntimeError(f"guest exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"guest did not listen within {timeout}s:\n{log_path.read_text()}"
                )
            time.sleep(0.05)
        yield GuestServer(url=url, proc=proc, log_path=log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


@pytest.fixture
def start_guest() -> Iterator[Callable[..., GuestServer]]:
    """Factory: ``start_guest({"SIM_SCREENS": ""})`` -> a running guest, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(env: dict[str, str] | None = None) -> GuestServer:
            return stack.enter_context(run_guest(env))

        yield start


async def launch_browser(playwright: Any) -> Any:
    """Debian Chromium, launched the way the project does."""
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


def run_browser(body: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``await body(browser)`` with a fresh Chromium on a fresh event loop."""
    import asyncio

    from playwright.async_api import async_playwright

    async def main() -> None:
        async with async_playwright() as pw:
            browser = await launch_browser(pw)
            try:
                await body(browser)
            finally:
                await browser.close()

    asyncio.run(main())


@pytest.fixture(scope="session")
def guest_launcher() -> Callable[..., contextlib.AbstractContextManager[GuestServer]]:
    """:func:`run_guest` for module-scoped fixtures: ``with guest_launcher(env) as server:``."""
    return run_guest


@pytest.fixture(scope="session")
def browser_runner() -> Callable[[Callable[[Any], Awaitable[None]]], None]:
    """:func:`run_browser`: ``browser_runner(body)`` runs ``await body(browser)``."""
    return run_browser
