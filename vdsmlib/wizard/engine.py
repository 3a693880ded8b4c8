"""The wizard engine: drive one stage of DSM's web UI from a stage profile.

It polls for whichever known screen is visible, acts on it, waits for it to leave and records
a screenshot per screen. It never sleeps for a fixed time: every wait is a poll of a condition.

Example (in a notebook cell, with a page from :class:`vdsmlib.wizard.BrowserSession`)::

    profile = load_stage_profile("dsm-7.2.2", "post-wizard")
    wizard = Wizard(page, profile, values, evidence_dir)
    report = await wizard.run()            # or, step by step:
    screen = await wizard.detect()         # which known screen shows now?
    await wizard.perform(screen.id)
    await wizard.try_locator("button.v-btn-main")
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from vdsmlib.readiness import NotReady, ReadinessTimeout, wait_for
from vdsmlib.wizard.errors import (
    RequiredScreenMissing,
    ScreenError,
    UnknownScreenError,
    WizardError,
)
from vdsmlib.wizard.profile import (
    Action,
    Check,
    Choose,
    Click,
    ClosePanel,
    Condition,
    Fill,
    Press,
    Screen,
    StageProfile,
    Target,
)
from vdsmlib.wizard.report import LocatorReport, ScreenRecord, StageReport
from vdsmlib.wizard.secrets import MASK, is_secret_name, mask_text, secret_values
from vdsmlib.wizard.unknown import PageSnapshot, capture_js, suggest_entry

__all__ = ["Wizard"]

log = logging.getLogger(__name__)

# A screen that comes back this often is not being dismissed by its actions.
_MAX_REPEATS = 8
_TEXT_EXCERPT = 1500
_HTML_EXCERPT = 4000
# The HTTP status of the document on screen (0 when the browser does not know it).
_DOCUMENT_STATUS_JS = (
    "() => { const n = performance.getEntriesByType('navigation')[0];"
    " return n && n.responseStatus ? n.responseStatus : 0; }"
)
# What changes on screen: a blocking modal that stays the same this long is reported at once.
_PAGE_TEXT_JS = "() => document.body ? document.body.innerText : ''"


class _UnknownModal(Exception):
    """Raised inside a wait: a modal no profile entry knows has blocked the wizard."""


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ...(trimmed)"


def _text_pattern(text: str, exact: bool) -> str | re.Pattern[str]:
    """What a target's text matches: DSM's templates wrap texts in newlines and indentation
    (and may break them across lines), so any run of whitespace matches any other."""
    if exact:
        words = [re.escape(word) for word in text.split()]
        return re.compile(r"^\s*" + r"\s+".join(words) + r"\s*$")
    return text


class Wizard:
    """Run one stage profile against a page.

    ``values``: the named values fill actions use (``admin_user``, ``admin_password``, ...);
    values whose names look secret are never logged or written. ``evidence``: directory for
    screenshots and unknown-screen reports. ``base_url``: where a reload goes (``timeouts.reload``,
    ``reload_when``).
    """

    def __init__(
        self,
        page: Page,
        stage_profile: StageProfile,
        values: Mapping[str, str],
        evidence: Path | str,
        *,
        base_url: str | None = None,
    ) -> None:
        missing = sorted(stage_profile.value_names() - set(values))
        if missing:
            raise WizardError(
                f"stage {stage_profile.stage} (profile {stage_profile.profile}) needs values "
                f"{', '.join(missing)}; pass them in values (from the build params)."
            )
        self.page = page
        self.profile = stage_profile
        self.values = dict(values)
        self.evidence = Path(evidence)
        self.evidence.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url
        self._secrets = secret_values(self.values)
        self._shots = 0
        self.report = StageReport(stage=stage_profile.stage, profile=stage_profile.profile)
        # the screen being handled, for report.failed_screen when it fails
        self._current: ScreenRecord | None = None

    # ----------------------------------------------------------------- public, step by step

    async def detect(self) -> Screen | None:
        """The first known screen (in profile order) that is visible now, or None."""
        return await self._detect(self.profile.screens)

    async def perform(self, screen_id: str) -> ScreenRecord:
        """Handle one screen: screenshot, act (unless ``skip_if`` holds), wait until it left."""
        return await self._handle(self.profile.screen(screen_id), time.monotonic())

    async def screenshot(self, name: str) -> Path:
        """Save ``<evidence>/<stage>-<NN>-<name>.png`` and return its path."""
        self._shots += 1
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "shot"
        path = self.evidence / f"{self.profile.stage}-{self._shots:02d}-{safe}.png"
        try:
            await self.page.screenshot(path=str(path))
        except PlaywrightError as err:
            raise WizardError(f"screenshot {path} failed: {err}") from err
        self.report.screenshots.append(path)
        return path

    async def try_locator(self, selector: str) -> LocatorReport:
        """How many elements ``selector`` matches now, how many are visible, and their texts."""
        locator = self.page.locator(selector)
        try:
            count = await locator.count()
            visible = await locator.filter(visible=True).count()
            texts = await locator.filter(visible=True).all_inner_texts()
            if not texts:
                texts = await locator.all_inner_texts()
        except PlaywrightError as err:
            raise WizardError(f"selector {selector!r} failed: {err}") from err
        return LocatorReport(
            selector=selector,
            count=count,
            visible=visible,
            texts=tuple(self._mask(t.strip()) for t in texts[:20]),
        )

    async def step(self) -> ScreenRecord | None:
        """Wait for the next known screen as :meth:`run` does, and handle it.

        Returns None when the stage's done condition holds; raises :class:`UnknownScreenError`
        (with its diagnosis) when nothing known shows within ``timeouts.screen`` or an unknown
        modal blocks for ``timeouts.modal`` seconds.
        """
        start = time.monotonic()
        timeout = self.profile.timeouts.screen
        try:
            screen = await self._next_step(0, start, timeout)
        except _UnknownModal as err:
            raise await self._unknown(start, str(err)) from None
        except ReadinessTimeout as err:
            why = f"nothing known showed for timeouts.screen={timeout:g} s ({err.last_error})"
            raise await self._unknown(start, why) from None
        if screen is None:
            return None
        return await self._handle(screen, start)

    # ----------------------------------------------------------------- public, whole stage

    async def run(self) -> StageReport:
        """Handle screens until the stage is done; returns the report (raises WizardError).

        Each step waits (on :func:`vdsmlib.readiness.wait_for`) for a known screen or the done
        condition, for at most ``timeouts.screen`` seconds and within ``timeouts.stage``.
        """
        profile, timeouts = self.profile, self.profile.timeouts
        start = time.monotonic()
        deadline = start + timeouts.stage
        cursor = 0  # order: sequence: index of the next expected step
        repeats: dict[str, int] = {}
        self._current = None
        log.info("stage %s: profile %s", profile.stage, profile.profile)
        last_progress = start
        try:
            while True:
                last_progress = time.monotonic()
                left = deadline - last_progress
                if left <= 0:
                    raise await self._unknown(
                        start, f"the stage took longer than timeouts.stage={timeouts.stage:g} s"
                    )
                try:
                    screen = await self._next_step(
                        cursor, last_progress, min(timeouts.screen, left)
                    )
                except _UnknownModal as err:
                    raise await self._unknown(start, str(err)) from None
                except ReadinessTimeout as err:
                    why = (
                        f"the stage took longer than timeouts.stage={timeouts.stage:g} s"
                        if time.monotonic() >= deadline
                        else f"nothing known showed for timeouts.screen={timeouts.screen:g} s "
                        f"({err.last_error})"
                    )
                    raise await self._unknown(start, why) from None
                if screen is None:
                    break
                if profile.order == "sequence":
                    cursor = self._advance(cursor, screen, start)
                repeats[screen.id] = repeats.get(screen.id, 0) + 1
                if repeats[screen.id] > _MAX_REPEATS:
                    raise ScreenError(
                        f"stage {profile.stage}: screen {screen.id} showed "
                        f"{_MAX_REPEATS} times: its actions do not dismiss it. Check the "
                        f"actions in {profile.files[0] if profile.files else 'the profile'}.",
                        screen=screen.id,
                        report=self.report,
                    )
                await self._handle(screen, start)
        except WizardError as err:
            self.report.seconds = time.monotonic() - start
            self.report.error = str(err)
            self.report.failed_screen = self._failed_screen(err, start, last_progress)
            err.report = self.report
            raise
        self._check_required()
        self.report.ok = True
        self.report.seconds = time.monotonic() - start
        handled = ", ".join(self.report.handled) or "no screens"
        log.info("stage %s done in %.1f s: %s", profile.stage, self.report.seconds, handled)
        return self.report

    def _failed_screen(self, err: WizardError, start: float, since: float) -> ScreenRecord:
        """The screen ``err`` happened on: the one being handled, or an unknown one that
        showed after the last progress (``since``); it ends now."""
        record, self._current = self._current, None
        if record is None:
            screen = getattr(err, "screen", None) or "unknown"
            record = ScreenRecord(screen=screen, seen_at=since - start, started=since)
        record.ended = time.monotonic()
        record.failed = True
        shot = getattr(err, "screenshot", None)
        if isinstance(shot, Path):
            record.screenshot = shot  # the screen as it failed
        return record

    async def _next_step(self, cursor: int, last_progress: float, timeout: float) -> Screen | None:
        """Wait for the next known screen (returned) or the done condition (None)."""
        profile = self.profile
        sequence = profile.order == "sequence"
        candidates = profile.screens[cursor:] if sequence else profile.screens
        waiting = (
            f"waiting for step {profile.screens[cursor].id}"
            if sequence and cursor < len(profile.screens)
            else "waiting for a known screen or the done condition"
        )
        last_reload = [time.monotonic()]
        blocked: list[object] = [None, 0.0]  # what blocks, since when

        async def step(budget: float) -> Screen | None:
            screen = await self._detect(candidates)
            if screen is not None:
                return screen
            if await self._done(cursor, last_progress):
                return None
            await self._reload_if_broken(last_reload)
            await self._check_blocked(blocked)
            raise NotReady(waiting)

        return await wait_for(
            step,
            what=f"stage {profile.stage}: next screen",
            timeout=timeout,
            interval=profile.timeouts.poll,
        )

    async def _check_blocked(self, blocked: list[object]) -> None:
        """Raise :class:`_UnknownModal` once a modal that no screen matches stays unchanged.

        Modal means one of the profile's ``done.blocked_by`` selectors is visible (the mask or
        window of a dialog); unchanged means the same blockers and the same page text for
        ``timeouts.modal`` seconds. Only reached when no known screen matched.
        """
        done = self.profile.done
        if done is None or not done.blocked_by:
            return
        blockers = [s for s in done.blocked_by if await self._visible(Target(selector=s))]
        if not blockers:
            blocked[:] = [None, 0.0]
            return
        try:
            text = str(await self.page.evaluate(_PAGE_TEXT_JS))
        except PlaywrightError:
            blocked[:] = [None, 0.0]  # navigating: not a stable modal
            return
        key = (tuple(blockers), text)
        now = time.monotonic()
        if blocked[0] != key:
            blocked[:] = [key, now]
            return
        since = blocked[1]
        assert isinstance(since, float)
        window = self.profile.timeouts.modal
        if now - since >= window:
            raise _UnknownModal(
                f"a modal no screen of the profile matches ({', '.join(blockers)}) blocked "
                f"the wizard, unchanged for {window:g} s (timeouts.modal)"
            )

    # ----------------------------------------------------------------- matching

    def _locate(self, target: Target) -> Locator:
        locator = self.page.locator(target.selector)
        if target.text is not None:
            locator = locator.filter(has_text=_text_pattern(target.text, target.exact))
        if target.within:
            container = self.page.locator(target.within).filter(has=locator)
            locator = container.locator(target.selector)
            if target.text is not None:
                locator = locator.filter(has_text=_text_pattern(target.text, target.exact))
        return locator

    async def _visible(self, target: Target) -> bool:
        try:
            return await self._locate(target).filter(visible=True).count() > 0
        except PlaywrightError as err:
            # The page may be navigating; the next poll sees the new page.
            log.debug("visibility of %s: %s", target.describe(), err)
            return False

    async def _any_visible(self, selectors: list[str]) -> str | None:
        for selector in selectors:
            if await self._visible(Target(selector=selector)):
                return selector
        return None

    async def _holds(self, condition: Condition) -> bool:
        if condition.visible is not None:
            return await self._visible(condition.visible)
        if condition.hidden is not None:
            return not await self._visible(condition.hidden)
        assert condition.checked is not None
        try:
            locator = self.page.locator(condition.checked)
            return await locator.count() > 0 and await locator.first.is_checked()
        except PlaywrightError as err:
            log.debug("checked %s: %s", condition.checked, err)
            return False

    async def _detect(self, screens: list[Screen]) -> Screen | None:
        for screen in screens:
            if await self._visible(screen.identify):
                return screen
        return None

    async def _done(self, cursor: int, last_progress: float) -> bool:
        profile = self.profile
        if profile.order == "sequence":
            remaining = profile.screens[cursor:]
            if any(not profile.is_optional(s) for s in remaining):
                return False
            if profile.done is None:
                return not remaining
        assert profile.done is not None
        if time.monotonic() - last_progress < profile.timeouts.idle:
            return False
        if not await self._visible(profile.done.visible):
            return False
        blocker = await self._any_visible(profile.done.blocked_by)
        if blocker is not None:
            log.debug("done condition blocked by visible %s", blocker)
            return False
        return True

    def _advance(self, cursor: int, screen: Screen, start: float) -> int:
        """In a sequence, skip optional steps before ``screen``; a skipped required one fails."""
        index = self.profile.screens.index(screen)
        for skipped in self.profile.screens[cursor:index]:
            if not self.profile.is_optional(skipped):
                raise RequiredScreenMissing(
                    f"stage {self.profile.stage}: step {screen.id} showed before the required "
                    f"step {skipped.id}. Mark {skipped.id} optional in the profile if DSM may "
                    f"leave it out, or check why it did not show.",
                    report=self.report,
                )
            self.report.screens.append(
                ScreenRecord(screen=skipped.id, seen_at=time.monotonic() - start, skipped=True)
            )
        return index + 1

    def _check_required(self) -> None:
        seen = {record.screen for record in self.report.screens}
        missing = [
            s.id
            for s in self.profile.screens
            if not self.profile.is_optional(s) and s.id not in seen
        ]
        if missing:
            raise RequiredScreenMissing(
                f"stage {self.profile.stage}: done, but required screens never showed: "
                f"{', '.join(missing)}. Handled: {', '.join(self.report.handled) or 'none'}. "
                f"Mark them optional in the profile if DSM may leave them out.",
                report=self.report,
            )

    # ----------------------------------------------------------------- acting

    async def _handle(self, screen: Screen, start: float) -> ScreenRecord:
        seen = time.monotonic()
        record = ScreenRecord(screen=screen.id, seen_at=seen - start, started=seen)
        self._current = record
        record.screenshot = shot = await self.screenshot(screen.id)
        if screen.skip_if is not None and await self._holds(screen.skip_if):
            log.info("screen %s: skipped (%s)", screen.id, screen.skip_if.describe())
            record.skipped = True
            record.ended = time.monotonic()
            self._current = None
            self.report.screens.append(record)
            return record
        log.info("screen %s: %d actions", screen.id, len(screen.actions))
        acted = time.monotonic()
        timeout = screen.timeout or self.profile.timeouts.screen
        for action in screen.actions:
            try:
                await self._act(screen, action)
            except PlaywrightError as err:
                after = await self._failure_shot(screen.id)
                raise ScreenError(
                    f"stage {self.profile.stage}: screen {screen.id}: action "
                    f"{self._describe(action)} failed: {self._mask(str(err).splitlines()[0])}. "
                    f"Screenshots: {shot}, {after}. Check the selector with "
                    f"Wizard.try_locator() and fix the profile.",
                    screen=screen.id,
                    screenshot=after,
                    report=self.report,
                ) from err
        await self._wait_left(screen, shot, timeout)
        record.ended = time.monotonic()
        record.seconds_to_leave = record.ended - acted
        self._current = None
        self.report.screens.append(record)
        log.info("screen %s: left after %.1f s", screen.id, record.seconds_to_leave)
        return record

    async def _act(self, screen: Screen, action: Action) -> None:
        timeout_ms = (screen.timeout or self.profile.timeouts.screen) * 1000
        page = self.page
        log.debug("screen %s: %s", screen.id, self._describe(action))
        if isinstance(action, Click):
            target = Target(selector=action.click, text=action.text, exact=action.exact)
            await self._locate(target).filter(visible=True).first.click(timeout=timeout_ms)
        elif isinstance(action, Fill):
            field = page.locator(action.fill).filter(visible=True).first
            value = self.values[action.value]
            if action.keystrokes:
                await field.click(timeout=timeout_ms)
                await field.press("Control+a", timeout=timeout_ms)
                await field.press_sequentially(value, timeout=timeout_ms)
            else:
                await field.fill(value, timeout=timeout_ms)
        elif isinstance(action, Check):
            box = page.locator(action.check).first
            if not await box.is_checked(timeout=timeout_ms):
                via = page.locator(action.via).filter(visible=True).first if action.via else box
                await via.click(timeout=timeout_ms)
                await self._poll(
                    lambda: box.is_checked(timeout=timeout_ms),
                    timeout_ms / 1000,
                    f"{action.check} did not become checked after clicking {action.via or 'it'}",
                    screen,
                )
        elif isinstance(action, Choose):
            await page.locator(action.choose).filter(visible=True).first.click(timeout=timeout_ms)
        elif isinstance(action, Press):
            if action.on:
                await (
                    page.locator(action.on)
                    .filter(visible=True)
                    .first.press(action.press, timeout=timeout_ms)
                )
            else:
                await page.keyboard.press(action.press)
        elif isinstance(action, ClosePanel):
            container = self._container(screen.identify)
            await (
                container.locator(action.close_panel)
                .filter(visible=True)
                .first.click(timeout=timeout_ms)
            )

    def _container(self, identify: Target) -> Locator:
        """The panel/window a screen was identified by: its ``within`` or the element itself."""
        inner = self.page.locator(identify.selector)
        if identify.text is not None:
            inner = inner.filter(has_text=_text_pattern(identify.text, identify.exact))
        if identify.within:
            return self.page.locator(identify.within).filter(has=inner).filter(visible=True).first
        return inner.filter(visible=True).first

    async def _poll(
        self, probe: Callable[[], Awaitable[bool]], timeout: float, what: str, screen: Screen
    ) -> None:
        async def holds(budget: float) -> None:
            if not await probe():
                raise NotReady(what)

        try:
            await wait_for(
                holds,
                what=what,
                timeout=timeout,
                interval=self.profile.timeouts.poll,
                retryable=(PlaywrightError,),  # the page may be navigating
            )
        except ReadinessTimeout as err:
            after = await self._failure_shot(screen.id)
            raise ScreenError(
                f"stage {self.profile.stage}: screen {screen.id}: {what} within {timeout:g} s. "
                f"Screenshot: {after}.",
                screen=screen.id,
                screenshot=after,
                report=self.report,
            ) from err

    async def _wait_left(self, screen: Screen, shot: Path, timeout: float) -> None:
        condition = screen.leave_condition

        async def left(budget: float) -> None:
            error = await self._error_text(screen)
            if error:
                after = await self._failure_shot(screen.id)
                raise ScreenError(
                    f"stage {self.profile.stage}: screen {screen.id} shows an error: "
                    f"{error!r}. Screenshots: {shot}, {after}. Fix the value it complains "
                    f"about (DSM's password policy, a name already in use, ...) and rerun.",
                    screen=screen.id,
                    screenshot=after,
                    report=self.report,
                )
            if not await self._holds(condition):
                raise NotReady(f"waiting for {condition.describe()}")

        try:
            await wait_for(
                left,
                what=f"screen {screen.id} to leave",
                timeout=timeout,
                interval=self.profile.timeouts.poll,
            )
        except ReadinessTimeout as err:
            after = await self._failure_shot(screen.id)
            raise ScreenError(
                f"stage {self.profile.stage}: screen {screen.id} did not leave within "
                f"{timeout:g} s after its actions (waiting for {condition.describe()}). "
                f"Screenshots: {shot}, {after}. Check the actions and the 'left' condition "
                f"in the profile, or raise the screen's timeout.",
                screen=screen.id,
                screenshot=after,
                report=self.report,
            ) from err

    async def _error_text(self, screen: Screen) -> str | None:
        for selector in screen.errors:
            try:
                texts = await self.page.locator(selector).filter(visible=True).all_inner_texts()
            except PlaywrightError as err:
                log.debug("error selector %s: %s", selector, err)
                continue
            found = [t.strip() for t in texts if t.strip()]
            if found:
                return self._mask("; ".join(found))
        return None

    async def _failure_shot(self, screen_id: str) -> Path | None:
        try:
            return await self.screenshot(f"{screen_id}-failed")
        except WizardError as err:
            log.warning("no failure screenshot: %s", err)
            return None

    async def _broken_page(self) -> str | None:
        """Why the page needs a reload (it failed to load, answered an HTTP error, or shows
        one of the profile's ``reload_when`` pages), or None: a page still rendering is left
        alone, however long its first render takes."""
        url = self.page.url
        if url.startswith("chrome-error://") or url == "about:blank":
            return f"the page did not load ({url})"
        try:
            status = await self.page.evaluate(_DOCUMENT_STATUS_JS)
        except PlaywrightError as err:  # navigating: look again at the next poll
            log.debug("document status: %s", err)
            return None
        if isinstance(status, int) and status >= 500:
            return f"the page answered HTTP {status}"
        for target in self.profile.reload_when:
            if await self._visible(target):
                return f"it shows {target.describe()}"
        return None

    async def _reload_if_broken(self, last_reload: list[float]) -> None:
        """Reload when :meth:`_broken_page` says so, at most every ``timeouts.reload`` s."""
        gap = self.profile.timeouts.reload
        if gap is None or time.monotonic() - last_reload[0] < gap:
            return
        why = await self._broken_page()
        if why is None:
            return
        last_reload[0] = time.monotonic()
        log.info("stage %s: reloading: %s", self.profile.stage, why)
        try:
            if self.base_url:
                await self.page.goto(self.base_url, wait_until="domcontentloaded")
            else:
                await self.page.reload(wait_until="domcontentloaded")
        except PlaywrightError as err:
            # The server may not answer yet (the VM is booting): the next poll sees the
            # browser's error page and reloads again.
            log.info("reload: %s", str(err).splitlines()[0])

    # ----------------------------------------------------------------- unknown screens

    async def _unknown(self, start: float, why: str) -> UnknownScreenError:
        stage = self.profile.stage
        shot: Path | None = self.evidence / f"{stage}-unknown.png"
        try:
            await self.page.screenshot(path=str(shot))
            assert shot is not None
            self.report.screenshots.append(shot)
        except PlaywrightError as err:
            log.warning("no screenshot of the unknown screen: %s", err)
            shot = None
        try:
            snapshot = PageSnapshot.from_js(await self.page.evaluate(capture_js, 200_000))
            page_html = await self.page.content()
        except PlaywrightError as err:
            log.warning("could not read the unknown screen: %s", err)
            snapshot, page_html = PageSnapshot(), ""
        suggestion = self._mask(suggest_entry(snapshot, stage))
        text = self._mask(snapshot.text)
        dialog_html = self._mask(snapshot.dialog_html)
        files = [
            self.evidence / f"{stage}-unknown.yaml",
            self.evidence / f"{stage}-unknown.html",
            self.evidence / f"{stage}-unknown.txt",
        ]
        files[0].write_text(suggestion, encoding="utf-8")
        files[1].write_text(
            f"<!-- topmost dialog ({snapshot.dialog_selector}) -->\n{dialog_html}\n"
            f"<!-- whole page -->\n{self._mask(page_html)}\n",
            encoding="utf-8",
        )
        files[2].write_text(text + "\n", encoding="utf-8")
        excerpt = _trim(dialog_html, _HTML_EXCERPT)
        shown = _trim(text, _TEXT_EXCERPT)
        known = ", ".join(s.id for s in self.profile.screens) or "none"
        message = (
            f"stage {stage}: unknown screen after {time.monotonic() - start:.0f} s: {why}.\n"
            f"Profile {self.profile.profile} knows: {known}; handled so far: "
            f"{', '.join(self.report.handled) or 'none'}.\n"
            f"Screenshot: {shot}\n"
            f"Visible text: {shown}\n"
            f"Topmost dialog ({snapshot.dialog_selector or 'none found'}):\n{excerpt}\n"
            f"Suggested profile entry (saved as {files[0]}; page in {files[1]}):\n"
            f"{suggestion}"
            f"Next: add the entry to "
            f"{self.profile.files[0] if self.profile.files else 'the stage profile'}, check it "
            f"in notebooks/explore.ipynb (Wizard.detect/perform), then resume the build."
        )
        return UnknownScreenError(
            message, screenshot=shot, suggestion_yaml=suggestion, files=files, report=self.report
        )

    # ----------------------------------------------------------------- secrets

    def _mask(self, text: str) -> str:
        return mask_text(text, self._secrets)

    def _describe(self, action: Action) -> str:
        if isinstance(action, Fill):
            shown = MASK if is_secret_name(action.value) else repr(self.values[action.value])
            return f"fill {action.fill} <- {action.value} ({shown})"
        return " ".join(f"{k}={v!r}" for k, v in action.model_dump(exclude_none=True).items())
