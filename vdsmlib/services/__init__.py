"""DSM's file services as desired state: declared (:mod:`.spec`), applied and verified through
the Web API (:mod:`.api`), and used as a client would (:mod:`.dataplane`: SMB, NFSv4, iSCSI).

Params import the spec; the services stage applies it; the smoke stage proves the data plane.
"""

from vdsmlib.services.api import ServicesMismatch, ServicesReport, apply, verify
from vdsmlib.services.dataplane import DataPlaneError, Endpoints
from vdsmlib.services.spec import ServicesSpec, ShareSpec, dsm_iqn

__all__ = [
    "DataPlaneError",
    "Endpoints",
    "ServicesMismatch",
    "ServicesReport",
    "ServicesSpec",
    "ShareSpec",
    "apply",
    "dsm_iqn",
    "verify",
]
