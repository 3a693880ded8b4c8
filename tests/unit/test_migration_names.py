"""Where a checkpoint's state file lives and how QEMU is told to load it (no QEMU here: the
migration itself is exercised by every build in tests/integration)."""

from __future__ import annotations

import shlex

import pytest

from vdsmlib.qemu.errors import MigrationError
from vdsmlib.qemu.migration import STATE_MAGIC, incoming_argument, state_path


def test_one_state_file_per_checkpoint_name_in_the_storage_folder() -> None:
    assert state_path("start-ready") == "/storage/start-ready.state"
    assert state_path("final") == "/storage/final.state"
    assert state_path("final", "/elsewhere/") == "/elsewhere/final.state"


def test_the_restore_argument_survives_virtual_dsms_word_splitting() -> None:
    # virtual-dsm appends ARGUMENTS to QEMU's command line split on spaces
    assert shlex.split(incoming_argument("start-ready")) == [
        "-incoming",
        "file:/storage/start-ready.state",
    ]


@pytest.mark.parametrize("name", ["", "1st", "two words", "a/b", "x;rm", "-incoming"])
def test_a_name_that_is_no_plain_identifier_is_refused_saying_what_to_use(name: str) -> None:
    with pytest.raises(MigrationError, match="use a letter followed by letters, digits"):
        state_path(name)


def test_the_stream_header_is_qemus_file_magic_and_version_3() -> None:
    # migration/savevm.h: QEMU_VM_FILE_MAGIC 0x5145564d ("QEVM"), QEMU_VM_FILE_VERSION 3
    assert STATE_MAGIC[:4] == b"QEVM" and int.from_bytes(STATE_MAGIC[4:], "big") == 3
