"""One small clip per wizard screen, cut with ffmpeg from the stage's Playwright video.

Playwright's stage video starts when the stage's page is created; :class:`BrowserSession` notes
that moment (``time.monotonic()`` right after ``new_page()``, within a frame of the video's
first frame), and the wizard engine notes when each screen showed and when it left (or failed).
So every screen has a window in the video: from ``lead`` seconds before it showed to ``tail``
seconds after it left.

All clips of a stage come from one ffmpeg run: the video is decoded once and resampled to a
constant frame rate, so a screen that did not change for a while still has frames (Playwright
writes a frame only when the page changes, and seeking with ``-ss`` into such a gap yields an
empty file), then split, each branch trimmed to its window and encoded as VP8 WebM, 480 px wide,
10 frames per second. VP8 plays in every browser's own build (Chromium without proprietary
codecs, as Playwright's, cannot play H.264) and in VS Code's notebook view, which ships H.264 and
VP8 but not VP9 (microsoft/vscode#156558); on the same 3 s of a post-wizard video VP9 made
10 KB, H.264 14 KB and VP8 20 KB: all small enough to embed.

A stage video starts on the blank page Chromium shows before the stage's page painted, and the
first screen often shows within ``lead`` of that: its clip would start on white frames. So the
frames up to the first window's end are looked at first (ffmpeg's ``signalstats``, at the clips'
frame rate): no window starts before the first frame that is not blank (its luma spans more than
``BLANK_SPAN``).

A missing ffmpeg or a failing cut costs the clips (one warning), never the stage.

Example::

    clips = await clip_screens(report, video, video_started)   # sets record.clip per screen
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vdsmlib.wizard.report import ScreenRecord, StageReport

__all__ = [
    "ClipFormat",
    "ClipWindow",
    "clip_path",
    "clip_screens",
    "cut_clips",
    "ffmpeg_argv",
    "first_painted",
    "screen_window",
    "video_duration",
]

log = logging.getLogger(__name__)

#: seconds of video kept before a screen showed (it appearing) and after it left (what came)
LEAD = 0.5
TAIL = 0.5
#: a window shorter than this is not worth a clip (ffmpeg would write no frame)
MIN_SECONDS = 0.1
CLIPS_DIR = "clips"
#: a frame whose luma (Y) spans at most this much shows nothing (Chromium's blank page: 235-235)
BLANK_SPAN = 16

_warned_missing: list[bool] = []


@dataclass(frozen=True)
class ClipWindow:
    """Seconds from the start of the stage video."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ClipFormat:
    """How clips are encoded: VP8 at constant quality ``crf`` (with ``max_kbps`` as the
    ceiling libvpx needs for it), ``width`` px wide, ``fps`` frames per second."""

    width: int = 480
    fps: int = 10
    crf: int = 30
    max_kbps: int = 300
    suffix: str = ".webm"

    def codec_args(self) -> list[str]:
        return [
            "-an",
            "-c:v", "libvpx",
            "-crf", str(self.crf),
            "-b:v", f"{self.max_kbps}k",
            "-deadline", "good",
            "-cpu-used", "4",
        ]  # fmt: skip


def screen_window(
    started: float,
    ended: float,
    video_started: float,
    *,
    duration: float | None = None,
    lead: float = LEAD,
    tail: float = TAIL,
) -> ClipWindow | None:
    """The window of a screen seen from ``started`` to ``ended`` (both ``time.monotonic()``)
    in a video that started at ``video_started``; clipped to ``[0, duration]``; None if empty.

    >>> screen_window(12.0, 15.0, 10.0)
    ClipWindow(start=1.5, end=5.5)
    """
    start = max(0.0, started - video_started - lead)
    end = max(start, ended - video_started + tail)
    if duration is not None:
        end = min(end, duration)
    if end - start < MIN_SECONDS:
        return None
    return ClipWindow(round(start, 3), round(end, 3))


def ffmpeg_argv(
    ffmpeg: str,
    video: Path,
    clips: Sequence[tuple[ClipWindow, Path]],
    fmt: ClipFormat | None = None,
) -> list[str]:
    """One ffmpeg command line that writes every ``(window, output)`` of ``clips``."""
    if not clips:
        raise ValueError("no clips to cut")
    fmt = fmt or ClipFormat()
    branches = "".join(f"[s{i}]" for i in range(len(clips)))
    graph = [f"[0:v]fps={fmt.fps},scale={fmt.width}:-2,split={len(clips)}{branches}"]
    outputs: list[str] = []
    for i, (window, out) in enumerate(clips):
        graph.append(
            f"[s{i}]trim=start={window.start:.3f}:end={window.end:.3f},setpts=PTS-STARTPTS[c{i}]"
        )
        outputs += ["-map", f"[c{i}]", *fmt.codec_args(), str(out)]
    return [
        ffmpeg,
        "-v", "error",
        "-nostdin",
        "-y",
        "-i", str(video),
        "-filter_complex", ";".join(graph),
        *outputs,
    ]  # fmt: skip


def clip_path(record: ScreenRecord, stage: str, evidence: Path, fmt: ClipFormat) -> Path:
    """``<evidence>/clips/<screenshot name>.webm``: named as the screen's screenshot."""
    stem = record.screenshot.stem if record.screenshot else f"{stage}-{record.screen}"
    return evidence / CLIPS_DIR / f"{stem}{fmt.suffix}"


