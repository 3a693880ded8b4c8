"""What each stage's fingerprint covers (the inputs that can change its result)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from vdsmlib.build.fingerprint import ROOT_FILES, files_digest, fingerprint, sources_digest
from vdsmlib.params import Params
from vdsmlib.wizard import profile_files

if TYPE_CHECKING:
    from vdsmlib.build.base import PreparedBase

__all__ = ["compute"]

#: vdsmlib code whose change invalidates the start-ready checkpoint
BOOT_SOURCES = ("build/vm.py", "qemu/snapshot.py", "docker/container.py")
#: vdsmlib code whose change invalidates the final checkpoint
CONFIGURE_SOURCES = ("wizard", "webapi", "build/stages.py")


def compute(params: Params, base: PreparedBase) -> dict[str, str]:
    """Fingerprints of the checkpoints (``start-ready``, ``final``) and the final image."""
    boot = fingerprint(
        {
            "base_id": base.base_id,
            "qemu_version": base.qemu_version,
            "accelerator": base.accelerator,
            "vm": params.vm.model_dump(exclude={"accelerator"}),
            "env": params.env,
            "run": params.run.model_dump(),
            "disk_base": params.base.disk_base,
            "pat_sha256": base.pat_sha256,
            "profile": files_digest(
                profile_files(params.profile, "boot", search=params.profile_dirs)
            ),
            "sources": sources_digest(BOOT_SOURCES),
        },
        previous=base.prepare_fingerprint,
    )
    stages = ["admin", "post-wizard"] + (["services-ui"] if params.nfs_via == "ui" else [])
    final = fingerprint(
        {
            "admin": {
                "server_name": params.admin.server_name,
                "user": params.admin.user,
                "password_sha256": hashlib.sha256(params.admin.password.encode()).hexdigest(),
            },
            "services": params.services.model_dump(mode="json"),
            "nfs_via": params.nfs_via,
            "profiles": {
                s: files_digest(profile_files(params.profile, s, search=params.profile_dirs))
                for s in stages
            },
            "sources": sources_digest(CONFIGURE_SOURCES),
        },
        previous=boot,
    )
    image = fingerprint(
        {
            "flatten": files_digest(ROOT_FILES),
            "guest_address": params.base.guest_address,
            "repository": params.image.repository,
            "dsm_release": params.dsm_release,
        },
        previous=final,
    )
    return {"start-ready": boot, "final": final, "image": image}
