"""What a wizard stage did: screens handled, timings and evidence paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LocatorReport", "ScreenRecord", "StageReport"]


@dataclass
class ScreenRecord:
    """One known screen handled (or skipped) during a stage, or the screen a stage failed on.

    ``seconds_to_leave`` is the time from the first action to the leave condition holding.
    ``started``/``ended``: ``time.monotonic()`` when the engine saw the screen and when it left
    (or the stage failed on it); ``video_start``/``video_end``: the same, as seconds into the
    stage video, and ``clip`` the part of the video cut there (both set once the video is
    saved, see :mod:`vdsmlib.wizard.clips`).
    """

    screen: str
    seen_at: float
    seconds_to_leave: float = 0.0
    screenshot: Path | None = None
    skipped: bool = False
    failed: bool = False
    started: float | None = field(default=None, repr=False)
    ended: float | None = field(default=None, repr=False)
    video_start: float | None = None
    video_end: float | None = None
    clip: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for result.json."""
        return {
            "screen": self.screen,
            "seen_at": round(self.seen_at, 3),
            "seconds_to_leave": round(self.seconds_to_leave, 3),
            "screenshot": str(self.screenshot) if self.screenshot else None,
            "skipped": self.skipped,
            "failed": self.failed,
            "video_start": self.video_start,
            "video_end": self.video_end,
            "clip": str(self.clip) if self.clip else None,
        }


@dataclass
class StageReport:
    """The outcome of one stage: ``ok`` is set when the done condition held.

    ``failed_screen``: the screen the stage failed on (a known one, or ``unknown``), from the
    moment it showed (for an unknown one: the moment the screen before it left) to the failure.
    """

    stage: str
    profile: str
    ok: bool = False
    seconds: float = 0.0
    screens: list[ScreenRecord] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    video: Path | None = None
    trace: Path | None = None
    error: str | None = None
    failed_screen: ScreenRecord | None = None

    @property
    def handled(self) -> list[str]:
        """Ids of the screens acted on, in order."""
        return [record.screen for record in self.screens if not record.skipped]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for result.json."""
        return {
            "stage": self.stage,
            "profile": self.profile,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "screens": [record.to_dict() for record in self.screens],
            "screenshots": [str(path) for path in self.screenshots],
            "video": str(self.video) if self.video else None,
            "trace": str(self.trace) if self.trace else None,
            "error": self.error,
            "failed_screen": self.failed_screen.to_dict() if self.failed_screen else None,
        }


@dataclass(frozen=True)
class LocatorReport:
    """What a selector matches right now (for exploring a new screen interactively)."""

    selector: str
    count: int
    visible: int
    texts: tuple[str, ...]

    @property
    def text(self) -> str:
        """The text of the first visible match, or of the first match."""
        return self.texts[0] if self.texts else ""
