"""Labels that mark everything vdsm-ci creates, so leftovers can be found and removed.

Every container and checkpoint a build makes carries ``vdsm-ci.owner=vdsm-ci``, the run id and
the run's process (``vdsm-ci.process=<host>:<pid>``, so :func:`run_alive` can tell a live build from
a leftover); checkpoints also carry their stage and fingerprint. The final image carries none of a
run's ownership: containers users start from it are theirs, not a build's leftovers.
"""

from __future__ import annotations

import os
import socket

__all__ = [
    "ACCELERATOR",
    "BUILT_BY",
    "CPU_MODEL",
    "DSM_RELEASE",
    "DSM_VERSION",
    "FINGERPRINT",
    "KIND",
    "MACHINE",
    "OWNER",
    "OWNER_VALUE",
    "PROCESS",
    "PROCESS_ENV",
    "QEMU_VERSION",
    "RESTORE_CPU_CORES",
    "RESTORE_CPU_FLAGS",
    "RESTORE_CPU_VENDOR",
    "RESTORE_RAM_SIZE",
    "RESTORE_RUN",
    "RUN_ID",
    "STAGE",
    "TARGET",
    "owner_labels",
    "process_label",
    "run_alive",
]

OWNER = "vdsm-ci.owner"
OWNER_VALUE = "vdsm-ci"
KIND = "vdsm-ci.kind"  # base | checkpoint | final | stage-container | smoke | sim-run | probe
RUN_ID = "vdsm-ci.run-id"
PROCESS = "vdsm-ci.process"  # <host>:<pid> of the run that created the object
STAGE = "vdsm-ci.stage"
FINGERPRINT = "vdsm-ci.fingerprint"
TARGET = "vdsm-ci.target"
DSM_VERSION = "vdsm-ci.dsm-version"
DSM_RELEASE = "vdsm-ci.dsm-release"
QEMU_VERSION = "vdsm-ci.qemu-version"
ACCELERATOR = "vdsm-ci.accelerator"
MACHINE = "vdsm-ci.machine"
CPU_MODEL = "vdsm-ci.cpu-model"
#: on a final image: what a host needs to restore its snapshot (checked by the image at start)
RESTORE_RUN = "vdsm-ci.restore.run"  # the docker run options, e.g. --device /dev/net/tun
RESTORE_CPU_CORES = "vdsm-ci.restore.cpu-cores"
RESTORE_RAM_SIZE = "vdsm-ci.restore.ram-size"  # the guest's; the container needs 500 MB more
RESTORE_CPU_VENDOR = "vdsm-ci.restore.cpu-vendor"  # the build host's (KVM images need the same)
RESTORE_CPU_FLAGS = "vdsm-ci.restore.cpu-flags"  # of the build host's, those a KVM guest needs
#: on a final image: the run whose smoke test promoted it (a no-op build's record names it)
BUILT_BY = "vdsm-ci.built-by-run"


def owner_labels(kind: str, run_id: str | None = None, **extra: str) -> dict[str, str]:
    """The labels every created object carries, plus ``extra`` (already namespaced keys)."""
    labels = {OWNER: OWNER_VALUE, KIND: kind}
    if run_id:
        labels[RUN_ID] = run_id
        labels[PROCESS] = process_label()
    labels.update(extra)
    return labels


#: set by a build for the processes it starts (stage notebooks' kernels): their objects belong to
#: the build's process, which outlives them
PROCESS_ENV = "VDSM_CI_PROCESS"


def process_label() -> str:
    """``<host>:<pid>`` of the build this process works for (``$VDSM_CI_PROCESS``), or its own."""
    return os.environ.get(PROCESS_ENV) or f"{socket.gethostname()}:{os.getpid()}"


def run_alive(labels: dict[str, str] | None) -> bool:
    """True when the process named by the ``vdsm-ci.process`` label still runs on this host.

    An object without the label, or whose process is gone, belongs to no live run. An object made
    on another host counts as alive: its process cannot be checked from here.
    """
    value = (labels or {}).get(PROCESS, "")
    host, _, pid = value.rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
