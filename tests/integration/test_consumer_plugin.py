"""A consumer's test file that only uses the ``dsm`` fixtures passes against our final image.

It is run as a consumer runs it: a separate ``pytest --dsm-image IMAGE examples/consumer``, with
the plugin found through its entry point (nothing imported by hand).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Builds

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]


def test_consumer_tests_pass_with_dsm_image(builds: Builds) -> None:
    record = builds.build("sim")
    assert record.status == "ok" and record.image
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(ROOT / "examples" / "consumer"),
            "--dsm-image",
            record.image,
            "-v",
            str(ROOT / "examples" / "consumer"),
        ],
        cwd=ROOT / "examples" / "consumer",
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout


def test_without_an_image_the_fixture_says_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(dsm):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "pass --dsm-image IMAGE or set VDSM_DSM_IMAGE" in result.stdout
