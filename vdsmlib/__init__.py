"""vdsmlib: build Docker images of Synology Virtual DSM that start already configured."""

from vdsmlib.errors import VdsmError

__all__ = ["VdsmError"]
__version__ = "0.1.0"
