"""The wizard engine and browser session in real Chromium against the simulator's guest web app.

The guest app runs on the host (``python -m vdsm_sim.guest --port 0``), one process per test,
killed afterwards. Profiles are the shipped DSM 7.2.2 ones with short timeouts
(``tests/wizard/profiles/fast``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.guest import run_guest
from tests.screens import SIM_TO_PROFILE
from vdsmlib.readiness import NotReady, wait_for
from vdsmlib.wizard import (
    BrowserSession,
    ClipFormat,
    Credentials,
    Screen,
    ScreenError,
    StageReport,
    UnknownScreenError,
    Wizard,
    WizardError,
    default_profiles_dir,
    load_stage_profile,
    run_stage,
)

pytestmark = pytest.mark.browser

FAST = [Path(__file__).parent / "profiles", default_profiles_dir()]
PASSWORD = "Wizard-Test-Pass9"
VALUES = {"server_name": "vdsm-ci", "admin_user": "ciadmin", "admin_password": PASSWORD}
CREDENTIALS = Credentials(VALUES["admin_user"], PASSWORD)


@contextmanager
def sim(tmp_path: Path, **knobs: str) -> Iterator[str]:
    """The guest web app with SIM_* knobs on a free port; yields its base URL."""
    with sim_at(tmp_path, 0, knobs) as url:
        yield url


@contextmanager
def sim_at(tmp_path: Path, port: int, knobs: dict[str, str]) -> Iterator[str]:
    """The guest web app (tests.guest.run_guest) on ``port``; yields its base URL. Its log,
    request lines included, is ``tmp_path / "sim.log"``."""
    with run_guest(knobs, port=port, log_path=tmp_path / "sim.log") as guest:
        yield guest.url + "/"


def sim_state(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "sim/state", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def session_cookie(state_file: Path) -> str:
    cookies = json.loads(state_file.read_text())["cookies"]
    return str(next(c["value"] for c in cookies if c["name"] == "id"))


def nfs_enabled(base_url: str, state_file: Path) -> bool:
    request = urllib.request.Request(
        base_url + "webapi/entry.cgi?api=SYNO.Core.FileServ.NFS&version=2&method=get",
        headers={"Cookie": f"id={session_cookie(state_file)}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    assert answer["success"], answer
    return bool(answer["data"]["enable_nfs"])


def assert_evidence(report: StageReport) -> None:
    assert report.video is not None and report.video.name == f"{report.stage}.webm"
    assert report.trace is not None and report.trace.name == f"{report.stage}.trace.zip"
    for path in (report.video, report.trace, *report.screenshots):
        assert path.is_file() and path.stat().st_size > 0, path
    with zipfile.ZipFile(report.trace) as trace:
        for name in trace.namelist():
            assert PASSWORD.encode() not in trace.read(name), f"password in trace member {name}"


#: a clip of a screen is at most this much longer than the screen: lead + tail (0.5 s each)
#: and a frame (0.1 s at 10 fps) of rounding
CLIP_MARGIN = 1.1
#: what a clip of these short simulator screens weighs at most (they measure 5-10 KB)
CLIP_BYTES = 150_000


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a video: format and the first video stream."""
    ffprobe = shutil.which("ffprobe")
    assert ffprobe, "ffprobe is missing: apt-get install ffmpeg"
    argv = [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    info: dict[str, Any] = json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)
    return info


def assert_clips(report: StageReport) -> None:
    """One valid, small 480 px VP8 clip per handled screen (and the failed one), inside the
    stage video and no longer than the screen showed plus the margin."""
    assert report.video is not None
    video_seconds = float(probe(report.video)["format"]["duration"])
    records = [r for r in report.screens if not r.skipped]
    if report.failed_screen is not None:
        records.append(report.failed_screen)
    assert records
    for record in records:
        assert record.clip is not None, record
        assert record.clip.parent == report.video.parent / "clips"
        assert record.screenshot is not None and record.clip.stem == record.screenshot.stem
        assert 0 < record.clip.stat().st_size < CLIP_BYTES, record.clip
        info = probe(record.clip)
        stream = info["streams"][0]
        assert (stream["codec_name"], stream["width"]) == ("vp8", ClipFormat().width)
        seconds = float(info["format"]["duration"])
        assert record.started is not None and record.ended is not None
        shown = record.ended - record.started
        assert 0 < seconds <= shown + CLIP_MARGIN, (record.screen, seconds, shown)
        assert record.video_start is not None and record.video_end is not None
        assert 0 <= record.video_start < record.video_end <= video_seconds
        assert record.to_dict()["clip"] == str(record.clip)
    skipped = [r for r in report.screens if r.skipped]
    assert all(r.clip is None for r in skipped)


