"""DSM Web API: a sync client (:mod:`.client`), DSM's error codes (:mod:`.errors`) and file
services as desired state (:mod:`.services`)."""

from vdsmlib.webapi.client import DsmClient, DsmSession, Json, choose_version, encode_params
from vdsmlib.webapi.errors import WebApiError, error_meaning
from vdsmlib.webapi.services import (
    IscsiLunSpec,
    IscsiSpec,
    IscsiTargetSpec,
    ServicesMismatch,
    ServicesReport,
    ServicesSpec,
    ShareSpec,
    apply,
    verify,
)

__all__ = [
    "DsmClient",
    "DsmSession",
    "IscsiLunSpec",
    "IscsiSpec",
    "IscsiTargetSpec",
    "Json",
    "ServicesMismatch",
    "ServicesReport",
    "ServicesSpec",
    "ShareSpec",
    "WebApiError",
    "apply",
    "choose_version",
    "encode_params",
    "error_meaning",
    "verify",
]
