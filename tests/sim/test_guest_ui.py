"""The simulated DSM's UI in real Chromium, by the selectors of shared/facts/dsm-ui-7.2.2.md."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.browser

ADMIN = "simadmin"
PASSWORD = "Sup3rSecret"
SERVER_NAME = "simnas"

TITLE_ADMIN = "div.welcome-step-title:text-is('Get started with your VirtualDSM')"
MASK = ".v-window-container-mask"
DESKTOP = "div[elementtiming='desktop-item-title']:text-is('Package Center')"

# id -> (identifier, clicks, drawn over a mask), verbatim from the facts' section 3.
SCREENS: dict[str, tuple[str, list[str], bool]] = {
    "update-options": (
        "div.welcome-step-title:text-is('Select an update option')",
        [
            "div.v-radio-wrapper[syno-id='welcome-app-select-update-radio-notify']",
            "button.v-btn-main",
        ],
        False,
    ),
    "synology-account": (
        "div.welcome-step-title:text-is('Create a Synology Account')",
        ["button[syno-id='welcome-app-wizard-fbar-back']"],
        False,
    ),
    "user-experience": (
        "div.welcome-step-title:text-is('Opt-in for a better user experience')",
        ["button[syno-id='welcome-app-wizard-fbar-next']"],
        False,
    ),
    "file-access-promo": (
        "div.title:text-is('Securely Access and Share Files From Anywhere')",
        ["button[syno-id='syno-promotion-preinstall-btn-skip']"],
        True,
    ),
    "2fa-promo": (
        "div.title:text-is('Enable 2-Factor Authentication (2FA)')",
        ["button[syno-id='syno-promotion-ss-btn-skip']"],
        True,
    ),
    "amfa-promo": (
        "div.title:text-is('Protect your account with Adaptive MFA')",
        ["button[syno-id='syno-promotion-manually-amfa-btn-give-up']"],
        True,
    ),
    "mfa-warning": (
        "div.dialog-content:has-text('We strongly recommend enabling 2FA or Adaptive MFA')",
        ["button[syno-id='promotion-app-window-msgbox-fbar-commit']"],
        True,
    ),
    "notification-setup": (
        "div.v-notification-panel:has(div.v-notification-title:text-is('Notification Setup'))",
        ["div.v-notification-panel i.close-btn.window-tool-close"],
        False,
    ),
    "notification-reminder": (
        "div.dialog-content:has-text('You can enable notifications later')",
        ["button[syno-id='window-manager-msg-box-fbar-commit']"],
        True,
    ),
    "extra-dialog": (
        "button[syno-id='sim-extra-dialog-fbar-ok']",
        ["button[syno-id='sim-extra-dialog-fbar-ok']"],
        True,
    ),
}


def state(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/sim/state", timeout=5).json()


async def submit_admin(page: Any, password: str = PASSWORD) -> None:
    await page.fill("#syno-0", SERVER_NAME)
    await page.fill("#syno-1", ADMIN)
    await page.fill("#syno-2", password)
    await page.fill("#syno-3", password)
    await page.click("button.v-btn-main")


async def start_wizard(page: Any, url: str) -> None:
    await page.goto(url)
    await page.locator("button.welcome-page-btn").click()
    await page.locator(TITLE_ADMIN).wait_for(state="visible")


async def handle_screen(page: Any, screen: str) -> None:
    from playwright.async_api import expect

    ident, clicks, masked = SCREENS[screen]
    await expect(page.locator(ident)).to_be_visible()
    if masked:
        await expect(page.locator(MASK)).to_be_visible()
    for selector in clicks:
        await page.locator(selector).click()
    await expect(page.locator(ident)).to_be_hidden()


async def walk_screens(page: Any, quiet: float = 1.0, timeout: float = 30.0) -> list[str]:
    """Handle whichever known screen shows, until the desktop shows and nothing else for
    ``quiet`` seconds; return the screens in the order they showed."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        showing = None
        for screen, (ident, _, _) in SCREENS.items():
            if await page.locator(ident).is_visible():
                showing = screen
                break
        if showing:
            seen.append(showing)
            await handle_screen(page, showing)
            quiet_since = None
            continue
        if await page.locator(DESKTOP).is_visible():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet:
                return seen
        await page.wait_for_timeout(100)
    raise AssertionError(f"no desktop within {timeout}s; screens seen: {seen}")


def in_browser(browser_runner: Any, body: Callable[[Any], Awaitable[None]]) -> None:
    async def run(browser: Any) -> None:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            await body(context)
        finally:
            await context.close()

    browser_runner(run)


