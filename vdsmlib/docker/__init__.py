"""Docker, through the docker SDK: the engine (:mod:`.engine`), containers that own a VM
(:mod:`.container`), images and cleanup (:mod:`.images`), the labels everything carries
(:mod:`.labels`), networks, a registry, and the host route to DSM's own address (:mod:`.route`).

Import from the modules (``from vdsmlib.docker.container import VmContainer``): this package
imports nothing itself, so the consumers' light install (pytest-vdsm) ships only the module it
uses.
"""

__all__: list[str] = []
