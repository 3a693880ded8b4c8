"""``out/<run-id>/report.html``: one self-contained page per build, under :data:`SIZE_CAP`.

It holds the stage timeline (inline SVG), the stage table, a thumbnail of every screen (JPEG,
downscaled with Pillow when installed, else with ffmpeg) with a link to its clip, the failed
stage's screenshot and suggested profile entry, image sizes and the ``docker run`` line of the
image. Thumbnails that would push the page over the cap are listed by name instead. The
screenshots and clips themselves stay in ``evidence/``; this page is what a CI artifact viewer
shows first.

Example::

    write_report(run_dir, record)   # -> run_dir / "report.html"
"""

from __future__ import annotations

import base64
import html
import io
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from vdsmlib.evidence.record import BuildRecord, failure_line

__all__ = ["SIZE_CAP", "docker_run_line", "thumbnail", "timeline_svg", "write_report"]

log = logging.getLogger(__name__)

#: report.html never exceeds this many bytes.
SIZE_CAP = 2_000_000
THUMB_WIDTH = 320
FAILURE_WIDTH = 960

_COLOURS = {
    "ran": "#2e7d32",
    "ok": "#2e7d32",
    "skipped": "#9e9e9e",
    "resumed": "#64b5f6",
    "failed": "#c62828",
    "pending": "#e0e0e0",
    "running": "#ffb300",
}


def thumbnail(path: Path, width: int = THUMB_WIDTH) -> bytes | None:
    """A JPEG of ``path`` scaled to ``width`` pixels wide, or None when nothing can scale."""
    try:
        from PIL import Image  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((width, width * 4))
            buffer = io.BytesIO()
            img.save(buffer, "JPEG", quality=70)
            return buffer.getvalue()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    scale = ["-vf", f"scale={width}:-2", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "6"]
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), *scale, "-f", "image2pipe", "-"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        log.debug("thumbnail of %s: %s", path, done.stderr.decode(errors="replace")[-300:])
        return None
    return done.stdout


def timeline_svg(stages: list[Any], width: int = 720) -> str:
    """Stages as consecutive bars, as wide as their seconds, coloured by status."""
    total = sum(max(s.seconds, 0.0) for s in stages) or 1.0
    # room after the longest bar for its label ("1234.5 s resumed": about 110 px at 12 px)
    row, label_w, tail = 22, 110, 120
    scale = (width - label_w - tail) / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{row * len(stages) + 8}" font-family="sans-serif" font-size="12">'
    ]
    x = 0.0
    for i, stage in enumerate(stages):
        y = 4 + i * row
        w = max(stage.seconds * scale, 1.0 if stage.seconds else 0.0)
        colour = _COLOURS.get(stage.status, "#ffb300")
        name = html.escape(stage.name)
        parts.append(f'<text x="0" y="{y + 14}">{name}</text>')
        parts.append(
            f'<rect x="{label_w + x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{colour}"><title>{name}: {html.escape(stage.status)}, '
            f"{stage.seconds:.1f} s</title></rect>"
        )
        parts.append(
            f'<text x="{label_w + x + w + 4:.1f}" y="{y + 14}">'
            f"{stage.seconds:.1f} s {html.escape(stage.status)}</text>"
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)


def docker_run_line(record: BuildRecord) -> str:
    """How to start the image this build made (empty when it made none)."""
    if not record.image:
        return ""
    run = record.params.get("run") or {}
    # as users should run it: the UI on this host only; virtual-dsm's NAT networking needs tun
    # and NET_ADMIN; the KVM variant /dev/kvm
    args = ["docker run -d -p 127.0.0.1:5000:5000"]
    devices = list(run.get("devices") or [])
    for needed in ["/dev/net/tun", *(["/dev/kvm"] if record.accelerator == "kvm" else [])]:
        if needed not in devices:
            devices.append(needed)
    caps = list(run.get("cap_add") or [])
    if "NET_ADMIN" not in caps:
        caps.append("NET_ADMIN")
    args += [f"--device {d}" for d in devices]
    args += [f"--cap-add {c}" for c in caps]
    args.append(record.image)
    return " ".join(args)


def _img(data: bytes, alt: str, width: int) -> str:
    b64 = base64.b64encode(data).decode()
    return (
        f'<img src="data:image/jpeg;base64,{b64}" alt="{html.escape(alt)}" '
        f'width="{width}" loading="lazy">'
    )


