"""DSM's account rules for the first-run wizard's admin form, as pure functions.

The library validates build params with them before any container starts, and the simulator's
admin form enforces the same rules. Each function returns a list of problems in DSM's wording;
an empty list means the value is fine.

The rules (DSM 7.2 defaults: the admin form keeps a value that breaks them on screen with an
error tooltip, shared/facts dsm-ui-7.2.2.md section 2):

- Server name: 1-15 characters, letters, digits and hyphens only, not starting or ending with a
  hyphen.
- User name: 1-64 characters of letters, digits, ``-``, ``_`` and ``.``; not starting with ``-``
  or ``.``; not a name reserved by the system (``admin``, ``guest``, ``root`` and other system
  accounts, compared case-insensitively): DSM 7 disables the built-in ``admin`` and asks for a new
  administrator account.
- Password: 8-127 characters, at least one upper-case letter, one lower-case letter and one digit,
  must not contain the user name (case-insensitive), and the confirmation must match.

Example::

    >>> check_password("secret", "alice")
    ['The password must contain at least 8 characters.', ...]
    >>> check_password("Sup3rSecret", "alice")
    []
"""

from __future__ import annotations

import re

__all__ = [
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "RESERVED_USER_NAMES",
    "SERVER_NAME_MAX_LENGTH",
    "USER_NAME_MAX_LENGTH",
    "check_admin_form",
    "check_password",
    "check_server_name",
    "check_user_name",
]

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 127
USER_NAME_MAX_LENGTH = 64
SERVER_NAME_MAX_LENGTH = 15

#: Names DSM keeps for built-in or system accounts and groups.
RESERVED_USER_NAMES = frozenset(
    {
        "admin",
        "administrator",
        "administrators",
        "guest",
        "root",
        "system",
        "daemon",
        "nobody",
        "users",
        "everyone",
        "ftp",
        "anonymous",
        "http",
        "postfix",
        "mysql",
        "sshd",
        "lp",
    }
)

_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9-]+$")
_USER_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def check_server_name(name: str) -> list[str]:
    """Problems with a server (device) name; empty if DSM would accept it."""
    problems: list[str] = []
    if not name:
        return ["Please enter a server name."]
    if len(name) > SERVER_NAME_MAX_LENGTH:
        problems.append(f"The server name can contain up to {SERVER_NAME_MAX_LENGTH} characters.")
    if not _SERVER_NAME_RE.match(name):
        problems.append("The server name can only contain letters, numbers and hyphens (-).")
    elif name.startswith("-") or name.endswith("-"):
        problems.append("The server name cannot start or end with a hyphen (-).")
    return problems


def check_user_name(name: str) -> list[str]:
    """Problems with an administrator user name; empty if DSM would accept it."""
    problems: list[str] = []
    if not name:
        return ["Please enter a user name."]
    if len(name) > USER_NAME_MAX_LENGTH:
        problems.append(f"The user name can contain up to {USER_NAME_MAX_LENGTH} characters.")
    if not _USER_NAME_RE.match(name):
        problems.append(
            "The user name can only contain letters, numbers, periods (.), "
            "hyphens (-) and underscores (_)."
        )
    elif name[0] in "-.":
        problems.append("The user name cannot start with a hyphen (-) or a period (.).")
    if name.lower() in RESERVED_USER_NAMES:
        problems.append(f'The user name "{name}" is reserved by the system.')
    return problems


def check_password(password: str, user: str) -> list[str]:
    """Problems with a password for user ``user``; empty if DSM's default policy accepts it."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"The password must contain at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"The password can contain up to {PASSWORD_MAX_LENGTH} characters.")
    if not (re.search(r"[a-z]", password) and re.search(r"[A-Z]", password)):
        problems.append("The password must include mixed case letters.")
    if not re.search(r"[0-9]", password):
        problems.append("The password must include numeric characters.")
    if user and user.lower() in password.lower():
        problems.append("The password must not contain the user name.")
    return problems


def check_admin_form(
    device_name: str, user: str, password: str, confirm: str
) -> dict[str, list[str]]:
    """All problems of the admin form, by field name (``device_name``, ``nas_account``,
    ``password``, ``password_confirm``); empty dict if the form is acceptable."""
    found = {
        "device_name": check_server_name(device_name),
        "nas_account": check_user_name(user),
        "password": check_password(password, user),
        "password_confirm": [] if password == confirm else ["The passwords do not match."],
    }
    return {field: problems for field, problems in found.items() if problems}
