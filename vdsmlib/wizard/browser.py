"""Debian Chromium through Playwright: one browser per build, one context per stage.

Each stage gets a fresh context that loads the storage state the previous stage saved (so the
DSM session survives stages and checkpoint restores), records a video and a Playwright trace,
and on exit saves the storage state, writes ``<evidence>/<stage>.trace.zip`` and
``<evidence>/<stage>.webm``. :func:`run_stage` then cuts one clip per screen from the video
(``<evidence>/clips/``, see :mod:`vdsmlib.wizard.clips`).

Example::

    async with BrowserSession(evidence_dir) as session:
        report = await run_stage(session, load_stage_profile("dsm-7.2.2", "admin"),
                                 values, "http://127.0.0.1:5000/")
        async with session.stage("explore", "http://127.0.0.1:5000/") as page:
            ...

In a notebook, where an ``async with`` cannot span cells::

    session = await BrowserSession(evidence_dir).start()
    page = await session.open_stage("explore", url, credentials=Credentials(user, password))
    ...                                    # Wizard(page, ...).detect() / perform() per cell
    await session.close_stage("explore")   # writes explore.trace.zip and explore.webm
    await session.close()
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import playwright
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from vdsmlib.readiness import NotReady, ReadinessTimeout, wait_for
from vdsmlib.wizard.clips import clip_screens
from vdsmlib.wizard.engine import Wizard
from vdsmlib.wizard.errors import BrowserError, WizardError
from vdsmlib.wizard.profile import StageProfile
from vdsmlib.wizard.report import StageReport
from vdsmlib.wizard.secrets import MASK, scrub_zip, secret_values, write_private

__all__ = [
    "CHROMIUM_ARGS",
    "BrowserSession",
    "Credentials",
    "LoginSelectors",
    "StageArtifacts",
    "ensure_playwright_ffmpeg",
    "login_if_needed",
    "run_stage",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Debian's Chromium keeps trying to reach Google; as root it
# needs --no-sandbox.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)


@dataclass(frozen=True)
class Credentials:
    """A DSM account for the login page. The password never shows in repr()."""

    user: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password={MASK!r})"


@dataclass(frozen=True)
class LoginSelectors:
    """DSM's two-step login page: the user name, Enter, then the password, Enter."""

    user: str = "input[name=username]"
    password: str = "input[type=password]"
    error: str = ".login-textfield-error, .v-tooltip-error, .error-msg, .login-error"
    # Any of these visible means the session is alive (desktop or setup wizard).
    signed_in: tuple[str, ...] = (
        "div[elementtiming='desktop-item-title']",
        "button.welcome-page-btn",
        "div.welcome-step-title",
    )


@dataclass(frozen=True)
class StageArtifacts:
    """Evidence files a stage's browser context left behind (None when not recorded).

    ``video_started``: ``time.monotonic()`` when the video started (its second 0).
    """

    video: Path | None
    trace: Path | None
    storage_state: Path | None
    video_started: float | None = None


@dataclass(frozen=True)
class _OpenStage:
    context: BrowserContext
    page: Page
    video_tmp: Path
    #: time.monotonic() right after new_page(): Playwright's first video frame comes within a
    #: frame (40 ms) of it (measured), and the video's timeline starts at that frame
    started: float


def _browsers_dir() -> Path:
    env = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if env == "0":
        return Path(playwright.__file__).parent / "driver" / "package" / ".local-browsers"
    if env:
        return Path(env)
    return Path.home() / ".cache" / "ms-playwright"


