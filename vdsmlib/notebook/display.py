"""Display helpers for the notebooks: evidence (screenshots, videos), stage tables, progress.

Executed notebooks are the build's evidence, so a stage notebook shows each of its wizard
screens as one output: the screenshot beside the screen's clip (cut from the stage video, see
:mod:`vdsmlib.wizard.clips`; embedded when under :data:`CLIP_EMBED_BYTES`), and when it fails,
the unknown screen with its clip and the suggested profile entry. The build notebook embeds only
the failing stage's screenshot and links its clip (the rest is in the stage notebooks and in
``report.html``), so it stays small. Stage videos are linked, not embedded.

Every display carries a one-line ``text/plain`` (what ``papermill --log-output`` prints in a CI
log), never an object repr. Nothing here prints a secret: records are already masked.

Example (a stage notebook)::

    outcome = await run_stage_notebook(run_dir, "admin")

(the build notebook)::

    build = build_from_parameters(_given)   # its parameters, checked
    result = await run_build(build)
    show_build_evidence(build, result)
    finish(build, result)          # raises one concise BuildFailed line on failure
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import BuildRecord, failure_line, first_line, load_record
from vdsmlib.pipeline.parameters import build_from_parameters

if TYPE_CHECKING:
    pass

__all__ = [
    "BuildFailed",
    "BuildResult",
    "build_from_parameters",
    "finish",
    "log_to_output",
    "one_line_errors",
    "run_build",
    "run_stage_notebook",
    "show_build_evidence",
    "show_evidence",
    "show_failure",
    "show_outcome",
    "show_record",
    "show_screens",
]

log = logging.getLogger("vdsmlib.pipeline")

#: seconds between "still running" lines while a stage runs
PROGRESS_INTERVAL = 30.0
_TEXT_EXCERPT = 1500
#: a clip up to this size is embedded in the stage notebook, a bigger one referenced by path
#: (a simulator screen's clip measures 5-10 KB)
CLIP_EMBED_BYTES = 400_000
_SCREENSHOT_WIDTH = 560
_CLIP_WIDTH = 400


class BuildFailed(VdsmError):
    """The build failed; the message is one line naming the stage, the screen and the evidence."""


def log_to_output(level: int = logging.INFO) -> None:
    """Send vdsmlib's log lines to the cell output (papermill --log-output shows them too)."""
    root = logging.getLogger()
    if not any(getattr(h, "_vdsm", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        handler._vdsm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "docker", "asyncio", "qemu.qmp", "papermill"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _display(bundle: dict[str, str]) -> None:
    """Display a MIME bundle; its ``text/plain`` is the line a CI log shows."""
    from IPython.display import display

    display(bundle, raw=True)


def _markdown(text: str, plain: str | None = None) -> None:
    _display({"text/markdown": text, "text/plain": plain if plain is not None else text})


def _link(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` (the executed notebook's folder) when it can be."""
    if base is not None:
        try:
            return os.path.relpath(path.resolve(), base.resolve())
        except ValueError:
            pass
    return str(path)


def _image_bundle(path: Path, caption: str = "", width: int = 720) -> dict[str, str]:
    label = caption or path.stem
    return {
        "text/html": f"<p><b>{html.escape(label)}</b></p>{_png_tag(path, label, width)}",
        "text/plain": f"screenshot {label}: {path}",
    }


def _png_tag(path: Path, label: str, width: int) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="{width}" alt="{html.escape(label)}">'


def _clip_tag(path: Path, label: str, *, embed: bool, notebook_dir: Path | None) -> str:
    """A looping, muted <video> of a screen's clip: embedded, or by path from the notebook."""
    if embed and path.stat().st_size <= CLIP_EMBED_BYTES:
        src = "data:video/webm;base64," + base64.b64encode(path.read_bytes()).decode()
    else:
        src = html.escape(_link(path, notebook_dir or Path.cwd()))
    return (
        f'<video controls loop muted playsinline width="{_CLIP_WIDTH}" '
        f'title="clip of {html.escape(label)}" src="{src}"></video>'
    )


def _screen_bundle(
    run_dir: Path, entry: dict[str, Any], *, embed: bool, notebook_dir: Path | None
) -> dict[str, str] | None:
    """One screen's output: caption, screenshot and clip side by side; None if nothing is there."""
    label = f"{entry.get('stage', '?')}: {entry.get('screen', '?')}"
    label += " (skipped)" if entry.get("skipped") else " (failed)" if entry.get("failed") else ""
    shot = run_dir / entry["screenshot"] if entry.get("screenshot") else None
    clip = run_dir / entry["clip"] if entry.get("clip") else None
    shot = shot if shot is not None and shot.is_file() else None
    clip = clip if clip is not None and clip.is_file() and clip.stat().st_size > 0 else None
    if shot is None and clip is None:
        return None
    parts = []
    if shot is not None:
        parts.append(_png_tag(shot, label, _SCREENSHOT_WIDTH))
    caption = f"<b>{html.escape(label)}</b>"
    if clip is not None:
        parts.append(_clip_tag(clip, label, embed=embed, notebook_dir=notebook_dir))
        video = run_dir / entry["video"] if entry.get("video") else None
        if video is not None and entry.get("video_start") is not None:
            href = html.escape(_link(video, notebook_dir or Path.cwd()))
            caption += (
                f" <small>clip: {entry['video_start']:.1f}-{entry['video_end']:.1f} s of "
                f'<a href="{href}">{html.escape(video.name)}</a></small>'
            )
    plain = f"screen {label}: screenshot {shot or '-'}, clip {clip or '-'}"
    return {
        "text/html": f"<p>{caption}</p>"
        '<div style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
        + "".join(parts)
        + "</div>",
        "text/plain": plain,
    }


def show_screens(
    run_dir: Path,
    screens: Iterable[dict[str, Any]],
    *,
    notebook_dir: Path | None = None,
    embed: bool = True,
) -> list[Path]:
    """One output per wizard screen: its screenshot beside its clip. Returns the screenshots
    shown. ``screens``: entries of ``result.json``'s ``screens`` (paths relative to
    ``run_dir``); ``embed=False`` references the clips by path instead of embedding them."""
    shown: list[Path] = []
    for entry in screens:
        bundle = _screen_bundle(run_dir, entry, embed=embed, notebook_dir=notebook_dir)
        if bundle is not None:
            _display(bundle)
            if entry.get("screenshot"):
                shown.append(run_dir / entry["screenshot"])
    return shown


def show_image(path: Path, caption: str = "", width: int = 720) -> None:
    """Embed one PNG screenshot with a caption (the CI log gets the caption and the path)."""
    if path.is_file():
        _display(_image_bundle(path, caption, width))


def show_evidence(
    screenshots: Iterable[str | Path] = (),
    videos: Iterable[str | Path] = (),
    *,
    notebook_dir: Path | None = None,
) -> None:
    """Embed every screenshot (with its file name as caption); link every video.

    ``notebook_dir``: where the executed notebook lives, so that video links resolve in
    JupyterLab (default: the kernel's working directory).
    """
    for shot in screenshots:
        show_image(Path(shot))
    for video in videos:
        path = Path(video)
        if path.is_file() and path.stat().st_size > 0:
            src = html.escape(_link(path, notebook_dir or Path.cwd()))
            _display(
                {
                    "text/html": f"<p><b>video {html.escape(path.name)}</b> "
                    f'(<a href="{src}">{src}</a>)</p>'
                    f'<video controls width="720" src="{src}"></video>',
                    "text/plain": f"video: {path}",
                }
            )


def show_outcome(
    outcome: Any, *, notebook_dir: Path | None = None, run_dir: Path | None = None
) -> None:
    """A stage's outcome: its detail line, facts, each wizard screen (screenshot and clip; needs
    ``run_dir``, which its paths are relative to), other screenshots, and its videos, linked."""
    _markdown(f"**{outcome.status}**: {html.escape(outcome.detail)}", f"{outcome.status}: "
              f"{outcome.detail}")  # fmt: skip
    if outcome.facts:
        rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in outcome.facts.items())
        _markdown("| fact | value |\n|---|---|\n" + rows)
    shown: set[Path] = set()
    screens = getattr(outcome, "screens", [])
    if run_dir is not None and screens:
        shown = {p.resolve() for p in show_screens(run_dir, screens, notebook_dir=notebook_dir)}
    rest = [p for p in outcome.screenshots if Path(p).resolve() not in shown]
    show_evidence(rest, outcome.videos, notebook_dir=notebook_dir)


def _cell(value: object, limit: int = 200) -> str:
    """One markdown table cell: no newline, no pipe, escaped, at most ``limit`` characters."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return html.escape(text).replace("|", "&#124;")


def show_record(record: BuildRecord) -> None:
    """The build record as a table: stage, status, seconds, detail."""
    rows = "\n".join(
        f"| {s.name} | {s.status} | {s.seconds:.1f} | {_cell(s.detail)} |" for s in record.stages
    )
    head = (
        f"**{record.status}**: {record.target} {record.dsm_version} ({record.dsm_release}), "
        f"accelerator {record.accelerator}, {record.seconds:.0f} s in all\n\n"
    )
    if record.image_run_id:
        head += f"nothing to do: the image was made by run {record.image_run_id}\n\n"
    sizes = ""
    if record.sizes:
        sizes = (
            f"\n\nimage size: {record.sizes['before'] / 1e6:.0f} MB before flattening, "
            f"{record.sizes['after'] / 1e6:.0f} MB after"
        )
    plain = "\n".join(
        f"{s.name:<12} {s.status:<8} {s.seconds:7.1f} s  {first_line(s.detail, 120)}"
        for s in record.stages
    )
    _markdown(
        head + "| stage | status | s | detail |\n|---|---|---|---|\n" + rows + sizes,
        f"build {record.status} in {record.seconds:.0f} s\n{plain}",
    )


def show_failure(
    run_dir: Path,
    failure: dict[str, Any],
    *,
    notebook_dir: Path | None = None,
    embed_screens: bool = False,
) -> None:
    """The failed stage's evidence: screenshot, visible text, suggested entry, what came before.

    ``embed_screens`` (the stage notebook): each screen handled before the failure with its
    screenshot and clip, and the failed screen's clip embedded; otherwise (the build notebook,
    which must stay small) the screens are named and the clip is referenced by path.
    """
    stage = failure.get("stage", "?")
    _markdown(
        f"### Stage {html.escape(str(stage))} failed\n\n{html.escape(failure.get('error', ''))}",
        f"stage {stage} failed: {failure.get('error', '')}",
    )
    clip = run_dir / failure["clip"] if failure.get("clip") else None
    if (shot := failure.get("screenshot")) and (run_dir / shot).is_file():
        caption = f"{stage}: the screen no profile entry knows"
        bundle = _image_bundle(run_dir / shot, caption, _SCREENSHOT_WIDTH)
        if clip is not None and clip.is_file():
            # side by side, as every screen: the screenshot, and its clip up to the failure
            tag = _clip_tag(clip, caption, embed=embed_screens, notebook_dir=notebook_dir)
            img = _png_tag(run_dir / shot, caption, _SCREENSHOT_WIDTH)
            bundle["text/html"] = (
                f"<p><b>{html.escape(caption)}</b> <small>(its clip, up to the failure, "
                "beside it)</small></p>"
                '<div style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
                f"{img}{tag}</div>"
            )
            bundle["text/plain"] += f"; clip {clip}"
        _display(bundle)
    elif clip is not None and clip.is_file():  # a known screen failed: its clip, screenshot
        failed = [s for s in failure.get("screens", []) if s.get("failed")]
        if failed:
            show_screens(run_dir, failed[-1:], notebook_dir=notebook_dir, embed=embed_screens)
    if text := failure.get("text"):
        excerpt = (run_dir / text).read_text(encoding="utf-8", errors="replace")[:_TEXT_EXCERPT]
        _markdown(f"Visible text:\n\n```\n{excerpt.strip()}\n```", f"visible text: {excerpt[:200]}")
    if suggestion := failure.get("suggestion"):
        body = (run_dir / suggestion).read_text(encoding="utf-8", errors="replace")
        _markdown(
            f"Suggested profile entry (`{suggestion}`; `notebooks/explore.ipynb` inserts it):"
            f"\n\n```yaml\n{body.strip()}\n```",
            f"suggested profile entry: {run_dir / suggestion}",
        )
    handled = [Path(p).stem for p in failure.get("screenshots", [])]
    before = [s for s in failure.get("screens", []) if not s.get("failed")]
    if embed_screens and before:
        _markdown("Screens handled before it:", "screens handled before it:")
        show_screens(run_dir, before, notebook_dir=notebook_dir)
    elif handled:
        _markdown("Screens handled before it: " + ", ".join(f"`{h}`" for h in handled))
    if video := failure.get("video"):
        show_evidence(videos=[run_dir / video], notebook_dir=notebook_dir)
    links = [
        f"[{html.escape(f)}]({html.escape(_link(run_dir / f, notebook_dir or Path.cwd()))})"
        for f in failure.get("files", [])
    ]
    if links:
        _markdown("Evidence: " + ", ".join(links), "evidence: " + ", ".join(failure["files"]))


async def run_stage_notebook(run_dir: str | os.PathLike[str], stage: str) -> Any:
    """What a stage notebook runs: the stage, then its outcome, or on failure its evidence."""
    from vdsmlib.evidence.record import failure_evidence
    from vdsmlib.pipeline.stages import run_stage

    log_to_output()
    folder = Path(run_dir)
    notebook_dir = folder / "notebooks"
    try:
        outcome = await run_stage(folder, stage)
    except Exception as err:
        failure = failure_evidence(folder, stage)
        failure["error"] = f"{type(err).__name__}: {first_line(str(err))}"
        failure["files"] = [f for f in failure["files"] if f != failure.get("notebook")]
        show_failure(folder, failure, notebook_dir=notebook_dir, embed_screens=True)
        raise
    show_outcome(outcome, notebook_dir=notebook_dir, run_dir=folder)
    return outcome


@dataclass
class BuildResult:
    """What :func:`run_build` returns: the record and, for a failed build, its error."""

    record: BuildRecord | None
    error: BaseException | None = None


def _current_stage(record: BuildRecord) -> str | None:
    for stage in record.stages:
        if stage.status == "running":
            return stage.name
    return None


async def _progress(build: Any, interval: float) -> None:
    """Log a line every ``interval`` s while a stage runs (no minutes of silence in CI)."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        stage = _current_stage(build.record)
        if stage:
            log.info("stage %s: still running (build %.0f s)", stage, time.monotonic() - started)


async def run_build(build: Any, *, interval: float = PROGRESS_INTERVAL) -> BuildResult:
    """Run ``build``; show its stage table also when it fails. Never raises an Exception."""
    progress = asyncio.create_task(_progress(build, interval))
    result = BuildResult(None)
    try:
        result.record = await build.run()
    except Exception as err:
        result.error = err
    finally:
        progress.cancel()
        path = build.run_dir / "result.json"
        if path.exists():
            result.record = load_record(path)
            show_record(result.record)
    return result


def show_build_evidence(build: Any, result: BuildResult) -> None:
    """The failing stage's evidence, or the screens (inline executor) and where the rest is."""
    record = result.record
    if record is None:
        return
    run_dir = Path(build.run_dir)
    if record.failure:
        show_failure(run_dir, record.failure)
    elif getattr(build.executor, "__name__", "").startswith("inline"):
        show_evidence(record.screenshots, record.videos)
    notebooks = [Path(n) for n in record.notebooks]
    report = run_dir / "report.html"
    lines = [f"- [{n.name}]({_link(n, Path.cwd())})" for n in notebooks]
    if report.is_file():
        lines.insert(0, f"- [report.html]({_link(report, Path.cwd())}): timeline and every screen")
    if lines:
        _markdown(
            "Evidence of every stage:\n\n" + "\n".join(lines),
            f"report: {report}" if report.is_file() else f"stage notebooks: {run_dir}/notebooks",
        )


def finish(build: Any, result: BuildResult) -> str:
    """The image of a successful build; a failed one raises :class:`BuildFailed` (one line)."""
    if result.error is None and result.record is not None and result.record.status == "ok":
        return str(result.record.image)
    _minimal_tracebacks()
    record = result.record
    if record is None:
        record = BuildRecord(run_id="", target="", dsm_version="", status="failed")
    if not record.error:
        record.error = first_line(str(result.error), 2000)
    raise BuildFailed(failure_line(record, Path(build.run_dir))) from None


def one_line_errors() -> None:
    """In IPython: a :class:`~vdsmlib.errors.VdsmError` raised by any later cell shows as one
    line (``ParamsError: ...``), not a traceback through the library: its message says what to
    do. Other exceptions (bugs) keep their full traceback. The error output still carries the
    exception's name and message, so papermill stops there and fails."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return

    def one_line(
        shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
    ) -> list[str]:
        stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((VdsmError,), one_line)


def _minimal_tracebacks() -> None:
    """In IPython: show exceptions as one line (the message says it all)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "InteractiveTB"):
        shell.InteractiveTB.set_mode(mode="Minimal")


def explore_panel(explorer: Any, selector: str = "") -> Any:
    """An ipywidgets panel on an :class:`~vdsmlib.notebook.explore.Explorer`.

    Buttons: detect, screenshot, try a selector, perform the showing screen, step to the next,
    insert the suggested entry, reload the profile, resume the build. Every action shows its
    result and a screenshot in the panel's output. Under papermill (no widget frontend) the
    executed notebook keeps the static screenshot displayed below the panel.
    """
    import ipywidgets as w

    out = w.Output(layout={"border": "1px solid #ccc", "padding": "4px"})
    text = w.Text(value=selector, placeholder="a selector, e.g. button.v-btn-main",
                  layout={"width": "420px"})  # fmt: skip
    status = w.HTML()

    def show(*bundles: dict[str, str]) -> None:
        # set, not captured: a button's task runs outside any cell's output context
        out.outputs = tuple(
            {"output_type": "display_data", "data": b, "metadata": {}} for b in bundles
        )

    async def act(name: str) -> None:
        status.value = f"<i>{html.escape(name)}...</i>"
        show()
        try:
            line = await _explore_action(explorer, name, text.value)
            said = {"text/markdown": html.escape(line), "text/plain": line}
            if name == "resume build":  # the VM is gone then
                show(said)
            else:
                show(said, _image_bundle(await explorer.screenshot(name.replace(" ", "-")), name))
        except Exception as err:
            line = f"{type(err).__name__}: {first_line(str(err))}"
            show({"text/markdown": f"**{html.escape(line)}**", "text/plain": line})
        status.value = html.escape(name) + ": done"

    def button(name: str, tip: str) -> Any:
        b = w.Button(description=name, tooltip=tip, layout={"width": "auto"})
        b.on_click(lambda _: asyncio.ensure_future(act(name)))
        return b

    buttons = [
        button("detect", "which known screen shows now"),
        button("screenshot", "a screenshot of the page now"),
        button("try selector", "what the selector matches now"),
        button("perform", "perform the known screen showing now"),
        button("step", "wait for the next known screen as the build does, and perform it"),
        button("insert suggestion", "insert the suggested entry into the profile file"),
        button("reload profile", "read the stage's profile file again"),
        button("resume build", "close, and build again from the checkpoint"),
    ]
    panel = w.VBox([w.HBox(buttons[:5]), w.HBox([text, *buttons[5:]]), status, out])
    panel.act = act  # for scripted use: await panel.act("step")
    return panel


async def _explore_action(explorer: Any, name: str, selector: str) -> str:
    """Run one panel action; a line saying what it did."""
    if name == "detect":
        screen = await explorer.detect()
        return f"known screen: {screen.id if screen else 'none'}"
    if name == "screenshot":
        return f"page at {explorer.url}"
    if name == "try selector":
        found = await explorer.try_locator(selector)
        return f"{found.selector}: {found.count} match(es), {found.visible} visible: {found.text!r}"
    if name == "perform":
        record = await explorer.perform()
        return f"performed {record.screen}, it left after {record.seconds_to_leave:.1f} s"
    if name == "step":
        record = await explorer.step()
        if record is None:
            return f"stage {explorer.stage} is done"
        return f"performed {record.screen}, it left after {record.seconds_to_leave:.1f} s"
    if name == "insert suggestion":
        screen_id = explorer.insert_suggestion()
        return f"inserted screen {screen_id} into {explorer.profile_file()} and reloaded it"
    if name == "reload profile":
        profile = explorer.reload_profile()
        return f"profile {profile.profile}: {', '.join(s.id for s in profile.screens)}"
    if name == "resume build":
        record = await explorer.resume()
        return f"build {record.status}: {record.image or record.error}"
    raise VdsmError(f"unknown action {name!r}")
