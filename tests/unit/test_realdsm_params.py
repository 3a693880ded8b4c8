"""The real-DSM targets' base settings match what the pinned virtual-dsm release does."""

from __future__ import annotations

import re

import pytest

from vdsmlib.params import available_targets, load_params

REAL = [t for t in available_targets() if t != "sim"]


def _release(image: str) -> tuple[int, int]:
    match = re.search(r":(\d+)\.(\d+)", image)
    assert match, f"{image} names no virtual-dsm release tag"
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("target", REAL)
def test_disk_names_follow_the_pat_mounted_at_boot_pat(target: str) -> None:
    """The build mounts the PAT at /boot.pat; then the install names the disks
    DSM_VirtualDSM.boot.img / .system.img (vdsm/virtual-dsm v7.41 src/install.sh)."""
    assert load_params(target).base.disk_base == "DSM_VirtualDSM"


@pytest.mark.parametrize("target", REAL)
def test_patch_file_matches_the_release(target: str) -> None:
    """disk.sh attaches the disks up to and including 7.62, prepare.sh from 7.63 on."""
    base = load_params(target).base
    expected = "/run/disk.sh" if _release(base.image) <= (7, 62) else "/run/prepare.sh"
    assert base.patch_file == expected


@pytest.mark.parametrize("target", REAL)
def test_guest_address_is_the_nat_guest_of_741(target: str) -> None:
    """v7.41 src/network.sh: VM_NET_IP defaults to 20.20.20.21."""
    assert load_params(target).base.guest_address == "20.20.20.21"
