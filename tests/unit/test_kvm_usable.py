"""kvm_usable(): only a probe that booted a guest under KVM on this kernel makes KVM usable."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from vdsmlib.notebook.explore import kvm_usable

HAS_KVM = os.path.exists("/dev/kvm")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VDSM_CI_CACHE", str(tmp_path))
    return tmp_path / "accelerator.json"


def test_nothing_probed_is_not_usable(cache: Path) -> None:
    assert not cache.exists()
    assert kvm_usable() is False


def test_probe_on_this_kernel_that_booted_is_usable_where_dev_kvm_exists(cache: Path) -> None:
    cache.write_text(json.dumps({f"{platform.release()}|7.2.22": ["kvm", "booted"]}))
    assert kvm_usable() is HAS_KVM


def test_rejecting_probe_or_other_kernels_probe_is_not_usable(cache: Path) -> None:
    cache.write_text(json.dumps({f"{platform.release()}|7.2.22": ["tcg", "emulation failure"]}))
    assert kvm_usable() is False
    cache.write_text(json.dumps({"4.19.0-other|7.2.22": ["kvm", "booted"]}))
    assert kvm_usable() is False
    cache.write_text("not json")
    assert kvm_usable() is False