async def setup(session: BrowserSession, base_url: str) -> tuple[StageReport, StageReport]:
    admin = await run_stage(
        session, load_stage_profile("fast", "admin", search=FAST), VALUES, base_url
    )
    post = await run_stage(
        session, load_stage_profile("fast", "post-wizard", search=FAST), VALUES, base_url
    )
    return admin, post


async def test_admin_and_post_wizard_with_default_screens(tmp_path: Path) -> None:
    with sim(tmp_path) as url:
        async with BrowserSession(tmp_path / "evidence") as session:
            admin, post = await setup(session, url)
        state = sim_state(url)
    assert admin.ok and admin.handled == ["welcome", "admin-account"]
    assert post.ok
    assert post.handled == [SIM_TO_PROFILE[s] for s in state["screens"]]
    assert state["screens_pending"] == [] and state["configured"] is True
    assert state["admin_user"] == "ciadmin" and state["hostname"] == "vdsm-ci"
    assert state["update_option"] == "notify"  # the radio the profile chooses
    for report in (admin, post):
        assert_evidence(report)
        assert_clips(report)
    assert len(list((tmp_path / "evidence" / "clips").iterdir())) == 2 + len(post.handled)
    shots = [p.name for p in post.screenshots]
    assert shots[0] == "post-wizard-01-update-options.png"
    assert all(r.screenshot is not None for r in post.screens)
    assert json.dumps(post.to_dict())  # plain data for result.json
    for path in (tmp_path / "evidence").iterdir():
        if path.suffix in (".json", ".yaml", ".txt", ".html"):
            assert PASSWORD not in path.read_text(), path


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param(
            {"SIM_SCREENS": "notification-setup,notification-reminder,2fa-promo,update-options"},
            id="reordered-subset",
        ),
        pytest.param({"SIM_SCREEN_SEED": "1"}, id="seed-1"),
        pytest.param({"SIM_SCREEN_SEED": "7"}, id="seed-7"),
        pytest.param({"SIM_SCREEN_SEED": "42"}, id="seed-42"),
        pytest.param({"SIM_TRANSITION_MS": "1500", "SIM_SAVE_MS": "1500"}, id="slow-1500ms"),
    ],
)
async def test_post_wizard_handles_screens_in_any_order(
    tmp_path: Path, knobs: dict[str, str]
) -> None:
    with sim(tmp_path, **knobs) as url:
        async with BrowserSession(tmp_path / "evidence", record_video=False) as session:
            admin, post = await setup(session, url)
        state = sim_state(url)
    assert admin.ok and post.ok
    assert post.handled == [SIM_TO_PROFILE[s] for s in state["screens"]]
    assert state["screens_pending"] == []
    if "SIM_TRANSITION_MS" in knobs:
        # Leaving is slow in this scenario; the engine waited for it instead of failing.
        assert min(r.seconds_to_leave for r in post.screens) >= 1.4
        assert admin.screens[-1].seconds_to_leave >= 1.4


async def test_services_ui_enables_nfs_once(tmp_path: Path) -> None:
    services = load_stage_profile("fast", "services-ui", search=FAST)
    with sim(tmp_path, SIM_SCREENS="") as url:
        async with BrowserSession(tmp_path / "evidence") as session:
            _, post = await setup(session, url)
            assert post.handled == []  # no post-wizard screens in this scenario
            assert not nfs_enabled(url, session.storage_state)
            first = await run_stage(session, services, VALUES, url)
            assert nfs_enabled(url, session.storage_state)
            again = await run_stage(session, services, VALUES, url)
    assert first.handled == ["open-control-panel", "file-services", "nfs-tab", "enable-nfs"]
    assert_evidence(first)
    # Already on: the second run does not touch the checkbox.
    assert [(r.screen, r.skipped) for r in again.screens][-1] == ("enable-nfs", True)
    assert again.ok


