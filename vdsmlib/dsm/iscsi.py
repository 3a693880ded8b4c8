"""How DSM's iSCSI LUNs identify themselves to an initiator (SCSI INQUIRY).

Synology's target is LIO-based; its LUNs answer INQUIRY with vendor ``SYNOLOGY`` and product
``Storage``, and their unit serial number (VPD page 0x80) is the LUN's uuid: udev shows
``VENDOR=SYNOLOGY MODEL=Storage SERIAL=<uuid>`` for a mapped LUN (jasoncheng7115/
jt-pve-storage-synology ``docs/TESTING.md``, "How a LUN's uuid becomes a Linux WWID", read from
a host with a DSM LUN attached; the same two strings in the multipath ``device`` section of
public Ansible roles for Synology targets). multipath-tools' built-in hardware table
(opensvc/multipath-tools ``libmultipath/hwtable.c``, 0.14.3 and earlier tags) has no Synology
entry, so multipathd's defaults apply to these LUNs unless configured.

The revision is LIO's own (``4.0``): no public source records DSM's.
"""

from __future__ import annotations

__all__ = ["INQUIRY_PRODUCT", "INQUIRY_VENDOR"]

#: T10 vendor identification (8 characters at most).
INQUIRY_VENDOR = "SYNOLOGY"
#: Product identification (16 characters at most).
INQUIRY_PRODUCT = "Storage"
