"""Opt-in: a real DSM build (needs internet access to Synology, a registry, KVM, 20 GB disk).

    VDSM_REAL_DSM_VERSION=7.2.2 pytest -m realdsm tests/realdsm

Deselected by default (pyproject's addopts has ``-m 'not realdsm'``), so not run in this
project's CI (no PAT download, no working KVM there); the same code paths are tested against
local stand-ins in tests/integration/test_realdsm_path.py.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from vdsmlib.pipeline import Build

pytestmark = [
    pytest.mark.realdsm,
    pytest.mark.docker,
    pytest.mark.browser,
    pytest.mark.slow,
]


def test_real_dsm_build_and_restore(tmp_path) -> None:  # type: ignore[no-untyped-def]
    version = os.environ.get("VDSM_REAL_DSM_VERSION", "7.2.2")
    build = Build(version, out_dir=tmp_path, executor="notebook")
    record = asyncio.run(build.run())
    assert record.status == "ok"
    assert {s.name: s.status for s in record.stages}["smoke"] == "ran"
    assert record.restore_to_ready_seconds is not None