async def test_unknown_dialog_fails_with_a_suggestion(tmp_path: Path) -> None:
    profile = load_stage_profile("fast", "post-wizard", search=FAST)
    # A non-modal toast on the desktop as well: it neither hides the modal nor takes its place
    # in the diagnosis.
    knobs = {"SIM_EXTRA_DIALOG": "Something new", "SIM_TOAST": "DSM 7.2.2-72806 Update 3 is ready"}
    with sim(tmp_path, SIM_SCREENS="update-options", **knobs) as url:
        async with BrowserSession(tmp_path / "evidence") as session:
            await run_stage(session, load_stage_profile("fast", "admin", search=FAST), VALUES, url)
            started = time.monotonic()
            with pytest.raises(UnknownScreenError) as info:
                await run_stage(session, profile, VALUES, url)
            elapsed = time.monotonic() - started
    err = info.value
    message = str(err)
    # Update options is handled; then the unknown modal (the toast beside it changes nothing)
    # fails the stage after timeouts.modal, before timeouts.screen.
    assert profile.timeouts.modal == 3
    assert profile.timeouts.modal <= elapsed < profile.timeouts.screen, elapsed
    assert "blocked the wizard, unchanged for 3 s (timeouts.modal)" in message
    assert err.report is not None and err.report.handled == ["update-options"]
    assert err.screenshot is not None and err.screenshot.stat().st_size > 0
    assert str(err.screenshot) in message
    assert "Something new" in message  # the visible text
    assert "sim-extra-dialog" in message  # the DOM excerpt of the topmost dialog
    assert "Topmost dialog (div[syno-id='sim-extra-dialog'])" in message
    assert "click: button[syno-id='sim-extra-dialog-fbar-ok']" in err.suggestion_yaml
    assert "selector: div.dialog-content\n    text: Something new" in err.suggestion_yaml
    assert err.suggestion_yaml in message
    assert {p.name for p in err.files} == {
        "post-wizard-unknown.yaml",
        "post-wizard-unknown.html",
        "post-wizard-unknown.txt",
    }
    assert all(p.is_file() and p.stat().st_size > 0 for p in err.files)
    assert "Something new" in (tmp_path / "evidence" / "post-wizard-unknown.txt").read_text()
    # Evidence of the failed stage is still complete, a clip of the unknown screen with it:
    # from when update-options left to the failure, timeouts.modal (3 s) and more.
    assert_evidence(err.report)
    assert_clips(err.report)
    failed = err.report.failed_screen
    assert failed is not None and failed.failed and failed.screen == "unknown"
    assert failed.clip is not None and failed.clip.name == "post-wizard-unknown.webm"
    assert failed.video_end is not None and failed.video_start is not None
    assert failed.video_end - failed.video_start >= profile.timeouts.modal


async def test_weak_password_fails_fast_with_the_tooltip_text(tmp_path: Path) -> None:
    weak = {**VALUES, "admin_password": "weakpass"}
    profile = load_stage_profile("fast", "admin", search=FAST)
    with sim(tmp_path) as url:
        async with BrowserSession(tmp_path / "evidence") as session:
            started = time.monotonic()
            with pytest.raises(ScreenError) as info:
                await run_stage(session, profile, weak, url)
            elapsed = time.monotonic() - started
        state = sim_state(url)
    message = str(info.value)
    assert info.value.screen == "admin-account"
    # the clip of the failed screen runs from when it showed to the error, named as the
    # screenshot taken at the failure
    report = info.value.report
    assert report is not None and report.handled == ["welcome"]
    assert_clips(report)
    failed = report.failed_screen
    assert failed is not None and failed.screen == "admin-account" and failed.clip is not None
    assert failed.clip.name == "admin-03-admin-account-failed.webm"
    assert "The password must include mixed case letters." in message
    assert "weakpass" not in message  # the secret itself is masked
    assert elapsed < profile.timeouts.screen  # failed at once, not after the timeout
    assert info.value.screenshot is not None and info.value.screenshot.is_file()
    assert state["configured"] is False


