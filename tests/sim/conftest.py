"""Fixtures for the simulated DSM guest: run it as a subprocess (:mod:`tests.guest`), drive it
with Chromium."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.guest import GuestServer, run_guest
from vdsmlib.wizard.browser import CHROMIUM_ARGS, DEFAULT_CHROMIUM

CHROMIUM = os.environ.get("VDSM_CHROMIUM") or DEFAULT_CHROMIUM


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
