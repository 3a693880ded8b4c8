"""The checks a checkpoint passes before it is restored (no Docker): the records of committed
checkpoints by image ID, the judgement of the check of the format (a migration stream in a
file beside disks without internal snapshots), and the plan's fallback when a checkpoint is
refused.

The disk-check output is written here in the shape the check's script prints (``@@`` markers
around ``qemu-img info --output=json`` and ``qemu-img check --output=json`` of QEMU 10.0.13, as
recorded from a final checkpoint of the simulator and from a copy whose boot disk was truncated
to half its size; then the state file's size and first 8 bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vdsmlib.checkpoints.check import (
    FORMAT,
    CommittedCheckpoint,
    MigrationFile,
    check_checkpoint,
    clear_restore_failures,
    committed,
    copy_of,
    note_restore_failed,
    record_committed,
    restore_failures,
)
from vdsmlib.pipeline.plan import STAGES, plan_with_checks

BOOT = "DSM_VirtualDSM_72806.boot.img"
SYSTEM = "DSM_VirtualDSM_72806.system.img"
DATA = "data.qcow2"
#: what qemu-img check prints on a qcow2 file cut in half (recorded)
TRUNCATED_ERRORS = [
    "ERROR snapshot table entry 0 is incomplete",
    "ERROR: counting reference for region exceeding the end of the file by one cluster or "
    "more: offset 0x94d0000 size 0x10000",
]


def snapshot(name: str, vm_state: int) -> dict[str, Any]:
    return {"name": name, "id": "1" if name else "", "vm-state-size": vm_state, "date-sec": 1}


def disk(
    name: str,
    *,
    fmt: str = "qcow2",
    snapshots: list[dict[str, Any]] | None = None,
    check_rc: int = 0,
    check: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    info_rc: int = 0,
) -> str:
    info = {"filename": name, "format": fmt, "virtual-size": 67108864}
    if snapshots is not None:
        info["snapshots"] = snapshots
    lines = [f"@@disk {name}", "@@info"]
    lines += json.dumps(info, indent=4).splitlines() if info_rc == 0 else []
    lines += [f"@@rc {info_rc}"]
    lines += [f"@@err {e}" for e in (["qemu-img: Could not open it"] if info_rc else [])]
    lines += ["@@check"]
    result = check if check is not None else {"check-errors": 0, "format": fmt}
    lines += [*json.dumps(result, indent=4).splitlines(), f"@@rc {check_rc}"]
    lines += [f"@@err {e}" for e in errors or []]
    return "\n".join(lines)


#: the state file's line: its size and first bytes ("QEVM", stream version 3)
STATE = "@@state 161482305 5145564d00000003"


def sound_checkpoint() -> list[str]:
    return [disk(BOOT), disk(SYSTEM), disk(DATA), STATE]


def output(*disks: str, ended: bool = True) -> str:
    return "\n".join([*disks, *(["@@end"] if ended else [])]) + "\n"


def test_the_format_in_use_is_a_migration_file_checked_in_the_image() -> None:
    assert isinstance(FORMAT, MigrationFile)
    command = FORMAT.command("final")
    assert command[:2] == ["sh", "-c"] and command[-1] == "final.state"
    assert "qemu-img check --output=json" in command[2]
    assert "qemu-img info --output=json" in command[2]


def test_a_sound_checkpoint_passes_and_says_where_its_vm_state_is() -> None:
    verdict = FORMAT.judge(output(*sound_checkpoint()), "final")
    assert verdict.problems == []
    assert verdict.summary == "3 disks pass qemu-img check; VM state 161 MB in final.state"


def test_a_truncated_boot_disk_fails_naming_the_disk_and_the_check() -> None:
    truncated = disk(
        BOOT,
        check_rc=2,
        check={"corruptions": 3, "leaks": 1187, "check-errors": 0, "format": "qcow2"},
        errors=TRUNCATED_ERRORS,
    )
    disks = [truncated, *sound_checkpoint()[1:]]
    verdict = FORMAT.judge(output(*disks), "final")
    assert verdict.problems == [
        f"disk {BOOT}: qemu-img check found 3 corruption(s) ({TRUNCATED_ERRORS[0]})",
    ]
    assert verdict.summary == ""


def test_leaked_clusters_alone_do_not_fail_the_check() -> None:
    leaky = disk(BOOT, check_rc=3, check={"leaks": 4})
    verdict = FORMAT.judge(output(leaky, STATE), "final")
    assert verdict.problems == []


def test_a_check_that_cannot_complete_fails() -> None:
    stuck = disk(BOOT, check_rc=1, errors=["qemu-img: EIO"])
    assert FORMAT.judge(output(stuck, STATE), "final").problems == [
        f"disk {BOOT}: qemu-img check could not complete (qemu-img: EIO)"
    ]


def test_a_disk_that_is_not_qcow2_fails() -> None:
    emptied = disk(SYSTEM, fmt="raw", check_rc=63, errors=["This image format does not support"])
    verdict = FORMAT.judge(output(disk(BOOT), emptied, STATE), "final")
    assert verdict.problems == [f"disk {SYSTEM}: raw, not qcow2 (the build attaches qcow2)"]


def test_a_disk_that_qemu_img_cannot_open_fails() -> None:
    gone = disk(DATA, info_rc=1)
    verdict = FORMAT.judge(output(disk(BOOT), gone, STATE), "final")
    assert verdict.problems == [f"disk {DATA}: qemu-img info failed: qemu-img: Could not open it"]


def test_a_disk_with_an_internal_snapshot_fails() -> None:
    """A savevm checkpoint (the format before) or a disk snapshotted since: not this format."""
    old = disk(BOOT, snapshots=[snapshot("final", 154887887)])
    verdict = FORMAT.judge(output(old, disk(SYSTEM), STATE), "final")
    assert verdict.problems == [
        f"disk {BOOT}: lists internal snapshots ('final'): not a disk of this format"
    ]


def test_a_missing_empty_or_foreign_state_file_fails() -> None:
    disks = [disk(BOOT), disk(SYSTEM)]
    assert FORMAT.judge(output(*disks, "@@state missing"), "final").problems == [
        "no state file final.state in the storage folder"
    ]
    assert FORMAT.judge(output(*disks), "final").problems == [
        "no state file final.state in the storage folder"
    ]
    assert FORMAT.judge(output(*disks, "@@state 0 "), "final").problems == [
        "state file final.state: 0 bytes, no VM state"
    ]
    zeroed = "@@state 161482305 0000000000000000"
    assert FORMAT.judge(output(*disks, zeroed), "final").problems == [
        "state file final.state: starts 0000000000000000, not as a migration stream "
        "(5145564d00000003)"
    ]


def test_an_image_without_qemu_img_or_disks_or_an_unfinished_check_fails() -> None:
    missing = "@@disk x.img\n@@info\n@@rc 127\n@@err sh: 1: qemu-img: not found\n@@check\n@@rc 127"
    assert FORMAT.judge(output(missing, STATE), "final").problems == [
        "qemu-img is not in the image (sh: 1: qemu-img: not found)"
    ]
    assert FORMAT.judge(output(), "final").problems == [
        "no disk (*.img, *.qcow2) in the storage folder"
    ]
    cut = output(*sound_checkpoint(), ended=False)
    assert FORMAT.judge(cut, "final").problems[0].startswith("the disk check did not finish")


def record(image_id: str = "sha256:" + "ab" * 32, name: str = "final") -> CommittedCheckpoint:
    return CommittedCheckpoint(image_id, name, "f" * 64, "20261203-120000-abcd", "vdsm-ci/x:y")


def test_a_committed_checkpoint_is_found_by_its_image_id_and_a_copy_is_not(
    tmp_path: Path,
) -> None:
    made = record()
    record_committed(tmp_path, made)
    assert committed(tmp_path, made.image_id) == made
    assert committed(tmp_path, "sha256:" + "cd" * 32) is None  # a copy: another ID
    assert committed(tmp_path, "not-an-id") is None
    # a record file renamed onto another ID does not vouch for it
    other = "sha256:" + "ef" * 32
    (tmp_path / f"sha256-{'ab' * 32}.json").rename(tmp_path / f"sha256-{'ef' * 32}.json")
    assert committed(tmp_path, other) is None


class FakeImage:
    """An image as docker-py describes it: ID, labels, layers."""

    def __init__(self, image_id: str, stage: str, layers: list[str]):
        self.id = image_id
        self.labels = {"vdsm-ci.kind": "checkpoint", "vdsm-ci.stage": stage}
        self.attrs = {"RootFS": {"Layers": layers}}


class FakeEngine:
    """An honest double of the engine's images (listed by label) and of the check's container
    (it answers the disks' qemu-img output)."""

    def __init__(self, *images: FakeImage, disks: str = output(*sound_checkpoint())):
        self.by_id = {i.id: i for i in images}
        self.disks = disks
        self.images = self
        self.containers = self

    def get(self, ref: str) -> FakeImage:
        return self.by_id[ref]

    def list(self, filters: dict[str, list[str]], all: bool = False) -> list[FakeImage]:
        # like the engine: an untagged parent of another image is listed only with all=True
        assert all, "the parent a copy was committed from is listed only with all=True"
        wanted = dict(f.split("=", 1) for f in filters["label"])
        return [i for i in self.by_id.values() if wanted.items() <= i.labels.items()]

    def run(self, image_id: str, **kwargs: Any) -> bytes:
        return self.disks.encode()


BASE = ["sha256:base1", "sha256:base2"]
START_READY = FakeImage("sha256:" + "11" * 32, "start-ready", [*BASE, "sha256:sr"])
FINAL = FakeImage("sha256:" + "22" * 32, "final", [*START_READY.attrs["RootFS"]["Layers"], "f"])


def test_a_copy_is_told_by_the_layers_of_a_checkpoint_of_its_stage() -> None:
    commit = FakeImage("sha256:" + "33" * 32, "final", [*FINAL.attrs["RootFS"]["Layers"], "c"])
    engine = FakeEngine(START_READY, FINAL, commit)
    assert copy_of(engine, commit) == FINAL.id  # type: ignore[arg-type]
    # final has start-ready's layers by design (committed from a VM restored from it)
    assert copy_of(engine, FINAL) is None  # type: ignore[arg-type]
    assert copy_of(engine, START_READY) is None  # type: ignore[arg-type]
    # an image of the same stage with the same layers (a commit without changes, or a build's
    # label-only step) holds the same content: neither is the other's copy
    twin = FakeImage("sha256:" + "44" * 32, "final", FINAL.attrs["RootFS"]["Layers"])
    engine = FakeEngine(START_READY, FINAL, commit, twin)
    assert copy_of(engine, FINAL) is None  # type: ignore[arg-type]
    assert copy_of(engine, commit) in (FINAL.id, twin.id)  # type: ignore[arg-type]


def test_an_unrecorded_checkpoint_that_is_no_copy_is_judged_by_its_disks(tmp_path: Path) -> None:
    """Records are per user: another user's checkpoint on the engine has none here. It is not
    refused (and so not untagged) when its disks are sound; a copy is, and unsound disks are."""
    engine = FakeEngine(START_READY, FINAL)
    other_users = check_checkpoint(engine, FINAL.id, "final", records=tmp_path)  # type: ignore[arg-type]
    assert other_users.ok, other_users.problems
    assert f"not recorded in {tmp_path}" in other_users.line()
    assert "committed" not in other_users.line()
    commit = FakeImage("sha256:" + "33" * 32, "final", [*FINAL.attrs["RootFS"]["Layers"], "c"])
    engine = FakeEngine(START_READY, FINAL, commit)
    copied = check_checkpoint(engine, commit.id, "final", records=tmp_path)  # type: ignore[arg-type]
    assert not copied.ok and f"a copy of checkpoint {'22' * 6}" in copied.line()
    broken = FakeEngine(START_READY, FINAL, disks=output(disk(BOOT, check_rc=2)))
    unsound = check_checkpoint(broken, FINAL.id, "final", records=tmp_path)  # type: ignore[arg-type]
    assert not unsound.ok and "qemu-img check found" in unsound.line()
    record_committed(tmp_path, CommittedCheckpoint(FINAL.id, "final", "", "run-1", "x:y"))
    mine = check_checkpoint(engine, FINAL.id, "final", records=tmp_path)  # type: ignore[arg-type]
    assert mine.ok and "the image its build run-1 committed" in mine.line()


class Checks:
    """An honest double of the build's check: refuses the names given, remembers the calls."""

    def __init__(self, refuse: dict[str, str]):
        self.refuse = refuse
        self.calls: list[str] = []

    def __call__(self, name: str) -> tuple[bool, str]:
        self.calls.append(name)
        if name in self.refuse:
            return False, f"checkpoint {name} refused: {self.refuse[name]}"
        return True, f"checkpoint {name} checked in 1.0 s"


def test_a_refused_final_checkpoint_falls_back_to_start_ready() -> None:
    checks = Checks({"final": "disk boot.img: corrupt"})
    plan = plan_with_checks(
        final_image_exists=False, checkpoints=["start-ready", "final"], check=checks
    )
    assert checks.calls == ["final", "start-ready"]
    assert plan.resume_from == "start-ready"
    assert plan.refused == {"final": "checkpoint final refused: disk boot.img: corrupt"}
    assert plan.to_run() == ["admin", "post-wizard", "services", "flatten", "smoke"]
    assert sorted(plan.fell_back) == ["admin", "post-wizard", "services"]
    assert plan.fell_back["services"] == (
        "would have resumed from checkpoint final; fell back to checkpoint start-ready: "
        "checkpoint final refused: disk boot.img: corrupt"
    )
    assert "fell back to checkpoint start-ready" in plan.reason
    assert plan.reason.endswith("checkpoint start-ready checked in 1.0 s")


def test_both_checkpoints_refused_is_a_cold_boot() -> None:
    checks = Checks({"final": "a copy", "start-ready": "a copy"})
    plan = plan_with_checks(
        final_image_exists=False, checkpoints=["start-ready", "final"], check=checks
    )
    assert plan.resume_from is None and plan.to_run() == list(STAGES[1:])
    assert sorted(plan.refused) == ["final", "start-ready"]
    assert plan.fell_back["boot"].startswith(
        "would have resumed from checkpoint final; fell back to a cold boot: "
    )


def test_a_checkpoint_that_passes_is_checked_once_and_resumed() -> None:
    checks = Checks({})
    plan = plan_with_checks(
        final_image_exists=False, checkpoints=["start-ready", "final"], check=checks
    )
    assert checks.calls == ["final"] and plan.resume_from == "final"
    assert plan.refused == {} and plan.fell_back == {}
    assert plan.checks == {"final": "checkpoint final checked in 1.0 s"}


@pytest.mark.parametrize("case", ["no_cache", "final_image", "no_checkpoint"])
def test_no_check_runs_when_nothing_is_restored(case: str) -> None:
    checks = Checks({})
    plan = plan_with_checks(
        final_image_exists=case == "final_image",
        checkpoints=[] if case == "no_checkpoint" else ["final"],
        check=checks,
        no_cache=case == "no_cache",
    )
    assert checks.calls == [] and plan.refused == {}


def test_a_refused_from_checkpoint_is_an_error_not_a_fallback() -> None:
    checks = Checks({"start-ready": "a copy"})
    with pytest.raises(LookupError, match="'start-ready' that passes its checks"):
        plan_with_checks(
            final_image_exists=False,
            checkpoints=["start-ready"],
            check=checks,
            from_checkpoint="start-ready",
        )


#: QEMU 10.0.13 of the simulator image in the foreground (virtual-dsm from 7.63), started with
#: ``-incoming file:`` of a state file cut short (recorded)
INCOMING_FAILED = """\u276f Booting Virtual DSM (simulator of virtual-dsm 7.65) using QEMU v10.0.13
qemu-system-x86_64: error while loading state section id 1(ram)
qemu-system-x86_64: load of migration failed: Input/output error
\u276f ERROR: QEMU exited with code 1
"""


def test_a_failed_incoming_migration_is_told_from_the_log_with_its_cause() -> None:
    assert FORMAT.restore_failure(INCOMING_FAILED) == (
        "qemu-system-x86_64: error while loading state section id 1(ram); "
        "qemu-system-x86_64: load of migration failed: Input/output error"
    )
    missing = (
        "\u276f ERROR: qemu-system-x86_64: -incoming file:/storage/final.state: Could not open "
        "'/storage/final.state': No such file or directory\n"
    )
    assert FORMAT.restore_failure(missing) == (
        "qemu-system-x86_64: -incoming file:/storage/final.state: Could not open "
        "'/storage/final.state': No such file or directory"
    )
    # a VM that died for another reason is not the checkpoint's fault
    no_tun = "\u276f ERROR: TUN device missing: add --device /dev/net/tun\n"
    assert FORMAT.restore_failure(no_tun) is None


def test_a_failed_restore_is_noted_in_the_run_folder_for_the_orchestrator(tmp_path: Path) -> None:
    assert restore_failures(tmp_path) == {}
    note_restore_failed(tmp_path, "start-ready", "load of migration failed")
    assert restore_failures(tmp_path) == {"start-ready": "load of migration failed"}
    clear_restore_failures(tmp_path)  # the build fell back: a later failure is not a restore's
    assert restore_failures(tmp_path) == {}
