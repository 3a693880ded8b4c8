"""Checkpoints: a VM's saved state (a migration stream in ``/storage/<name>.state``) and its
disks inside committed Docker images, and what decides their reuse.

- :mod:`.fingerprints`: what each checkpoint's fingerprint covers (params, profiles, images,
  and the import closure of its stage code).
- :mod:`.vm`: a stage's VM in a container; ``checkpoint()`` saves the state file, reads it
  back, commits and tags the image.
- :mod:`.store`: the checkpoints on this engine; :mod:`.cache`: the same in a registry.
"""

from vdsmlib.checkpoints.cache import pull_checkpoint, push_checkpoint
from vdsmlib.checkpoints.fingerprints import compute as compute_fingerprints
from vdsmlib.checkpoints.store import CheckpointInfo, list_checkpoints
from vdsmlib.checkpoints.vm import Checkpoint, StageVm

__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "StageVm",
    "compute_fingerprints",
    "list_checkpoints",
    "pull_checkpoint",
    "push_checkpoint",
]
