"""Shared test data: the simulator's post-wizard screen ids -> the DSM 7.2.2 profile's ids.

The simulator names screens by its knobs (``SIM_SCREENS``); the profile names them for
screenshots and reports. Tests that compare the two go through this one table.
"""

SIM_TO_PROFILE = {
    "update-options": "update-options",
    "synology-account": "synology-account",
    "user-experience": "user-experience",
    "file-access-promo": "file-access-promotion",
    "2fa-promo": "2fa-promotion",
    "amfa-promo": "adaptive-mfa-promotion",
    "mfa-warning": "mfa-warning",
    "notification-setup": "notification-setup",
    "notification-reminder": "notification-reminder",
}
