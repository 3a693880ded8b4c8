"""DSM Web API error codes and their meanings (shared/facts dsm-webapi.md, "Error codes").

The iSCSI and share codes are those the Synology CSI driver checks (SynologyOpenSource/synology-csi
pkg/dsm/webapi/iscsi.go errCodeMapping, share.go shareErrCodeMapping).

DSM answers a failed call with ``{"success": false, "error": {"code": N}}``. Codes below 400 are
common to every API; from 400 on, the meaning depends on the API: 402 is "permission denied" for
``SYNO.API.Auth`` and "no such share" for ``SYNO.Core.Share``. :func:`meaning` looks up the API's
table first.

Example::

    >>> meaning(400, "SYNO.API.Auth")
    'no such account or wrong password'
    >>> meaning(119)
    'invalid session'
"""

from __future__ import annotations

__all__ = [
    "AUTH_ERRORS",
    "AUTH_FATAL",
    "BY_API",
    "COMMON_ERRORS",
    "ISCSI_ERRORS",
    "SHARE_ERRORS",
    "SMB_ERRORS",
    "meaning",
]

# -- common codes ---------------------------------------------------------------------------
UNKNOWN = 100
BAD_REQUEST = 101
NO_SUCH_API = 102
NO_SUCH_METHOD = 103
VERSION_NOT_SUPPORTED = 104
NO_PERMISSION = 105
SESSION_TIMEOUT = 106
DUPLICATE_LOGIN = 107
LOST_PARAMETERS = 114
NEEDS_MANAGER = 117
INVALID_SESSION = 119
INVALID_PARAMETER = 120

# -- SYNO.API.Auth ----------------------------------------------------------------------------
AUTH_FAILED = 400
AUTH_DISABLED_ACCOUNT = 401
AUTH_PERMISSION_DENIED = 402
AUTH_2FA_REQUIRED = 403
AUTH_2FA_FAILED = 404
AUTH_2FA_ENFORCED = 406
AUTH_BLOCKED_IP = 407
AUTH_PASSWORD_EXPIRED_CANNOT_CHANGE = 408
AUTH_PASSWORD_EXPIRED = 409
AUTH_PASSWORD_MUST_CHANGE = 410
AUTH_ACCOUNT_LOCKED = 411

# -- SYNO.Core.Share --------------------------------------------------------------------------
SHARE_NOT_FOUND = 402
SHARE_INVALID_INPUT = 403
SHARE_FAILED = 3300
SHARE_EXISTS = 3301
SHARE_MAX_COUNT = 3309
SHARE_SYSTEM_BUSY = 3328

# -- SYNO.Core.FileServ.SMB -------------------------------------------------------------------
SMB_PARTIAL_SETTINGS = 2001

# -- SYNO.Core.ISCSI.LUN / Target -------------------------------------------------------------
ISCSI_NO_SPACE = 18990002
ISCSI_BAD_LUN_TYPE = 18990500
ISCSI_NO_SUCH_LUN = 18990531
ISCSI_NO_SUCH_SNAPSHOT = 18990532
ISCSI_DUPLICATE_LUN = 18990538
ISCSI_LUN_MAX_COUNT = 18990541
ISCSI_TARGET_MAX_COUNT = 18990542
ISCSI_SNAPSHOT_MAX_COUNT = 18990543
ISCSI_BAD_TARGET = 18990710
ISCSI_DUPLICATE_TARGET = 18990744

# File Station (Synology's File Station API guide, "Common error codes" and each API's table).
FS_INVALID_PARAMETER = 400
FS_UNKNOWN = 401
FS_NOT_PERMITTED = 407
FS_NO_SUCH_FILE = 408
FS_FILE_EXISTS = 414
FS_NO_SPACE = 416
FS_ILLEGAL_NAME = 418
FS_NO_SUCH_TASK = 599
FS_DELETE_FAILED = 900
FS_COPY_FAILED = 1000
FS_MOVE_FAILED = 1001
FS_DESTINATION_ERROR = 1002
FS_CREATE_FOLDER_FAILED = 1100
FS_RENAME_FAILED = 1200
FS_UPLOAD_INCOMPLETE = 1800
FS_UPLOAD_NO_FILENAME = 1802
FS_UPLOAD_EXISTS = 1805

#: Codes every API may return.
COMMON_ERRORS: dict[int, str] = {
    UNKNOWN: "unknown error",
    BAD_REQUEST: "bad or missing API, method or version parameter",
    NO_SUCH_API: "no such API",
    NO_SUCH_METHOD: "no such method",
    VERSION_NOT_SUPPORTED: "version not supported",
    NO_PERMISSION: "no permission",
    SESSION_TIMEOUT: "session timeout",
    DUPLICATE_LOGIN: "session interrupted by a duplicate login",
    LOST_PARAMETERS: "lost parameters",
    NEEDS_MANAGER: "needs manager rights",
    INVALID_SESSION: "invalid session",
    INVALID_PARAMETER: "invalid parameter",
}

