"""What each checkpoint's fingerprint covers (the inputs that can change its result).

A checkpoint holds the work of every stage before it, so its fingerprint covers the code those
stages run (listed below, relative to the vdsmlib package) as well as their params, profiles and
images. ``tests/unit/test_fingerprints.py`` checks that these lists cover every vdsmlib module the
stage code reaches, and that editing any of them invalidates the right checkpoint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from vdsmlib.build.fingerprint import VDSMLIB_DIR, files_digest, fingerprint, sources_digest
from vdsmlib.params import Params
from vdsmlib.project import project_dir
from vdsmlib.wizard import profile_files

if TYPE_CHECKING:
    from vdsmlib.build.base import PreparedBase

__all__ = [
    "BOOT_SOURCES",
    "CONFIGURE_SOURCES",
    "IMAGE_PROJECT_FILES",
    "IMAGE_SOURCES",
    "NOT_IN_CHECKPOINTS",
    "compute",
]

#: code of prepare and boot (stage_boot itself lives in build/stages.py): start-ready and later
BOOT_SOURCES = (
    "build/stages.py",
    "build/base.py",
    "build/context.py",
    "build/vm.py",
    "docker",
    "qemu",
    "wizard",
    "readiness.py",
    "resource.py",
    "params.py",
    "pat.py",
    "dsm",
)
#: code of admin, post-wizard and services: the final checkpoint and later
CONFIGURE_SOURCES = (
    "build/stages.py",
    "build/context.py",
    "build/vm.py",
    "docker",
    "wizard",
    "webapi",
    "readiness.py",
    "params.py",
    "dsm",
    "dataplane.py",  # the services stage writes the build file into a share before `final`
)
#: code and files of flatten: the final image only
IMAGE_SOURCES = ("build/flatten.py", "build/vm.py", "build/assets/healthcheck.sh")
IMAGE_PROJECT_FILES = ("Dockerfile.flatten",)
#: reached from the stage code, but cannot change what a checkpoint holds: orchestration, the
#: build record, the checkpoint cache (it moves images, never changes them), the fingerprint
#: rules, plugin and project lookup (the simulator's own code
#: reaches checkpoints through its image id, ``base_id``)
NOT_IN_CHECKPOINTS = (
    "__init__.py",
    "build/__init__.py",
    "build/run.py",
    "build/plan.py",
    "build/record.py",
    "build/report.py",
    "build/preflight.py",
    "build/checkpoints.py",
    "build/cache.py",
    "build/fingerprint.py",
    "build/fingerprints.py",
    "build/janitor.py",
    "errors.py",
    "plugins.py",
    "project.py",
)


def compute(
    params: Params,
    base: PreparedBase,
    *,
    package_dir: Path = VDSMLIB_DIR,
    project: Path | None = None,
) -> dict[str, str]:
    """Fingerprints of the checkpoints (``start-ready``, ``final``) and the final image.

    ``package_dir`` and ``project`` (default: :func:`vdsmlib.project.project_dir`) say where
    the code and the project files are read from.
    """
    project = project or project_dir()
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
            "sources": sources_digest(BOOT_SOURCES, package_dir=package_dir),
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
            "sources": sources_digest(CONFIGURE_SOURCES, package_dir=package_dir),
        },
        previous=boot,
    )
    image = fingerprint(
        {
            "flatten": sources_digest(IMAGE_SOURCES, package_dir=package_dir),
            "project_files": files_digest(project / name for name in IMAGE_PROJECT_FILES),
            "guest_address": params.base.guest_address,
            "repository": params.image.repository,
            "dsm_release": params.dsm_release,
        },
        previous=final,
    )
    return {"start-ready": boot, "final": final, "image": image}