async def test_storage_state_carries_the_session_and_login_restores_it(tmp_path: Path) -> None:
    state_file = tmp_path / "state" / "storage.json"
    with sim(tmp_path, SIM_SCREENS="") as url:
        async with BrowserSession(tmp_path / "one", storage_state=state_file) as session:
            await run_stage(session, load_stage_profile("fast", "admin", search=FAST), VALUES, url)
        assert state_file.is_file()
        desktop = "div[elementtiming='desktop-item-title']"
        # A new browser with the saved state: straight to the desktop, no login page.
        async with (
            BrowserSession(tmp_path / "two", storage_state=state_file) as session,
            session.stage("check", url) as page,
        ):
            await page.locator(desktop).first.wait_for(state="visible", timeout=10_000)
            assert await page.locator("input[name=username]").count() == 0
        # Without it: DSM's two-step login page; with credentials the session logs through it.
        async with BrowserSession(tmp_path / "three") as session:
            async with session.stage("no-login", url) as page:
                await page.locator("input[name=username]").wait_for(timeout=10_000)
            sessions = sim_state(url)["sessions"]
            async with session.stage("relogin", url, credentials=CREDENTIALS) as page:
                await page.locator(desktop).first.wait_for(state="visible", timeout=10_000)
            assert sim_state(url)["sessions"] == sessions + 1
            async with session.stage("again", url, credentials=CREDENTIALS) as page:
                await page.locator(desktop).first.wait_for(state="visible", timeout=10_000)
            assert sim_state(url)["sessions"] == sessions + 1  # the saved state sufficed
        with zipfile.ZipFile(tmp_path / "three" / "relogin.trace.zip") as archive:
            assert all(PASSWORD.encode() not in archive.read(n) for n in archive.namelist())
        # A wrong password is reported, not retried forever.
        async with BrowserSession(tmp_path / "four") as session:
            with pytest.raises(WizardError, match=r"login as 'ciadmin' failed.*invalid"):
                async with session.stage(
                    "wrong", url, credentials=Credentials("ciadmin", "Wrong-Pass1")
                ):
                    pass


async def test_boot_waits_for_the_welcome_button(tmp_path: Path) -> None:
    profile = load_stage_profile("fast", "boot", search=FAST)
    with sim(tmp_path, SIM_INSTALL_DELAY="4") as url:
        started = time.monotonic()  # the install delay runs from just before this
        async with BrowserSession(tmp_path / "evidence", record_video=False) as session:
            report = await run_stage(session, profile, {}, url)
        waited = time.monotonic() - started
    assert report.ok and report.handled == []
    # It polled through the "Installing DSM" page until the button showed, not before.
    assert 3.5 <= waited < profile.timeouts.stage
    assert report.seconds > 1


def page_loads(tmp_path: Path) -> int:
    """How often the browser loaded the page itself (``GET /``) from the simulator."""
    return len(re.findall(r"^GET / \d+", (tmp_path / "sim.log").read_text(), re.MULTILINE))


async def test_boot_loads_the_welcome_page_once_and_waits_on_it(tmp_path: Path) -> None:
    # The fast profile allows a reload every second; a page that is still on its way to the
    # welcome button (here the simulator's install page, 7 s) is not a reason for one.
    profile = load_stage_profile("fast", "boot", search=FAST)
    assert profile.timeouts.reload == 1
    with sim(tmp_path, SIM_INSTALL_DELAY="7") as url:
        async with BrowserSession(tmp_path / "evidence", record_video=False) as session:
            report = await run_stage(session, profile, {}, url)
    # The stage waited several reload periods on the page...
    assert report.ok and report.seconds >= 3
    # ...and loaded it once.
    assert page_loads(tmp_path) == 1


