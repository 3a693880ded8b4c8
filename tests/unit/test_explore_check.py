"""`vdsm explore` and the explorer check a checkpoint as the build does before restoring it.

The engine is the honest double of tests/unit/test_checkpoint_check.py (images by label, the
check's container answering the disks' qemu-img output), with tags: explore finds checkpoints by
tag and a refused one is untagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_checkpoint_check import (
    BOOT,
    FakeEngine,
    FakeImage,
    disk,
    output,
    sound_checkpoint,
)
from vdsmlib.checkpoints.check import CommittedCheckpoint, record_committed
from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
from vdsmlib.errors import VdsmError
from vdsmlib.notebook.explore import check_before_restore, restore_checkpoint
from vdsmlib.params import load_params


class TaggedImage(FakeImage):
    def __init__(self, image_id: str, stage: str, layers: list[str], tag: str):
        super().__init__(image_id, stage, layers)
        self.labels["vdsm-ci.dsm-version"] = "sim"
        self.tags = [tag]
        self.attrs: dict[str, Any] = {**self.attrs, "Created": "2026-12-03T12:00:00Z"}


class TaggedEngine(FakeEngine):
    """Lists tagged images as the engine does without ``all`` (find_images), and the untagged
    ones too with it (copy_of); removes tags."""

    def __init__(self, *images: TaggedImage, disks: str):
        super().__init__(*images, disks=disks)
        self.removed: list[str] = []

    def get(self, ref: str) -> FakeImage:
        for image in self.by_id.values():
            if ref == image.id or ref in getattr(image, "tags", []):
                return image
        raise KeyError(ref)

    def list(self, filters: dict[str, list[str]], all: bool = False) -> list[FakeImage]:
        wanted = dict(f.split("=", 1) for f in filters["label"])
        found = [i for i in self.by_id.values() if wanted.items() <= i.labels.items()]
        return found if all else [i for i in found if getattr(i, "tags", [])]

    def remove(self, ref: str, noprune: bool = False, **kwargs: Any) -> None:
        image = self.get(ref)
        image.tags.remove(ref)  # type: ignore[attr-defined]
        self.removed.append(ref)


FINAL_TAG = f"{CHECKPOINT_REPOSITORY}:sim-tcg-final-0123456789ab"
FINAL = TaggedImage("sha256:" + "22" * 32, "final", ["sha256:a", "sha256:b"], FINAL_TAG)


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This user's checkpoint records, in a cache of the test's own."""
    monkeypatch.setenv("VDSM_CI_CACHE", str(tmp_path))
    folder = tmp_path / "checkpoints"
    record_committed(folder, CommittedCheckpoint(FINAL.id, "final", "", "run-1", FINAL_TAG))
    return folder


def test_a_checkpoint_with_a_truncated_disk_is_refused_before_explore_restores_it(
    records: Path,
) -> None:
    FINAL.tags = [FINAL_TAG]
    engine = TaggedEngine(FINAL, disks=output(disk(BOOT, check_rc=2)))
    params = load_params("sim")
    with pytest.raises(VdsmError) as refused:
        restore_checkpoint(engine, params, "final")  # type: ignore[arg-type]
    line = str(refused.value)
    assert line.startswith(f"checkpoint final {FINAL_TAG} ({'22' * 6}) refused after")
    assert "qemu-img check found" in line and "\n" not in line
    assert f"marked bad: untagged {FINAL_TAG}" in line and "not restored" in line
    assert engine.removed == [FINAL_TAG]


def test_a_sound_recorded_checkpoint_passes_the_same_check(records: Path) -> None:
    FINAL.tags = [FINAL_TAG]
    engine = TaggedEngine(FINAL, disks=output(*sound_checkpoint()))
    line = check_before_restore(engine, FINAL_TAG, "final")  # type: ignore[arg-type]
    assert "the image its build run-1 committed" in line and engine.removed == []
