"""`vdsm pin`'s rewrite of a target's params for the release it pins (vdsmlib.pipeline.pin).

Pure text in, text out: the real params files of the project, pinned to 7.41 and to the newest
release, load as params again with the settings each release needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vdsmlib.errors import VdsmError
from vdsmlib.pipeline.pin import patch_file_for, pinned_params, release_of

ROOT = Path(__file__).parents[2]
DIGEST = "sha256:" + "ab" * 32


def test_release_of_reads_the_tag_not_the_registry_port() -> None:
    assert release_of("vdsm/virtual-dsm:7.65") == (7, 65)
    assert release_of("127.0.0.1:5000/vdsm/virtual-dsm:7.41@sha256:00") == (7, 41)
    assert release_of("127.0.0.1:5000/vdsm/virtual-dsm") is None
    assert release_of("vdsm/virtual-dsm:latest") is None


def test_patch_file_moves_at_7_63() -> None:
    # virtual-dsm v7.62 src/disk.sh still attaches the disks; v7.63 moved them to src/prepare.sh
    assert patch_file_for((7, 41)) == "/run/disk.sh"
    assert patch_file_for((7, 62)) == "/run/disk.sh"
    assert patch_file_for((7, 63)) == "/run/prepare.sh"
    assert patch_file_for((7, 65)) == "/run/prepare.sh"


@pytest.mark.parametrize("target", ["7.1.1", "7.2.1", "7.2.2", "7.3.2"])
def test_pinning_the_newest_release_sets_patch_file_and_guest_address(target: str) -> None:
    text = (ROOT / "params" / f"{target}.yaml").read_text()
    before = yaml.safe_load(text)
    pinned = pinned_params(text, "vdsm/virtual-dsm:7.65", DIGEST, "20.20.20.21")
    data = yaml.safe_load(pinned)
    assert data["base"]["image"] == f"vdsm/virtual-dsm:7.65@{DIGEST}"
    assert data["base"]["patch_file"] == "/run/prepare.sh"
    assert data["env"] == {**(before.get("env") or {}), "VM_NET_IP": "20.20.20.21"}
    # everything else, comments included, is kept
    assert {k: v for k, v in data.items() if k not in ("base", "env")} == {
        k: v for k, v in before.items() if k not in ("base", "env")
    }
    assert text.count("\n#") <= pinned.count("\n#")
    # pinning again is stable
    assert pinned_params(pinned, "vdsm/virtual-dsm:7.65", DIGEST, "20.20.20.21") == pinned


def test_pinning_7_41_keeps_disk_sh_and_adds_no_address() -> None:
    text = (ROOT / "params" / "7.2.2.yaml").read_text()
    pinned = yaml.safe_load(pinned_params(text, "vdsm/virtual-dsm:7.41", DIGEST, "20.20.20.21"))
    assert pinned["base"]["patch_file"] == "/run/disk.sh"
    assert "VM_NET_IP" not in (pinned.get("env") or {})


def test_env_block_with_other_variables_gets_the_address_added() -> None:
    text = "base:\n  image: x\n  patch_file: /run/disk.sh\nenv:\n  TZ: UTC\nrun: {}\n"
    pinned = yaml.safe_load(pinned_params(text, "vdsm/virtual-dsm:7.63", DIGEST, "20.20.20.9"))
    assert pinned["env"] == {"VM_NET_IP": "20.20.20.9", "TZ": "UTC"}
    assert pinned["run"] == {}


def test_a_tag_that_names_no_release_is_refused_with_what_to_do() -> None:
    with pytest.raises(VdsmError, match=r"pin a release tag such as vdsm/virtual-dsm:7\.65"):
        pinned_params("base:\n  image: x\n", "vdsm/virtual-dsm:latest", DIGEST, "20.20.20.21")