def video_duration(video: Path) -> float | None:
    """The duration ffprobe reads from ``video``, or None (no ffprobe, unreadable)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    try:
        done = subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(video)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as err:
        log.debug("duration of %s: %s", video, err)
        return None


def _ffmpeg() -> str | None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None and not _warned_missing:
        _warned_missing.append(True)
        log.warning("ffmpeg not found: no per-screen clips (apt-get install ffmpeg)")
    return ffmpeg


async def cut_clips(
    video: Path,
    clips: Sequence[tuple[ClipWindow, Path]],
    *,
    fmt: ClipFormat | None = None,
    timeout: float | None = None,
) -> list[Path]:
    """Cut ``clips`` from ``video`` in one ffmpeg run; the outputs written (non-empty).

    Never raises for ffmpeg's sake (a missing binary, an error, a timeout: one warning, fewer
    clips); cancellation kills ffmpeg and propagates.
    """
    ffmpeg = _ffmpeg()
    if ffmpeg is None or not clips:
        return []
    try:
        for _, out in clips:
            out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.warning("no per-screen clips of %s: %s", video.name, err)
        return []
    argv = ffmpeg_argv(ffmpeg, video, clips, fmt)
    # decoding runs well over realtime here; the bound only stops a hung ffmpeg
    limit = timeout or 60.0 + 2.0 * max(w.end for w, _ in clips)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as err:
        log.warning("no per-screen clips of %s: cannot run %s: %s", video.name, ffmpeg, err)
        return []
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), limit)
    except BaseException as err:  # a timeout, or cancellation: do not leave ffmpeg behind
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if isinstance(err, asyncio.TimeoutError):
            log.warning("no per-screen clips of %s: ffmpeg took over %.0f s", video.name, limit)
            return []
        raise
    made = [out for _, out in clips if _written(out)]
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-300:]
        log.warning(
            "per-screen clips of %s: ffmpeg exited %s (%s); %d of %d written",
            video.name, proc.returncode, tail, len(made), len(clips),
        )  # fmt: skip
    return made


def painted_argv(ffmpeg: str, video: Path, until: float, fps: int) -> list[str]:
    """ffmpeg printing each frame's luma range (``signalstats``) of ``video``'s first
    ``until`` seconds, resampled to ``fps`` as the clips are."""
    return [
        ffmpeg, "-v", "error", "-nostdin",
        "-t", f"{until:.3f}",
        "-i", str(video),
        "-vf", f"fps={fps},signalstats,metadata=print:file=-",
        "-f", "null", "-",
    ]  # fmt: skip


def first_painted_in(printed: str) -> float | None:
    """From ffmpeg's ``metadata=print`` output: the time of the first frame that is not blank
    (luma span over :data:`BLANK_SPAN`); None if every frame is blank (or none was printed)."""
    time_: float | None = None
    low: float | None = None
    for line in printed.splitlines():
        if "pts_time:" in line:
            time_, low = float(line.rsplit("pts_time:", 1)[1].split()[0]), None
        elif "lavfi.signalstats.YMIN=" in line:
            low = float(line.split("=", 1)[1])
        elif "lavfi.signalstats.YMAX=" in line and time_ is not None and low is not None:
            high = float(line.split("=", 1)[1])
            if high - low > BLANK_SPAN:
                return time_
    return None


async def first_painted(video: Path, until: float, *, fps: int = 10) -> float | None:
    """Seconds into ``video`` of its first frame that is not blank, looking at the first
    ``until`` seconds; None when unknown (no ffmpeg, an error) or all of them are blank."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or until <= 0:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            *painted_argv(ffmpeg, video, until, fps),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as err:
        log.debug("first painted frame of %s: %s", video.name, err)
        return None
    try:
        printed, _ = await asyncio.wait_for(proc.communicate(), 30.0 + 2.0 * until)
    except BaseException:  # a timeout, or cancellation: do not leave ffmpeg behind
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.debug("first painted frame of %s: ffmpeg did not finish", video.name)
        return None
    if proc.returncode != 0:
        return None
    return first_painted_in(printed.decode(errors="replace"))


def _written(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


async def clip_screens(
    report: StageReport,
    video: Path,
    video_started: float,
    *,
    fmt: ClipFormat | None = None,
) -> list[Path]:
    """Cut a clip for each handled screen of ``report`` (and its failed screen) from ``video``.

    Sets each record's ``video_start``/``video_end`` (seconds into ``video``) and ``clip``;
    the clips go to ``<video's folder>/clips/``. Skipped screens get no clip.
    """
    fmt = fmt or ClipFormat()
    records = [r for r in report.screens if not r.skipped]
    if report.failed_screen is not None:
        records.append(report.failed_screen)
    duration = await asyncio.to_thread(video_duration, video)
    jobs: list[tuple[ClipWindow, Path, ScreenRecord]] = []
    for record in records:
        if record.started is None or record.ended is None:
            continue
        window = screen_window(record.started, record.ended, video_started, duration=duration)
        if window is None:
            continue
        jobs.append((window, clip_path(record, report.stage, video.parent, fmt), record))
    if jobs:  # no clip starts on the blank page before the stage's page painted
        earliest = min((w for w, _, _ in jobs), key=lambda w: w.start)
        painted = await first_painted(video, earliest.end, fps=fmt.fps)
        if painted is not None:
            jobs = [
                (ClipWindow(painted, w.end) if w.start < painted < w.end else w, out, record)
                for w, out, record in jobs
            ]
    for window, _, record in jobs:
        record.video_start, record.video_end = window.start, window.end
    began = time.monotonic()
    made = set(await cut_clips(video, [(w, out) for w, out, _ in jobs], fmt=fmt))
    for _, out, record in jobs:
        record.clip = out if out in made else None
    if made:
        log.info(
            "stage %s: %d screen clip(s), %.0f KB, cut in %.1f s: %s",
            report.stage, len(made), sum(p.stat().st_size for p in made) / 1000,
            time.monotonic() - began, video.parent / CLIPS_DIR,
        )  # fmt: skip
    return [out for _, out, _ in jobs if out in made]
