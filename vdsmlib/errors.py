"""The root of every error vdsmlib raises.

::

    VdsmError
     +-- ParamsError                (vdsmlib.params: unknown version, weak password, bad value, ...)
     +-- ProjectError               (vdsmlib.project: params, notebooks or Dockerfiles not found)
     +-- PluginError                (vdsmlib.pipeline.plugins: no plugin of that name, or it fails)
     +-- PreflightError             (vdsmlib.pipeline.preflight: Docker down, disk full, ...)
     +-- StageError                 (vdsmlib.pipeline.run: a build stage failed; names the stage)
     +-- PublishError               (vdsmlib.pipeline.publish: nothing to publish, bad repository)
     +-- DockerError                (vdsmlib.docker.engine: a Docker engine operation failed)
     |    +-- DockerUnavailable     (vdsmlib.docker.engine: the engine cannot be reached)
     |    +-- ContainerExited       (vdsmlib.docker.container: the container stopped too early)
     |    +-- RegistryError         (vdsmlib.docker.registry: a push or a pull failed)
     +-- QmpError                   (vdsmlib.qemu.errors: QMP connection and command failures)
     |    +-- SnapshotError         (vdsmlib.qemu.errors: a snapshot failed or did not read back)
     |    +-- MigrationError        (vdsmlib.qemu.errors: saving or loading a state file failed)
     +-- QemuToolError              (vdsmlib.qemu.errors: qemu-img / qemu-system missing or failing)
     +-- AcceleratorProbeError      (vdsmlib.qemu.accel: the KVM probe container could not run)
     +-- CheckpointRestoreError     (vdsmlib.checkpoints.check: a checked checkpoint did not load)
     +-- NotReady                   (vdsmlib.readiness: a probe's "not yet"; always retried)
     |    +-- _LoginNotYet          (vdsmlib.webapi.readiness: a login failure that may go away)
     +-- ReadinessTimeout           (vdsmlib.readiness: a wait ran out of time)
     |    +-- ReadinessAborted      (vdsmlib.readiness: what was waited on died: container exited)
     +-- SyncInEventLoopError       (vdsmlib.readiness: a sync wait inside a running event loop)
     +-- WebApiError                (vdsmlib.webapi.errors: a Web API call failed, with DSM's code)
     |    +-- ServicesMismatch      (vdsmlib.services.api: DSM's services differ from the spec)
     +-- DataPlaneError             (vdsmlib.services.dataplane: an SMB, NFS or iSCSI check failed)
     +-- WizardError                (vdsmlib.wizard.errors: a wizard stage failed; with its report)
     |    +-- ProfileError          (vdsmlib.wizard.errors: a profile does not load or fit)
     |    +-- ScreenError           (vdsmlib.wizard.errors: handling a known screen failed)
     |    +-- UnknownScreenError    (vdsmlib.wizard.errors: no known screen showed in time)
     |    +-- RequiredScreenMissing (vdsmlib.wizard.errors: a required screen never showed)
     |    +-- BrowserError          (vdsmlib.wizard.errors: Chromium could not be launched or used)
     +-- PatError                   (vdsmlib.pat: download failures, size/checksum mismatch)
     +-- BuildFailed                (vdsmlib.notebook.display: the build failed, in one line)
     +-- DsmNotReady                (vdsmlib.testing.container: DSM accepted no login in time)

Every message says what failed, with evidence (command, log tail, screenshot path, URL),
and what to do next. Third-party errors are wrapped with ``raise ... from err``;
``KeyboardInterrupt`` and ``asyncio.CancelledError`` are never wrapped.

The tree names every subclass of :class:`VdsmError` that vdsmlib defines, under its parent,
with the module that defines it; ``tests/unit/test_errors_tree.py`` checks it against the code.
The simulator (its own distribution, in ``simulator/``) derives its own errors
from :class:`VdsmError` too: ``SimImageError`` (building its image) and ``SimRunError``
(``vdsm sim run`` could not start it). They are not vdsmlib's and are not drawn above.
"""

from __future__ import annotations

__all__ = ["VdsmError"]


class VdsmError(Exception):
    """Base class of all errors raised by vdsmlib."""