def test_whole_ui_by_the_facts(start_guest: Any, browser_runner: Any) -> None:
    """Welcome, weak password, admin form, all nine screens, desktop, Control Panel NFS via the
    styled checkbox, Apply, and the login page in a fresh browser context."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import expect

    server = start_guest()
    url = server.url

    async def body(context: Any) -> None:
        page = await context.new_page()
        await page.goto(url)
        await expect(page.locator("button.welcome-page-btn")).to_be_visible()
        await expect(page.get_by_text("Welcome to DSM 7")).to_be_visible()
        await expect(
            page.get_by_text("Next-generation data management begins here")
        ).to_be_visible()
        await page.locator("button.welcome-page-btn").click()
        await expect(page.locator(TITLE_ADMIN)).to_be_visible()
        for sel in ("input[name=device_name]", "input[name=nas_account]"):
            await expect(page.locator(sel)).to_be_visible()
        await expect(page.locator("input[name=password]")).to_have_count(2)
        await expect(page.locator("input[type=password]")).to_have_count(2)

        # A weak password keeps the form with an error tooltip.
        await submit_admin(page, "weakpw")
        await expect(page.locator(".v-tooltip-error").first).to_be_visible()
        await expect(page.locator(".error-msg").first).to_contain_text("8 characters")
        await expect(page.locator(TITLE_ADMIN)).to_be_visible()
        assert state(url)["configured"] is False

        await submit_admin(page)
        await expect(page.locator(TITLE_ADMIN)).to_be_hidden()
        await expect(page.locator(".v-tooltip-error")).to_have_count(0)

        for screen in state(url)["screens"]:
            await handle_screen(page, screen)
            # Completion lives in the server.
            assert screen in state(url)["screens_done"]
        await expect(page.locator(DESKTOP)).to_be_visible()
        for title in ("Control Panel", "File Station"):
            await expect(
                page.locator(f"div[elementtiming='desktop-item-title']:text-is('{title}')")
            ).to_be_visible()
        await expect(page.locator(MASK)).to_have_count(0)
        assert state(url)["update_option"] == "notify"

        # Reload: still the desktop, no screen comes back.
        await page.reload()
        await expect(page.locator(DESKTOP)).to_be_visible()
        await expect(page.locator(MASK)).to_have_count(0)

        # Control Panel -> File Services -> NFS.
        await page.locator("li[syno-id='SYNO.SDS.AdminCenter.Application'].icon-item").click()
        await page.locator("div[fn='SYNO.SDS.AdminCenter.FileService.Main']").click()
        await page.locator("span.x-tab-strip-text:text-is('NFS')").click()
        nfs_input = page.locator("input[name='enable_nfs']")
        await expect(nfs_input).not_to_be_checked()
        # The bare input cannot be clicked, even forced or dispatched.
        with pytest.raises(PlaywrightError):
            await nfs_input.click(timeout=1000)
        with contextlib.suppress(PlaywrightError):
            await nfs_input.click(force=True, timeout=1000)
        await nfs_input.dispatch_event("click")
        await expect(nfs_input).not_to_be_checked()
        await page.locator("input[name='enable_nfs'] + div.syno-ux-checkbox-icon").click()
        await expect(nfs_input).to_be_checked()
        assert state(url)["enable_nfs"] is False  # not before Apply
        await page.locator("button.x-btn-text:text-is('Apply')").click()
        await expect(
            page.locator("div.syno-ux-statusbar-success:text-is('Changes applied')")
        ).to_be_visible()
        assert state(url)["enable_nfs"] is True

        # SMB tab, same styled checkbox: switch SMB off.
        await page.locator("span.x-tab-strip-text:text-is('SMB')").click()
        smb_input = page.locator("input[name='enable_samba']")
        await expect(smb_input).to_be_checked()
        await page.locator("input[name='enable_samba'] + div.syno-ux-checkbox-icon").click()
        await page.locator("button.x-btn-text:text-is('Apply')").click()
        await expect(page.locator("div.syno-ux-statusbar-success")).to_be_visible()
        assert state(url)["enable_samba"] is False
        await expect(smb_input).not_to_be_checked()

        # A fresh context has no session: the two-step login page, then the desktop.
        fresh = await context.browser.new_context()
        try:
            other = await fresh.new_page()
            await other.goto(url)
            await other.locator("input[name=username]").fill(ADMIN)
            await other.locator("input[name=username]").press("Enter")
            await other.locator("input[name=current-password]").fill("Wrong1password")
            await other.locator("input[name=current-password]").press("Enter")
            await expect(other.locator(".login-error")).to_be_visible()
            await other.locator("input[name=current-password]").fill(PASSWORD)
            await other.locator("input[name=current-password]").press("Enter")
            await expect(other.locator(DESKTOP)).to_be_visible()
            await other.reload()
            await expect(other.locator(DESKTOP)).to_be_visible()
        finally:
            await fresh.close()

    in_browser(browser_runner, body)


def test_screen_order_knob(start_guest: Any, browser_runner: Any) -> None:
    order = "notification-setup,2fa-promo,update-options,mfa-warning"
    server = start_guest({"SIM_SCREENS": order})

    async def body(context: Any) -> None:
        page = await context.new_page()
        await start_wizard(page, server.url)
        await submit_admin(page)
        assert await walk_screens(page) == order.split(",")

    in_browser(browser_runner, body)


def test_no_screens_goes_straight_to_desktop(start_guest: Any, browser_runner: Any) -> None:
    server = start_guest({"SIM_SCREENS": ""})

    async def body(context: Any) -> None:
        from playwright.async_api import expect

        page = await context.new_page()
        await start_wizard(page, server.url)
        await submit_admin(page)
        await expect(page.locator(DESKTOP)).to_be_visible()
        assert await walk_screens(page, quiet=0.5) == []

    in_browser(browser_runner, body)


def test_screen_seed_is_reproducible(start_guest: Any, browser_runner: Any) -> None:
    first = start_guest({"SIM_SCREEN_SEED": "3"})
    second = start_guest({"SIM_SCREEN_SEED": "3"})
    other = start_guest({"SIM_SCREEN_SEED": "4"})
    planned = state(first.url)["screens"]
    assert planned == state(second.url)["screens"]
    assert planned != list(SCREENS)[:9]
    assert state(other.url)["screens"] != planned
    walked: list[list[str]] = []

    async def body(context: Any) -> None:
        for server in (first, second):
            page = await context.new_page()
            await start_wizard(page, server.url)
            await submit_admin(page)
            walked.append(await walk_screens(page, quiet=0.5))
            await page.close()

    in_browser(browser_runner, body)
    assert walked == [planned, planned]


def test_extra_dialog(start_guest: Any, browser_runner: Any) -> None:
    text = "Your storage pool needs attention"
    server = start_guest({"SIM_SCREENS": "user-experience,2fa-promo", "SIM_EXTRA_DIALOG": text})

    async def body(context: Any) -> None:
        from playwright.async_api import expect

        page = await context.new_page()
        await start_wizard(page, server.url)
        await submit_admin(page)
        await handle_screen(page, "user-experience")
        dialog = page.locator(f"div.dialog-content:text-is('{text}')")
        await expect(dialog).to_be_visible()
        await expect(page.locator(MASK)).to_be_visible()
        await page.locator("button[syno-id='sim-extra-dialog-fbar-ok']").click()
        await expect(dialog).to_be_hidden()
        assert await walk_screens(page, quiet=0.5) == ["2fa-promo"]

    in_browser(browser_runner, body)


def test_transition_and_save_delays(start_guest: Any, browser_runner: Any) -> None:
    server = start_guest(
        {"SIM_SCREENS": "2fa-promo,amfa-promo", "SIM_TRANSITION_MS": "1200", "SIM_SAVE_MS": "1000"}
    )

    async def body(context: Any) -> None:
        from playwright.async_api import expect

        page = await context.new_page()
        await start_wizard(page, server.url)
        started = time.monotonic()
        await submit_admin(page)
        await page.wait_for_timeout(400)
        await expect(page.locator(TITLE_ADMIN)).to_be_visible()
        await expect(page.locator(TITLE_ADMIN)).to_be_hidden(timeout=10_000)
        assert time.monotonic() - started >= 0.9

        ident, clicks, _ = SCREENS["2fa-promo"]
        await expect(page.locator(ident)).to_be_visible()
        started = time.monotonic()
        await page.locator(clicks[0]).click()
        await page.wait_for_timeout(500)
        await expect(page.locator(ident)).to_be_visible()
        await expect(page.locator(ident)).to_be_hidden(timeout=10_000)
        assert time.monotonic() - started >= 1.1
        await expect(page.locator(SCREENS["amfa-promo"][0])).to_be_visible()

    in_browser(browser_runner, body)


def test_install_delay_then_welcome_without_reload(start_guest: Any, browser_runner: Any) -> None:
    async def body(context: Any) -> None:
        from playwright.async_api import expect

        page = await context.new_page()
        # The delay counts from server start: start it only once the browser is up.
        server = start_guest({"SIM_INSTALL_DELAY": "3"})
        started = time.monotonic()
        await page.goto(server.url)
        await expect(page.locator("#sim-root[data-view='installing']")).to_be_visible()
        await expect(page.locator("button.welcome-page-btn")).to_have_count(0)
        await expect(page.locator("button.welcome-page-btn")).to_be_visible(timeout=15_000)
        assert time.monotonic() - started >= 2.5

    in_browser(browser_runner, body)
