"""An automation written only from shared/facts/dsm-ui-7.2.2.md and dsm-webapi.md.

It drives a fresh DSM from the welcome page to NFS enabled through Control Panel, then checks the
result through the Web API. By default it runs against a simulated DSM it starts itself; with
``VDSM_SIM_URL=http://HOST:5000`` it targets that DSM instead (the simulator container, or a real
Virtual DSM), using ``VDSM_SIM_ADMIN`` / ``VDSM_SIM_PASSWORD`` / ``VDSM_SIM_SERVER_NAME`` for the
account and ``VDSM_SIM_READY_TIMEOUT`` (seconds, default 900 there) for the wait until the
welcome page shows.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.browser

EXTERNAL_URL = os.environ.get("VDSM_SIM_URL", "").rstrip("/")
ADMIN = os.environ.get("VDSM_SIM_ADMIN", "csiadmin")
PASSWORD = os.environ.get("VDSM_SIM_PASSWORD", "Csi-Test-2024")
SERVER_NAME = os.environ.get("VDSM_SIM_SERVER_NAME", "vdsm-ci")
READY_TIMEOUT = float(os.environ.get("VDSM_SIM_READY_TIMEOUT", "900" if EXTERNAL_URL else "60"))

# Section 3 of the facts: identifier -> clicks.
KNOWN_SCREENS: list[tuple[str, str, list[str]]] = [
    (
        "Update options",
        "div.welcome-step-title:has-text('Select an update option')",
        [
            "div.v-radio-wrapper[syno-id='welcome-app-select-update-radio-notify']",
            "button.v-btn-main",
        ],
    ),
    (
        "Synology Account",
        "div.welcome-step-title:has-text('Create a Synology Account')",
        ["button[syno-id='welcome-app-wizard-fbar-back']"],
    ),
    (
        "User experience",
        "div.welcome-step-title:has-text('Opt-in for a better user experience')",
        ["button[syno-id='welcome-app-wizard-fbar-next']"],
    ),
    (
        "File access promotion",
        "div.title:has-text('Securely Access and Share Files From Anywhere')",
        ["button[syno-id='syno-promotion-preinstall-btn-skip']"],
    ),
    (
        "2FA promotion",
        "div.title:has-text('Enable 2-Factor Authentication (2FA)')",
        ["button[syno-id='syno-promotion-ss-btn-skip']"],
    ),
    (
        "Adaptive MFA promotion",
        "div.title:has-text('Protect your account with Adaptive MFA')",
        ["button[syno-id='syno-promotion-manually-amfa-btn-give-up']"],
    ),
    (
        "MFA warning",
        "div.dialog-content:has-text('We strongly recommend enabling 2FA or Adaptive MFA')",
        ["button[syno-id='promotion-app-window-msgbox-fbar-commit']"],
    ),
    (
        "Notification setup",
        "div.v-notification-panel:has(div.v-notification-title:has-text('Notification Setup'))",
        ["div.v-notification-panel i.close-btn.window-tool-close"],
    ),
    (
        "Notification reminder",
        "div.dialog-content:has-text('You can enable notifications later')",
        ["button[syno-id='window-manager-msg-box-fbar-commit']"],
    ),
]
WELCOME_BUTTON = "button.welcome-page-btn"
ADMIN_TITLE = "div.welcome-step-title:has-text('Get started with your VirtualDSM')"
DESKTOP = "div[elementtiming='desktop-item-title']:has-text('Package Center')"


async def _visible(page: Any, selector: str) -> bool:
    return bool(await page.locator(selector).first.is_visible())


async def wait_for_dsm(page: Any, base: str) -> str:
    """Open DSM and wait until it is ready: ``welcome``, ``login`` or ``desktop``."""
    from playwright.async_api import Error as PlaywrightError

    deadline = time.monotonic() + READY_TIMEOUT
    with contextlib.suppress(PlaywrightError):
        await page.goto(base + "/")
    last_reload = time.monotonic()
    while time.monotonic() < deadline:
        if await _visible(page, WELCOME_BUTTON):
            return "welcome"
        if await _visible(page, DESKTOP):
            return "desktop"
        # The login page (facts, section 5): a user name field, then a password field.
        if await _visible(page, "input[type=text], input[type=password]"):
            return "login"
        # Port 5000 answers with a "please wait" page while the VM boots: reload now and then.
        if time.monotonic() - last_reload > 10:
            # The VM's web server can drop connections while it starts.
            with contextlib.suppress(PlaywrightError):
                await page.goto(base + "/")
            last_reload = time.monotonic()
        await page.wait_for_timeout(500)
    raise AssertionError(f"DSM at {base} was not ready within {READY_TIMEOUT}s")


async def create_admin(page: Any) -> None:
    from playwright.async_api import expect

    await page.locator(WELCOME_BUTTON).click()
    await expect(page.locator(ADMIN_TITLE)).to_be_visible()
    await page.locator("#syno-0").fill(SERVER_NAME)
    await page.locator("#syno-1").fill(ADMIN)
    await page.locator("#syno-2").fill(PASSWORD)
    await page.locator("#syno-3").fill(PASSWORD)
    await page.locator("button.v-btn-main").click()
    deadline = time.monotonic() + 600
    while await _visible(page, ADMIN_TITLE):
        if await _visible(page, ".v-tooltip-error"):
            text = await page.locator(".v-tooltip-error").first.inner_text()
            raise AssertionError(f"DSM rejected the admin form: {text}")
        assert time.monotonic() < deadline, "admin form did not finish saving"
        await page.wait_for_timeout(250)


async def log_in(page: Any) -> None:
    # Two steps: the user name, Enter, then the password, Enter.
    await page.locator("input[type=text]:visible").first.fill(ADMIN)
    await page.keyboard.press("Enter")
    await page.locator("input[type=password]:visible").first.fill(PASSWORD)
    await page.keyboard.press("Enter")


async def handle_post_wizard(page: Any, quiet: float = 3.0, timeout: float = 300) -> list[str]:
    """Handle the known screens in whatever order they show, until the desktop shows and no
    screen has shown for ``quiet`` seconds."""
    from playwright.async_api import expect

    seen: list[str] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        for name, ident, clicks in KNOWN_SCREENS:
            if await _visible(page, ident):
                for selector in clicks:
                    await page.locator(selector).first.click()
                await expect(page.locator(ident).first).to_be_hidden(timeout=60_000)
                seen.append(name)
                quiet_since = None
                break
        else:
            if await _visible(page, DESKTOP):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= quiet:
                    return seen
            await page.wait_for_timeout(250)
    text = (await page.locator("body").inner_text())[:500]
    raise AssertionError(f"post-wizard screens did not end; seen {seen}; page text: {text!r}")


async def enable_nfs_in_control_panel(page: Any) -> None:
    from playwright.async_api import expect

    await page.locator("li[syno-id='SYNO.SDS.AdminCenter.Application'].icon-item").click()
    await page.locator("div[fn='SYNO.SDS.AdminCenter.FileService.Main']").click()
    await page.locator("span.x-tab-strip-text:text-is('NFS')").click()
    if not await page.locator("input[name='enable_nfs']").is_checked():
        await page.locator("input[name='enable_nfs'] + div.syno-ux-checkbox-icon").click()
    await expect(page.locator("input[name='enable_nfs']")).to_be_checked()
    await page.locator("button.x-btn-text:text-is('Apply')").click()
    await expect(
        page.locator("div.syno-ux-statusbar-success", has_text="Changes applied")
    ).to_be_visible(timeout=120_000)


def webapi(base: str, cgi: str, cookies: dict[str, str] | None = None, **params: Any) -> Any:
    resp = requests.get(f"{base}/webapi/{cgi}", params=params, cookies=cookies, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True, (params.get("api"), params.get("method"), body)
    return body.get("data")


def verify_nfs_by_webapi(base: str) -> None:
    info = webapi(base, "query.cgi", api="SYNO.API.Info", version=1, method="query", query="ALL")
    assert info["SYNO.Core.FileServ.NFS"]["maxVersion"] >= 2
    login = webapi(
        base,
        "auth.cgi",
        api="SYNO.API.Auth",
        version=3,
        method="login",
        account=ADMIN,
        passwd=PASSWORD,
        format="sid",
    )
    cookies = {"id": login["sid"]}
    nfs = webapi(base, "entry.cgi", cookies, api="SYNO.Core.FileServ.NFS", version=2, method="get")
    assert nfs["enable_nfs"] is True
    webapi(base, "entry.cgi", cookies, api="SYNO.API.Auth", version=1, method="logout")


async def automate(browser: Any, base: str) -> list[str]:
    """The whole run; returns the post-wizard screens met."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = await context.new_page()
        first = await wait_for_dsm(page, base)
        if first == "welcome":
            await create_admin(page)
        elif first == "login":
            await log_in(page)
        seen = await handle_post_wizard(page)
        await enable_nfs_in_control_panel(page)
        return seen
    finally:
        await context.close()


SCENARIOS = [
    pytest.param({}, id="default-screens"),
    pytest.param({"SIM_SCREEN_SEED": "11", "SIM_TRANSITION_MS": "300"}, id="seeded-screens"),
]


@pytest.mark.parametrize("env", SCENARIOS)
def test_facts_automation_enables_nfs(
    env: dict[str, str], start_guest: Any, browser_runner: Any
) -> None:
    if EXTERNAL_URL and env:
        pytest.skip("scenario knobs apply only to a simulator this test starts itself")
    base = EXTERNAL_URL or start_guest(env).url
    met: list[list[str]] = []

    async def body(browser: Any) -> None:
        met.append(await automate(browser, base))

    browser_runner(body)
    if not EXTERNAL_URL and not env:
        assert len(met[0]) == len(KNOWN_SCREENS), met
    verify_nfs_by_webapi(base)