async def test_boot_reloads_a_page_that_did_not_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing answers at first (QEMU boots behind NAT): the browser shows its error page, and
    # the stage reloads until DSM's welcome page comes.
    caplog.set_level(logging.INFO, logger="vdsmlib.wizard.engine")
    profile = load_stage_profile("fast", "boot", search=FAST)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"

    async def reloaded_twice(budget: float) -> None:
        reloads = [r for r in caplog.records if "reloading: the page did not load" in r.message]
        if len(reloads) < 2:
            raise NotReady(f"{len(reloads)} reloads of the error page")

    async with BrowserSession(tmp_path / "evidence", record_video=False) as session:
        stage = asyncio.create_task(run_stage(session, profile, {}, url))
        # It reloads the browser's error page again and again while nothing answers...
        await wait_for(
            reloaded_twice,
            what="two reloads of the error page",
            timeout=30,
            interval=0.1,
            alive=lambda: "the stage ended" if stage.done() else None,
        )
        assert not stage.done()
        with sim_at(tmp_path, port, {}):
            report = await asyncio.wait_for(stage, profile.timeouts.stage)
    assert report.ok
    assert page_loads(tmp_path) >= 1


async def test_post_wizard_is_done_under_a_toast(tmp_path: Path) -> None:
    # A non-modal notification stays on the desktop; it blocks neither the done condition nor
    # the desktop title, which DSM renders with whitespace around it.
    with sim(tmp_path, SIM_SCREENS="update-options,notification-setup", SIM_TOAST="Hi") as url:
        async with BrowserSession(tmp_path / "evidence", record_video=False) as session:
            admin, post = await setup(session, url)
            async with session.stage("check", url) as page:
                toast = page.locator("[data-sim-toast]").filter(visible=True)
                await toast.wait_for(timeout=10_000)
                title = page.locator("div[elementtiming='desktop-item-title']").first
                assert (await title.text_content() or "").startswith("\n")
    assert admin.ok and post.ok
    assert post.handled == ["update-options", "notification-setup"]


async def detect_soon(wizard: Wizard) -> Screen:
    """Poll detect() briefly: the next screen renders after the previous one's request."""

    async def detected(budget: float) -> Screen:
        screen = await wizard.detect()
        if screen is None:
            raise NotReady("no known screen shows")
        return screen

    return await wait_for(detected, what="a known screen", timeout=10, interval=0.2)


async def test_single_step_api_as_a_notebook_uses_it(tmp_path: Path) -> None:
    profile = load_stage_profile("fast", "post-wizard", search=FAST)
    evidence = tmp_path / "evidence"
    with sim(tmp_path, SIM_SCREENS="synology-account,notification-setup") as url:
        session = await BrowserSession(evidence).start()
        try:
            await run_stage(session, load_stage_profile("fast", "admin", search=FAST), VALUES, url)
            page = await session.open_stage("explore", url)
            wizard = Wizard(page, profile, VALUES, evidence)
            screen = await detect_soon(wizard)
            assert screen.id == "synology-account"
            skip = await wizard.try_locator("button[syno-id='welcome-app-wizard-fbar-back']")
            assert (skip.count, skip.visible, skip.text) == (1, 1, "Skip")
            nothing = await wizard.try_locator("button.does-not-exist")
            assert (nothing.count, nothing.visible, nothing.text) == (0, 0, "")
            record = await wizard.perform("synology-account")
            assert record.screenshot is not None and record.screenshot.is_file()
            screen = await detect_soon(wizard)
            assert screen.id == "notification-setup"
            await wizard.perform(screen.id)
            shot = await wizard.screenshot("desktop")
            assert shot.name == "post-wizard-03-desktop.png" and shot.stat().st_size > 0
            artifacts = await session.close_stage("explore")
            assert artifacts.trace is not None and artifacts.trace.stat().st_size > 0
            assert await session.close_stage("explore") == artifacts  # closing twice is fine
        finally:
            await session.close()
            await session.close()  # idempotent
        assert sim_state(url)["screens_pending"] == []
