"""simulator/vdsm_sim/image/debian-base.sh: the one step of a simulator build that needs root.

``make deps`` runs it as root; the build calls it through ``ensure_base_image``. The script is
run for real, with an ``id`` of its own to show it an ordinary user.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from vdsm_sim.image import build

SCRIPT = build.BASE_SCRIPT


def test_the_defaults_are_the_simulator_builds() -> None:
    text = SCRIPT.read_text()
    defaults = re.search(r"image=\$\{1:-(\S+)\} suite=\$\{2:-(\S+)\} mirror=\$\{3:-(\S+)\}", text)
    assert defaults, "no defaults line"
    assert defaults.groups() == (build.BASE_IMAGE, build.DEBIAN_SUITE, build.DEBIAN_MIRROR)
    deps = (Path(__file__).parents[2] / "tools" / "ensure-deps.sh").read_text()
    assert f"sim_base={build.BASE_IMAGE}\n" in deps
    assert "simulator/vdsm_sim/image/debian-base.sh" in deps


def test_an_ordinary_user_is_told_the_one_root_step_in_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(f"#!{shutil.which('bash')}\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    debootstrap = tmp_path / "debootstrap-ran"
    (bin_dir / "debootstrap").write_text(f"#!{shutil.which('bash')}\ntouch {debootstrap}\n")
    (bin_dir / "debootstrap").chmod(0o755)
    result = subprocess.run(
        [shutil.which("bash") or "bash", str(SCRIPT)],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 77
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root once" in lines[0] and "sudo make deps" in lines[0]
    assert "docker tag debian:trixie-slim vdsm-ci/debian:trixie" in lines[0]
    assert not debootstrap.exists()