AUTH_ERRORS: dict[int, str] = {
    AUTH_FAILED: "no such account or wrong password",
    AUTH_DISABLED_ACCOUNT: "disabled account",
    AUTH_PERMISSION_DENIED: "permission denied",
    AUTH_2FA_REQUIRED: "2-factor authentication code required",
    AUTH_2FA_FAILED: "2-factor authentication failed",
    AUTH_2FA_ENFORCED: "2-factor authentication is enforced",
    AUTH_BLOCKED_IP: "blocked IP address",
    AUTH_PASSWORD_EXPIRED_CANNOT_CHANGE: "password expired and cannot be changed",
    AUTH_PASSWORD_EXPIRED: "password expired",
    AUTH_PASSWORD_MUST_CHANGE: "password must be changed",
    AUTH_ACCOUNT_LOCKED: "account locked",
}

#: Login errors that waiting does not cure (wrong password, disabled account, 2FA, ...).
AUTH_FATAL: frozenset[int] = frozenset(AUTH_ERRORS)

SHARE_ERRORS: dict[int, str] = {
    SHARE_NOT_FOUND: "no such share",
    SHARE_INVALID_INPUT: "invalid input",
    SHARE_FAILED: "share operation failed (e.g. a clone whose source or snapshot is missing)",
    SHARE_SYSTEM_BUSY: "system busy",
    SHARE_EXISTS: "share already exists",
    SHARE_MAX_COUNT: "maximum number of shares reached",
}

SMB_ERRORS: dict[int, str] = {
    SMB_PARTIAL_SETTINGS: "settings refused (DSM 7.3 wants the whole settings object back)",
}

ISCSI_ERRORS: dict[int, str] = {
    ISCSI_NO_SPACE: "out of space on the volume",
    ISCSI_BAD_LUN_TYPE: "bad LUN type",
    ISCSI_NO_SUCH_LUN: "no such LUN",
    ISCSI_NO_SUCH_SNAPSHOT: "no such snapshot",
    ISCSI_DUPLICATE_LUN: "duplicated LUN name",
    ISCSI_LUN_MAX_COUNT: "maximum number of LUNs reached",
    ISCSI_TARGET_MAX_COUNT: "maximum number of targets reached",
    ISCSI_SNAPSHOT_MAX_COUNT: "maximum number of snapshots reached",
    ISCSI_BAD_TARGET: "bad target id",
    ISCSI_DUPLICATE_TARGET: "duplicated target name",
}

FILESTATION_ERRORS: dict[int, str] = {
    FS_INVALID_PARAMETER: "invalid parameter of file operation",
    FS_UNKNOWN: "unknown error of file operation",
    FS_NOT_PERMITTED: "operation not permitted",
    FS_NO_SUCH_FILE: "no such file or directory",
    FS_FILE_EXISTS: "file already exists",
    FS_NO_SPACE: "no space left on device",
    FS_ILLEGAL_NAME: "illegal name or path",
    FS_NO_SUCH_TASK: "no such task of the file operation",
    FS_DELETE_FAILED: "failed to delete file(s)/folder(s)",
    FS_COPY_FAILED: "failed to copy files/folders",
    FS_MOVE_FAILED: "failed to move files/folders",
    FS_DESTINATION_ERROR: "an error occurred at the destination",
    FS_CREATE_FOLDER_FAILED: "failed to create a folder",
    FS_RENAME_FAILED: "failed to rename it",
    FS_UPLOAD_INCOMPLETE: "no Content-Length or an incomplete upload",
    FS_UPLOAD_NO_FILENAME: "no filename in the upload",
    FS_UPLOAD_EXISTS: "cannot overwrite or skip the existing file: no overwrite parameter",
}

#: API name -> its own codes (looked up before :data:`COMMON_ERRORS`).
BY_API: dict[str, dict[int, str]] = {
    "SYNO.API.Auth": AUTH_ERRORS,
    "SYNO.Core.Share": SHARE_ERRORS,
    "SYNO.Core.Share.Snapshot": SHARE_ERRORS,
    "SYNO.Core.Share.Permission": SHARE_ERRORS,
    "SYNO.Core.FileServ.SMB": SMB_ERRORS,
    "SYNO.Core.ISCSI.LUN": ISCSI_ERRORS,
    "SYNO.Core.ISCSI.Target": ISCSI_ERRORS,
    **{
        f"SYNO.FileStation.{name}": FILESTATION_ERRORS
        for name in (
            "List",
            "Upload",
            "Download",
            "CreateFolder",
            "Delete",
            "Rename",
            "CopyMove",
            "DirSize",
            "MD5",
        )
    },
}


def meaning(code: int, api: str | None = None) -> str:
    """DSM's meaning of ``code`` for ``api`` (``"unknown error code"`` if DSM's lists lack it)."""
    if api:
        table = BY_API.get(api)
        if table and code in table:
            return table[code]
    return COMMON_ERRORS.get(code, "unknown error code")