def _rel(run_dir: Path, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return path


def write_report(run_dir: Path, record: BuildRecord, *, cap: int = SIZE_CAP) -> Path | None:
    """Write ``report.html`` into ``run_dir``; never raises (a report must not fail a build)."""
    try:
        return _write(run_dir, record, cap)
    except Exception as err:
        log.warning("report.html of %s not written: %s", run_dir, err)
        return None


def _write(run_dir: Path, record: BuildRecord, cap: int) -> Path:
    esc = html.escape
    head = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>vdsm-ci {esc(record.run_id)}: {esc(record.status)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em;max-width:1100px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left;vertical-align:top}figure{display:inline-block;margin:4px}"
        "figcaption{font-size:11px;max-width:320px;word-break:break-all}"
        "pre{background:#f5f5f5;padding:8px;overflow:auto}.failed{color:#c62828}"
        "</style></head><body>"
    )
    body: list[str] = [
        f"<h1>{esc(record.target)} {esc(record.dsm_version)}: "
        f"<span class='{esc(record.status)}'>{esc(record.status)}</span></h1>",
        f"<p>run {esc(record.run_id)}, {record.seconds:.0f} s, accelerator "
        f"{esc(str(record.accelerator))}; {esc(record.plan)}</p>",
    ]
    if record.image_run_id:
        body.append(f"<p>Nothing to do: the image was made by run {esc(record.image_run_id)}.</p>")
    if record.error:
        # what to do next, paths as seen from the folder that holds out/ (where make runs)
        line = failure_line(record, run_dir, cwd=run_dir.resolve().parent.parent)
        body.append(f"<p class='failed'><b>{esc(line)}</b></p>")
    body.append("<h2>Stages</h2>" + timeline_svg(record.stages))
    rows = "".join(
        f"<tr><td>{esc(s.name)}</td><td>{esc(s.status)}</td><td>{s.seconds:.1f}</td>"
        f"<td>{esc(s.detail)}</td><td>"
        + (f"<a href='{esc(s.notebook)}'>{esc(s.notebook)}</a>" if s.notebook else "")
        + "</td></tr>"
        for s in record.stages
    )
    body.append(
        "<table><tr><th>stage</th><th>status</th><th>s</th><th>detail</th><th>notebook</th>"
        f"</tr>{rows}</table>"
    )
    image: list[str] = []
    if record.image:
        image.append(f"<p>image <code>{esc(record.image)}</code></p>")
    if record.sizes:
        image.append(
            f"<p>size {record.sizes['before'] / 1e6:.0f} MB before flattening, "
            f"{record.sizes['after'] / 1e6:.0f} MB after</p>"
        )
    if line := docker_run_line(record):
        image.append(f"<pre>{esc(line)}</pre>")
    if image:
        body.append("<h2>Image</h2>" + "".join(image))
    budget = cap - len(head) - sum(map(len, body)) - 4000  # room for the tail
    failure = record.failure or {}
    if failure:
        body.append(f"<h2>Failed: stage {esc(str(failure.get('stage')))}</h2>")
        shot = failure.get("screenshot")
        if shot and (data := thumbnail(run_dir / shot, FAILURE_WIDTH)):
            tag = _img(data, shot, FAILURE_WIDTH)
            if len(tag) < budget:
                body.append(f"<figure>{tag}<figcaption>{esc(shot)}</figcaption></figure>")
                budget -= len(tag)
        suggestion = failure.get("suggestion")
        if suggestion and (run_dir / suggestion).is_file():
            text = (run_dir / suggestion).read_text(encoding="utf-8")[:20_000]
            body.append(
                f"<p>Suggested profile entry ({esc(suggestion)}):</p><pre>{esc(text)}</pre>"
            )
            budget -= len(text)
        links = [f"<a href='{esc(f)}'>{esc(f)}</a>" for f in failure.get("files", [])]
        body.append("<p>Evidence: " + ", ".join(links) + "</p>")
    shots = [_rel(run_dir, s) for s in record.screenshots]
    clips = {s["screenshot"]: s["clip"] for s in record.screens if s.get("clip")}
    if shots:
        figures, left_out = [], []
        for shot in shots:
            data = thumbnail(run_dir / shot) if (run_dir / shot).is_file() else None
            tag = _img(data, shot, THUMB_WIDTH) if data else ""
            if not tag or len(tag) + 200 > budget:
                left_out.append(shot)
                continue
            budget -= len(tag) + 200
            clip = f" (<a href='{esc(clips[shot])}'>clip</a>)" if shot in clips else ""
            figures.append(
                f"<figure><a href='{esc(shot)}'>{tag}</a>"
                f"<figcaption>{esc(Path(shot).name)}{clip}</figcaption></figure>"
            )
        body.append(f"<h2>Screens ({len(shots)})</h2>" + "".join(figures))
        if left_out:
            body.append("<p>Not shown (size cap): " + esc(", ".join(left_out)) + "</p>")
    videos = [_rel(run_dir, v) for v in record.videos]
    if videos:
        body.append(
            "<p>Videos: " + ", ".join(f"<a href='{esc(v)}'>{esc(v)}</a>" for v in videos) + "</p>"
        )
    page = head + "".join(body) + "</body></html>\n"
    path = run_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
