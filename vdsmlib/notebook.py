"""Display helpers for the notebooks: evidence (screenshots, videos), stage tables, progress.

Executed notebooks are the build's evidence, so screenshots and videos are embedded (papermill
output keeps static images, not widgets). Nothing here prints a secret: records are already masked.
"""

from __future__ import annotations

import base64
import html
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["log_to_output", "show_evidence", "show_outcome", "show_record"]


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
    for noisy in ("urllib3", "docker", "asyncio", "qemu.qmp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def show_evidence(
    screenshots: Iterable[str | Path] = (), videos: Iterable[str | Path] = ()
) -> None:
    """Embed every screenshot (with its file name as caption) and every video."""
    from IPython.display import HTML, Image, Markdown

    for shot in screenshots:
        path = Path(shot)
        if path.is_file():
            _display(Markdown(f"**{html.escape(path.stem)}**"))
            _display(Image(filename=str(path), width=720))
    for video in videos:
        path = Path(video)
        if path.is_file() and path.stat().st_size > 0:
            data = base64.b64encode(path.read_bytes()).decode()
            _display(Markdown(f"**video: {html.escape(path.name)}**"))
            _display(
                HTML(f'<video controls width="720" src="data:video/webm;base64,{data}"></video>')
            )


def show_outcome(outcome: Any) -> None:
    """A stage's outcome: its detail line, facts, and evidence."""
    from IPython.display import Markdown

    _display(Markdown(f"**{outcome.status}**: {html.escape(outcome.detail)}"))
    if outcome.facts:
        rows = "\n".join(f"| {k} | {html.escape(str(v))} |" for k, v in outcome.facts.items())
        _display(Markdown("| fact | value |\n|---|---|\n" + rows))
    show_evidence(outcome.screenshots, outcome.videos)


def show_record(record: Any) -> None:
    """The build record as a table: stage, status, seconds, detail."""
    from IPython.display import Markdown

    rows = "\n".join(
        f"| {s.name} | {s.status} | {s.seconds:.1f} | {html.escape(s.detail)[:200]} |"
        for s in record.stages
    )
    head = (
        f"**{record.status}**: {record.target} {record.dsm_version} ({record.dsm_release}), "
        f"accelerator {record.accelerator}, {record.seconds:.0f} s in all\n\n"
    )
    sizes = ""
    if record.sizes:
        sizes = (
            f"\n\nimage size: {record.sizes['before'] / 1e6:.0f} MB before flattening, "
            f"{record.sizes['after'] / 1e6:.0f} MB after"
        )
    _display(Markdown(head + "| stage | status | s | detail |\n|---|---|---|---|\n" + rows + sizes))