def ensure_playwright_ffmpeg() -> Path | None:
    """Link Playwright's expected ffmpeg to Debian's; None (one warning) when ffmpeg is missing.

    Playwright records video with its own ffmpeg build, which cannot be downloaded here. It
    looks for ``<browsers dir>/ffmpeg-<revision>/ffmpeg-linux``; the revision is the ``ffmpeg``
    entry of the installed package's ``browsers.json``.
    """
    system_ffmpeg = shutil.which("ffmpeg")
    if system_ffmpeg is None:
        log.warning("ffmpeg not found: no video will be recorded (apt-get install ffmpeg)")
        return None
    manifest = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    try:
        browsers = json.loads(manifest.read_text(encoding="utf-8"))["browsers"]
        revision = next(b["revision"] for b in browsers if b.get("name") == "ffmpeg")
    except (OSError, ValueError, KeyError, StopIteration) as err:
        log.warning("no ffmpeg revision in %s (%s): no video will be recorded", manifest, err)
        return None
    link = _browsers_dir() / f"ffmpeg-{revision}" / "ffmpeg-linux"
    if link.exists():
        return link
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():  # dangling: ffmpeg moved
            link.unlink()
        link.symlink_to(system_ffmpeg)
    except OSError as err:
        log.warning(
            "cannot link %s to %s (%s): no video will be recorded", link, system_ffmpeg, err
        )
        return None
    log.info("linked Playwright's ffmpeg %s -> %s", link, system_ffmpeg)
    return link


async def login_if_needed(
    page: Page,
    credentials: Credentials,
    *,
    selectors: LoginSelectors | None = None,
    timeout: float = 30.0,
    poll: float = 0.25,
) -> bool:
    """Log in through DSM's two-step login page if it shows; True if it logged in.

    Polls until either the login form or a signed-in marker is visible. Gives up quietly after
    ``timeout`` (the stage itself then decides what it sees); a login error raises WizardError.
    """
    sel = selectors or LoginSelectors()
    user = page.locator(sel.user).filter(visible=True)
    password = page.locator(sel.password).filter(visible=True)

    async def visible(selector: str) -> bool:
        try:
            return await page.locator(selector).filter(visible=True).count() > 0
        except PlaywrightError:
            return False  # navigating

    async def login_error() -> None:
        if await visible(sel.error):
            text = await page.locator(sel.error).filter(visible=True).first.inner_text()
            raise WizardError(
                f"login as {credentials.user!r} failed at {page.url}: {text.strip()!r}. "
                f"Check the admin credentials in the params."
            )

    async def until(probe: Callable[[float], Awaitable[T]], what: str) -> T:
        return await wait_for(probe, what=what, timeout=timeout, interval=poll)

    async def form_or_signed_in(budget: float) -> bool:
        if await visible(sel.user):
            return True
        for marker in sel.signed_in:
            if await visible(marker):
                return False
        raise NotReady("neither the login form nor a signed-in marker shows")

    try:
        if not await until(form_or_signed_in, f"login form at {page.url}"):
            return False
    except ReadinessTimeout:
        log.info("no login form and no signed-in marker after %g s at %s", timeout, page.url)
        return False

    async def password_field(budget: float) -> None:
        await login_error()
        if not await visible(sel.password):
            raise NotReady("the password field did not show")

    async def form_gone(budget: float) -> None:
        await login_error()
        if await visible(sel.password) or await visible(sel.user):
            raise NotReady("the login form did not go away")

    log.info("logging in as %s (two-step login page)", credentials.user)
    try:
        await user.first.fill(credentials.user)
        await user.first.press("Enter")
        await until(password_field, "the password field")
        await password.first.fill(credentials.password)
        await password.first.press("Enter")
        await until(form_gone, "the login form to go away")
    except PlaywrightError as err:
        raise WizardError(
            f"login as {credentials.user!r} at {page.url} failed: {str(err).splitlines()[0]}"
        ) from err
    except ReadinessTimeout as err:
        raise WizardError(
            f"login as {credentials.user!r} at {page.url}: {err.last_error} within {timeout:g} s"
        ) from err
    return True


