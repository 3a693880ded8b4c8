"""Per-screen clips: screen times -> windows in the stage video -> one ffmpeg command line."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pytest

from vdsmlib.wizard import clips
from vdsmlib.wizard.clips import (
    ClipFormat,
    ClipWindow,
    clip_path,
    cut_clips,
    ffmpeg_argv,
    screen_window,
)
from vdsmlib.wizard.report import ScreenRecord, StageReport


def test_a_window_runs_from_before_the_screen_showed_to_after_it_left() -> None:
    # the video started at monotonic 100; the screen showed at 103 and left at 105
    assert screen_window(103.0, 105.0, 100.0) == ClipWindow(2.5, 5.5)
    bare = screen_window(103.0, 105.0, 100.0, lead=0, tail=0)
    assert bare is not None and bare.seconds == 2.0


def test_a_window_stays_inside_the_video() -> None:
    # the first screen showed as the page opened: nothing before second 0
    assert screen_window(100.2, 101.0, 100.0) == ClipWindow(0.0, 1.5)
    # the stage failed after the last frame Playwright wrote: the video's end bounds it
    assert screen_window(103.0, 109.0, 100.0, duration=7.25) == ClipWindow(2.5, 7.25)
    # a screen seen after the video ended (or for no time at all) gets no clip
    assert screen_window(110.0, 111.0, 100.0, duration=7.25) is None
    assert screen_window(103.0, 103.0, 100.0, lead=0, tail=0) is None


def test_one_ffmpeg_run_cuts_every_clip_from_a_constant_frame_rate() -> None:
    video = Path("/run/evidence/post-wizard.webm")
    outs = [Path("/run/evidence/clips/a.webm"), Path("/run/evidence/clips/b.webm")]
    argv = ffmpeg_argv(
        "/usr/bin/ffmpeg", video, [(ClipWindow(0.0, 1.5), outs[0]), (ClipWindow(2.25, 6), outs[1])]
    )
    assert argv[:7] == ["/usr/bin/ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(video)]
    graph = argv[argv.index("-filter_complex") + 1].split(";")
    # resampled before trimming: a still screen has frames (no -ss into a gap of the VFR video)
    assert graph == [
        "[0:v]fps=10,scale=480:-2,split=2[s0][s1]",
        "[s0]trim=start=0.000:end=1.500,setpts=PTS-STARTPTS[c0]",
        "[s1]trim=start=2.250:end=6.000,setpts=PTS-STARTPTS[c1]",
    ]
    assert "-ss" not in argv
    first = argv.index("[c0]")
    assert argv[first - 1] == "-map" and argv.index(str(outs[0])) > first
    assert argv[-1] == str(outs[1]) and argv[argv.index("[c1]") - 1] == "-map"
    codec = argv[argv.index("[c1]") + 1 : -1]
    assert codec[:3] == ["-an", "-c:v", "libvpx"] and "-crf" in codec
    small = ffmpeg_argv("ffmpeg", video, [(ClipWindow(0, 1), outs[0])], ClipFormat(width=320))
    assert "scale=320:-2" in small[small.index("-filter_complex") + 1]
    with pytest.raises(ValueError):
        ffmpeg_argv("ffmpeg", video, [])


def test_a_clip_is_named_as_its_screenshot(tmp_path: Path) -> None:
    fmt = ClipFormat()
    shot = tmp_path / "admin-02-admin-account.png"
    record = ScreenRecord(screen="admin-account", seen_at=1.0, screenshot=shot)
    assert (
        clip_path(record, "admin", tmp_path, fmt) == tmp_path / "clips/admin-02-admin-account.webm"
    )
    bare = ScreenRecord(screen="unknown", seen_at=1.0)
    assert clip_path(bare, "admin", tmp_path, fmt) == tmp_path / "clips/admin-unknown.webm"


def test_the_record_lists_the_clip_and_its_window(tmp_path: Path) -> None:
    record = ScreenRecord(
        screen="welcome", seen_at=0.5, started=10.0, ended=12.0, video_start=0.0,
        video_end=2.5, clip=tmp_path / "clips/admin-01-welcome.webm",
    )  # fmt: skip
    data = record.to_dict()
    assert "started" not in data and "ended" not in data  # monotonic: meaningless outside
    assert (data["video_start"], data["video_end"]) == (0.0, 2.5)
    assert data["clip"] == str(tmp_path / "clips/admin-01-welcome.webm") and not data["failed"]
    report = StageReport(stage="admin", profile="p", failed_screen=record)
    assert report.to_dict()["failed_screen"]["screen"] == "welcome"


def test_no_ffmpeg_costs_the_clips_with_one_warning_not_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    monkeypatch.setattr(clips, "_warned_missing", [])
    job = [(ClipWindow(0, 1), tmp_path / "clips" / "a.webm")]
    with caplog.at_level(logging.WARNING, logger="vdsmlib.wizard.clips"):
        assert asyncio.run(cut_clips(tmp_path / "v.webm", job)) == []
        assert asyncio.run(cut_clips(tmp_path / "v.webm", job)) == []
    assert [r.getMessage() for r in caplog.records] == [
        "ffmpeg not found: no per-screen clips (apt-get install ffmpeg)"
    ]


def test_a_failing_ffmpeg_costs_the_clips_not_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Invalid data found when processing input' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    job = [(ClipWindow(0, 1), tmp_path / "clips" / "a.webm")]
    with caplog.at_level(logging.WARNING, logger="vdsmlib.wizard.clips"):
        assert asyncio.run(cut_clips(tmp_path / "v.webm", job)) == []
    (message,) = [r.getMessage() for r in caplog.records]
    assert "ffmpeg exited 1 (Invalid data found when processing input); 0 of 1" in message


def test_a_clips_folder_that_cannot_be_made_costs_the_clips_not_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = tmp_path / "bin" / "ffmpeg"  # never reached
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    (tmp_path / "evidence").write_text("a file where the folder should be")
    job = [(ClipWindow(0, 1), tmp_path / "evidence" / "clips" / "a.webm")]
    with caplog.at_level(logging.WARNING, logger="vdsmlib.wizard.clips"):
        assert asyncio.run(cut_clips(tmp_path / "v.webm", job)) == []
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("no per-screen clips of v.webm: ")


def _page_video(path: Path, blank: float, page: float) -> Path:
    """A stage video as Chromium records one: ``blank`` seconds of a white page, then a page
    with content (ffmpeg's test pattern), VP8 like Playwright's."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"color=c=white:s=160x120:r=10:d={blank}",
         "-f", "lavfi", "-i", f"testsrc=s=160x120:r=10:d={page}",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
         "-c:v", "libvpx", "-b:v", "300k", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def test_the_first_painted_frame_is_read_from_the_luma_range() -> None:
    printed = (
        "frame:0    pts:0       pts_time:0\nlavfi.signalstats.YMIN=235\n"
        "lavfi.signalstats.YMAX=235\nframe:1    pts:1       pts_time:0.1\n"
        "lavfi.signalstats.YMIN=231\nlavfi.signalstats.YMAX=240\n"  # compression noise
        "frame:2    pts:2       pts_time:0.2\nlavfi.signalstats.YMIN=36\n"
        "lavfi.signalstats.YMAX=235\n"
    )
    assert clips.first_painted_in(printed) == 0.2
    assert clips.first_painted_in(printed.rsplit("frame:2", 1)[0]) is None  # all blank


def test_no_clip_starts_on_the_blank_page_before_the_stage_painted(tmp_path: Path) -> None:
    """The first screen showed 0.3 s after the page painted, 1.2 s into the video: its window
    (from 0.5 s before it) would start on white; it starts on the first painted frame."""
    video = _page_video(tmp_path / "admin.webm", blank=1.2, page=2.8)
    first = ScreenRecord(
        screen="welcome", seen_at=0.0, started=101.5, ended=102.5,
        screenshot=tmp_path / "admin-01-welcome.png",
    )  # fmt: skip
    second = ScreenRecord(
        screen="admin-account", seen_at=0.0, started=102.6, ended=103.8,
        screenshot=tmp_path / "admin-02-admin-account.png",
    )  # fmt: skip
    report = StageReport(stage="admin", profile="p", screens=[first, second])
    made = asyncio.run(clips.clip_screens(report, video, video_started=100.0))
    assert len(made) == 2
    assert first.video_start == 1.2 and second.video_start == 2.1  # the second keeps its lead
    for clip in made:  # every clip's first frame shows the page
        assert asyncio.run(clips.first_painted(clip, 1.0)) == 0.0, clip
    # without the look, the first clip's window started on the white page
    assert screen_window(101.5, 102.5, 100.0) == ClipWindow(1.0, 3.0)
