"""The simulated DSM's LUN copies (snapshots, clones) keep the bytes and the holes."""

from __future__ import annotations

from pathlib import Path

from vdsm_sim.guest.dataplane import _copy_sparse


def test_sparse_copy_keeps_data_and_holes(tmp_path: Path) -> None:
    src = tmp_path / "lun.img"
    size = 64 * 1024 * 1024
    with src.open("wb") as f:
        f.truncate(size)
        f.seek(4096)
        f.write(b"first block")
        f.seek(size - 512)
        f.write(b"last block".ljust(512, b"."))
    dst = tmp_path / "clone.img"
    _copy_sparse(src, dst)
    assert dst.stat().st_size == size
    assert dst.read_bytes() == src.read_bytes()
    # the holes stay holes: far less allocated than the size
    assert dst.stat().st_blocks * 512 < size // 4
