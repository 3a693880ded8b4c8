"""Labels that mark everything vdsm-ci creates, so leftovers can be found and removed.

Every container and image the build makes carries ``vdsm-ci.owner=vdsm-ci`` and the run id;
checkpoints and final images also carry their stage and fingerprint.
"""

from __future__ import annotations

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
    "QEMU_VERSION",
    "RUN_ID",
    "STAGE",
    "TARGET",
    "owner_labels",
]

OWNER = "vdsm-ci.owner"
OWNER_VALUE = "vdsm-ci"
KIND = "vdsm-ci.kind"  # base | checkpoint | final | stage-container | smoke | sim-run | probe
RUN_ID = "vdsm-ci.run-id"
STAGE = "vdsm-ci.stage"
FINGERPRINT = "vdsm-ci.fingerprint"
TARGET = "vdsm-ci.target"
DSM_VERSION = "vdsm-ci.dsm-version"
DSM_RELEASE = "vdsm-ci.dsm-release"
QEMU_VERSION = "vdsm-ci.qemu-version"
ACCELERATOR = "vdsm-ci.accelerator"
MACHINE = "vdsm-ci.machine"
CPU_MODEL = "vdsm-ci.cpu-model"
#: on a final image: the run whose smoke test promoted it (a no-op build's record names it)
BUILT_BY = "vdsm-ci.built-by-run"


def owner_labels(kind: str, run_id: str | None = None, **extra: str) -> dict[str, str]:
    """The labels every created object carries, plus ``extra`` (already namespaced keys)."""
    labels = {OWNER: OWNER_VALUE, KIND: kind}
    if run_id:
        labels[RUN_ID] = run_id
    labels.update(extra)
    return labels
