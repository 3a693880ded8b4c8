"""DSM's Web API: a sync client (:mod:`.client`), DSM's error codes (:mod:`.errors`) and the
wait objects that say when DSM is up or accepts a login (:mod:`.readiness`)."""

from vdsmlib.webapi.client import DsmClient, DsmSession, Json
from vdsmlib.webapi.errors import WebApiError, error_meaning
from vdsmlib.webapi.readiness import DsmApiReady, DsmLoginReady

__all__ = [
    "DsmApiReady",
    "DsmClient",
    "DsmLoginReady",
    "DsmSession",
    "Json",
    "WebApiError",
    "error_meaning",
]
