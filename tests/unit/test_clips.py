"""Per-screen clips: screen times -> windows in the stage video -> one ffmpeg command line."""

from __future__ import annotations

import asyncio
import logging
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
