"""Errors raised by the wizard engine.

::

    VdsmError
     +-- WizardError                 any failure while driving DSM's web UI
          +-- ProfileError           a profile file is missing, malformed or fails validation
          +-- UnknownScreenError     neither a known screen nor the done condition showed in time
          +-- ScreenError            a known screen failed (action, error tooltip, did not leave)
          +-- RequiredScreenMissing  the stage finished without a screen marked required
          +-- BrowserError           Chromium, Playwright or ffmpeg could not be started or used
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vdsmlib.errors import VdsmError

if TYPE_CHECKING:
    from vdsmlib.wizard.report import StageReport

__all__ = [
    "BrowserError",
    "ProfileError",
    "RequiredScreenMissing",
    "ScreenError",
    "UnknownScreenError",
    "WizardError",
]


class WizardError(VdsmError):
    """A wizard stage failed. ``report`` holds what was handled before the failure, if known."""

    def __init__(self, message: str, *, report: StageReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class ProfileError(WizardError):
    """A profile file could not be loaded or does not match the schema."""


class ScreenError(WizardError):
    """A known screen was found but handling it failed (action, error tooltip, did not leave)."""

    def __init__(
        self,
        message: str,
        *,
        screen: str,
        screenshot: Path | None = None,
        report: StageReport | None = None,
    ) -> None:
        super().__init__(message, report=report)
        self.screen = screen
        self.screenshot = screenshot


class UnknownScreenError(WizardError):
    """Nothing the profile knows showed up in time; the message suggests a profile entry."""

    def __init__(
        self,
        message: str,
        *,
        screenshot: Path | None,
        suggestion_yaml: str,
        files: list[Path],
        report: StageReport | None = None,
    ) -> None:
        super().__init__(message, report=report)
        self.screenshot = screenshot
        self.suggestion_yaml = suggestion_yaml
        self.files = files


class RequiredScreenMissing(WizardError):
    """The stage reached its done condition but a required screen never showed."""


class BrowserError(WizardError):
    """The browser (Debian Chromium through Playwright) could not be launched or used."""