class BrowserSession:
    """Debian Chromium launched through Playwright (async), with per-stage contexts.

    ``storage_state``: the JSON file stages load and save (default
    ``<evidence>/storage-state.json``); point it at a file kept with a checkpoint to carry the
    DSM session across a restore. ``secrets`` are masked in traces (Playwright writes fill()
    arguments and input values into them). ``VDSM_CHROMIUM`` overrides the executable.
    """

    def __init__(
        self,
        evidence: Path | str,
        *,
        storage_state: Path | str | None = None,
        executable: str | None = None,
        headless: bool = True,
        viewport: tuple[int, int] = (1280, 800),
        record_video: bool = True,
        trace: bool = True,
        secrets: Iterable[str] = (),
        login_selectors: LoginSelectors | None = None,
    ) -> None:
        self.evidence = Path(evidence)
        self.storage_state = (
            Path(storage_state) if storage_state else self.evidence / "storage-state.json"
        )
        self.executable = executable or os.environ.get("VDSM_CHROMIUM") or DEFAULT_CHROMIUM
        self.headless = headless
        self.viewport = viewport
        self.record_video = record_video
        self.trace = trace
        self.login_selectors = login_selectors or LoginSelectors()
        self.artifacts: dict[str, StageArtifacts] = {}
        self._secrets: set[str] = {s for s in secrets if s}
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._contexts: set[BrowserContext] = set()
        self._open: dict[str, _OpenStage] = {}
        self._video_ok = False

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these values in the traces written from now on."""
        self._secrets.update(s for s in secrets if s)

    @property
    def browser(self) -> Browser:
        """The running browser (BrowserError before start())."""
        if self._browser is None:
            raise BrowserError("the browser session is not started: use `async with` or start()")
        return self._browser

    async def start(self) -> BrowserSession:
        """Launch Chromium (idempotent)."""
        if self._browser is not None:
            return self
        if not Path(self.executable).exists():
            raise BrowserError(
                f"Chromium not found at {self.executable}: apt-get install chromium "
                f"(or set VDSM_CHROMIUM to its path)"
            )
        self.evidence.mkdir(parents=True, exist_ok=True)
        self._video_ok = self.record_video and ensure_playwright_ffmpeg() is not None
        try:
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable, args=list(CHROMIUM_ARGS), headless=self.headless
            )
        except PlaywrightError as err:
            await self.close()
            raise BrowserError(
                f"cannot launch {self.executable}: {str(err).splitlines()[0]}. "
                f"Check that `{self.executable} --headless --no-sandbox --version` works."
            ) from err
        log.info("launched %s (%s)", self.executable, self._browser.version)
        return self

    async def close(self) -> None:
        """Close every open stage and context, the browser and Playwright (idempotent)."""
        for name in list(self._open):
            try:
                await self.close_stage(name)
            except (PlaywrightError, OSError) as err:
                log.warning("closing stage %s: %s", name, err)
        for context in list(self._contexts):
            try:
                await context.close()
            except PlaywrightError as err:
                log.debug("closing a context: %s", err)
        self._contexts.clear()
        browser, self._browser = self._browser, None
        pw, self._playwright = self._playwright, None
        if browser is not None:
            try:
                await browser.close()
            except PlaywrightError as err:
                log.debug("closing the browser: %s", err)
        if pw is not None:
            await pw.stop()

    async def __aenter__(self) -> BrowserSession:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def stage(
        self,
        name: str,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        login_timeout: float = 30.0,
    ) -> AsyncIterator[Page]:
        """A page in a new context for stage ``name``, opened at ``base_url``.

        Loads the saved storage state; with ``credentials``, logs in if DSM shows its login
        page. On exit (also on error) saves the storage state, the trace and the video; their
        paths are in ``self.artifacts[name]``.
        """
        page = await self.open_stage(
            name, base_url, credentials=credentials, login_timeout=login_timeout
        )
        try:
            yield page
        finally:
            await self.close_stage(name)

    async def open_stage(
        self,
        name: str,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        login_timeout: float = 30.0,
    ) -> Page:
        """Like :meth:`stage` for notebook cells: open here, :meth:`close_stage` later."""
        if name in self._open:
            raise BrowserError(f"stage {name} is already open: close_stage({name!r}) first")
        browser = self.browser
        video_tmp = self.evidence / f".video-{name}"
        options: dict[str, object] = {
            "viewport": {"width": self.viewport[0], "height": self.viewport[1]},
            "ignore_https_errors": True,
        }
        if self.storage_state.is_file():
            options["storage_state"] = str(self.storage_state)
            log.info("stage %s: loading storage state %s", name, self.storage_state)
        if self._video_ok:
            video_tmp.mkdir(parents=True, exist_ok=True)
            options["record_video_dir"] = str(video_tmp)
            options["record_video_size"] = {"width": self.viewport[0], "height": self.viewport[1]}
        try:
            context = await browser.new_context(**options)  # type: ignore[arg-type]
            self._contexts.add(context)
            if self.trace:
                await context.tracing.start(screenshots=True, snapshots=True, title=name)
            page = await context.new_page()
            started = time.monotonic()
        except PlaywrightError as err:
            raise BrowserError(f"stage {name}: cannot open a browser context: {err}") from err
        self._open[name] = _OpenStage(context, page, video_tmp, started)
        try:
            try:
                await page.goto(base_url, wait_until="domcontentloaded")
            except PlaywrightError as err:
                # DSM may not answer yet (booting); stages that expect that reload themselves.
                log.warning("stage %s: opening %s: %s", name, base_url, str(err).splitlines()[0])
            if credentials is not None:
                self.add_secrets([credentials.password])
                await login_if_needed(
                    page, credentials, selectors=self.login_selectors, timeout=login_timeout
                )
        except BaseException:
            await self.close_stage(name)
            raise
        return page

    async def close_stage(self, name: str) -> StageArtifacts:
        """Save storage state, trace and video of an open stage and close its context."""
        opened = self._open.pop(name, None)
        if opened is None:
            if name in self.artifacts:
                return self.artifacts[name]  # closing twice is fine
            raise BrowserError(f"stage {name} is not open")
        trace_path = self.evidence / f"{name}.trace.zip"
        artifacts = await self._finish(
            name, opened.context, opened.page, trace_path, opened.video_tmp
        )
        if artifacts.video is not None:
            artifacts = dataclasses.replace(artifacts, video_started=opened.started)
        self.artifacts[name] = artifacts
        return artifacts

    async def _finish(
        self, name: str, context: BrowserContext, page: Page, trace_path: Path, video_tmp: Path
    ) -> StageArtifacts:
        state: Path | None = None
        trace: Path | None = None
        video: Path | None = None
        try:
            self.storage_state.parent.mkdir(parents=True, exist_ok=True)
            # it holds the session cookie: 0600 from the first byte (Playwright's own write
            # would make it as the umask says); the run's end drops the cookies
            saved = await context.storage_state()
            state = write_private(self.storage_state, json.dumps(saved, indent=2))
        except (PlaywrightError, OSError) as err:
            log.warning("stage %s: storage state not saved: %s", name, err)
        if self.trace:
            try:
                await context.tracing.stop(path=str(trace_path))
                scrub_zip(trace_path, self._secrets)
                trace = trace_path
            except PlaywrightError as err:
                log.warning("stage %s: trace not saved: %s", name, err)
        recorder = page.video
        try:
            await context.close()
        except PlaywrightError as err:
            log.warning("stage %s: closing the context: %s", name, err)
        self._contexts.discard(context)
        if recorder is not None:
            try:
                # Playwright names the file randomly and finishes it when the context closes.
                raw = Path(await recorder.path())
                video = self.evidence / f"{name}.webm"
                raw.replace(video)
            except (PlaywrightError, OSError) as err:
                log.warning("stage %s: video not saved: %s", name, err)
                video = None
        shutil.rmtree(video_tmp, ignore_errors=True)
        return StageArtifacts(video=video, trace=trace, storage_state=state)


async def run_stage(
    session: BrowserSession,
    profile: StageProfile,
    values: Mapping[str, str],
    base_url: str,
    *,
    credentials: Credentials | None = None,
) -> StageReport:
    """Run a whole stage in its own context; the report (also on error) names video and trace.

    Once the context is closed and its video saved, each handled screen (and the one the stage
    failed on) gets its clip of the video: ``record.clip``, ``report.failed_screen.clip``.
    """
    session.add_secrets(secret_values(values))
    report: StageReport | None = None
    try:
        async with session.stage(profile.stage, base_url, credentials=credentials) as page:
            wizard = Wizard(page, profile, values, session.evidence, base_url=base_url)
            report = await wizard.run()
    except WizardError as err:
        if err.report is not None:
            await _attach(err.report, session.artifacts.get(profile.stage))
        raise
    await _attach(report, session.artifacts.get(profile.stage))
    return report


async def _attach(report: StageReport, artifacts: StageArtifacts | None) -> None:
    if artifacts is None:
        return
    report.video = artifacts.video
    report.trace = artifacts.trace
    if artifacts.video is not None and artifacts.video_started is not None:
        await clip_screens(report, artifacts.video, artifacts.video_started)
