"""HTML of every screen of the simulated DSM, rendered on the server.

The markup is minimal but exact for the selectors and texts of shared/facts/dsm-ui-7.2.2.md;
``static/app.js`` only swaps these fragments in and wires their buttons to ``/sim/ui/*``.
Elements the automation keys on carry the facts' classes, ``syno-id``s and texts verbatim.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .scenario import EXTRA_DIALOG_ID, WIZARD_SCREENS
from .state import Session, SimState

__all__ = ["View", "current_view", "page", "panel", "welcome_admin_form"]

View = dict[str, Any]

#: Texts of the screens, verbatim from the facts where the facts name them.
T_WELCOME = "Welcome to DSM 7"
T_WELCOME_DESC = "Next-generation data management begins here"
T_ADMIN_TITLE = "Get started with your VirtualDSM"


def _e(text: str) -> str:
    return escape(text, quote=True)


def page(view: View, hostname: str) -> str:
    """The whole HTML document for ``GET /`` with ``view`` already rendered inside."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(hostname)} - Synology VirtualDSM</title>"
        '<link rel="stylesheet" href="/sim/static/style.css">'
        '<script src="/sim/static/app.js" defer></script>'
        "</head><body>"
        f'<div id="sim-root" data-view="{_e(view["view"])}" '
        f'data-screen="{_e(view.get("screen") or "")}">{view["html"]}</div>'
        "</body></html>\n"
    )


# -- before setup -----------------------------------------------------------------------------


def _installing() -> str:
    return (
        '<div class="sim-installing welcome-page-bg">'
        '<div class="sim-installing-card">'
        '<div class="sim-installing-title">Installing DSM</div>'
        '<div class="sim-installing-desc">Please wait while DSM is being installed. '
        "This page will refresh by itself.</div>"
        '<div class="sim-spinner"></div>'
        "</div></div>"
    )


def _welcome() -> str:
    return (
        '<div class="welcome-page welcome-page-bg">'
        '<div class="welcome-page-content">'
        '<div class="welcome-page-logo">Synology</div>'
        f'<div class="welcome-page-title">{_e(T_WELCOME)}</div>'
        f'<div class="welcome-page-desc">{_e(T_WELCOME_DESC)}</div>'
        '<button type="button" class="welcome-page-btn" data-sim-action="start">Start</button>'
        "</div></div>"
    )


def _field(index: int, name: str, label: str, kind: str, value: str = "") -> str:
    field_key = "password_confirm" if index == 3 else name
    return (
        f'<div class="v-form-item" data-sim-field="{field_key}">'
        f'<label class="v-form-item-label" for="syno-{index}">{_e(label)}</label>'
        '<div class="v-form-item-control">'
        f'<input id="syno-{index}" name="{name}" type="{kind}" class="v-input" '
        f'value="{_e(value)}" autocomplete="off" spellcheck="false">'
        "</div></div>"
    )


def welcome_admin_form(hostname: str) -> str:
    """The admin account form (section 2 of the facts)."""
    return (
        '<div class="welcome-app welcome-page-bg" data-sim-screen="admin-form">'
        '<div class="welcome-app-card">'
        f'<div class="welcome-step-title">{_e(T_ADMIN_TITLE)}</div>'
        '<div class="welcome-step-desc">Enter a server name and create an administrator '
        "account to manage your VirtualDSM.</div>"
        '<form class="v-form" autocomplete="off" onsubmit="return false">'
        + _field(0, "device_name", "Server name", "text", hostname)
        + _field(1, "nas_account", "Administrator account", "text")
        + _field(2, "password", "Password", "password")
        + _field(3, "password", "Confirm password", "password")
        + "</form>"
        '<div class="welcome-app-fbar">'
        '<button type="button" class="v-btn v-btn-main" data-sim-action="admin-submit">'
        "Next</button></div>"
        "</div></div>"
    )


# -- post-wizard screens ----------------------------------------------------------------------

_UPDATE_OPTIONS = (
    ("auto", "Install the latest DSM and package updates automatically"),
    ("important", "Install important DSM and package updates automatically (recommended)"),
    ("notify", "Notify me and let me decide whether to install the new update"),
)


def _wizard_page(screen: str, title: str, body: str, fbar: str) -> str:
    return (
        f'<div class="welcome-app welcome-page-bg" data-sim-screen="{screen}">'
        '<div class="welcome-app-card">'
        f'<div class="welcome-step-title">{_e(title)}</div>'
        f'<div class="welcome-step-body">{body}</div>'
        f'<div class="welcome-app-fbar">{fbar}</div>'
        "</div></div>"
    )


def _screen_button(syno_id: str, text: str, act: str, main: bool = True) -> str:
    kind = "v-btn-main" if main else "v-btn-sub"
    return (
        f'<button type="button" class="v-btn {kind}" syno-id="{syno_id}" '
        f'data-sim-action="screen" data-sim-act="{act}">{_e(text)}</button>'
    )


def _update_options(state: SimState) -> str:
    radios = []
    for key, label in _UPDATE_OPTIONS:
        checked = key == state.update_option
        radios.append(
            f'<div class="v-radio-wrapper{" v-radio-wrapper-checked" if checked else ""}" '
            f'syno-id="welcome-app-select-update-radio-{key}" data-sim-radio="{key}" '
            f'role="radio" aria-checked="{"true" if checked else "false"}">'
            '<span class="v-radio"><input type="radio" class="v-radio-input" '
            f'name="update_option" value="{key}"{" checked" if checked else ""}>'
            '<span class="v-radio-inner"></span></span>'
            f'<span class="v-radio-label">{_e(label)}</span></div>'
        )
    return _wizard_page(
        "update-options",
        "Select an update option",
        '<div class="v-radio-group">' + "".join(radios) + "</div>",
        _screen_button("welcome-app-wizard-fbar-next", "Next", "next"),
    )


def _synology_account() -> str:
    return _wizard_page(
        "synology-account",
        "Create a Synology Account",
        '<div class="welcome-step-desc">Sign in with your Synology Account to access online '
        "services such as QuickConnect and DDNS.</div>",
        _screen_button("welcome-app-wizard-fbar-back", "Skip", "skip", main=False),
    )


def _user_experience() -> str:
    return _wizard_page(
        "user-experience",
        "Opt-in for a better user experience",
        '<div class="welcome-step-desc">Help improve Synology products by sending device '
        "analytics. No personal data is collected.</div>"
        '<label class="v-checkbox-wrapper"><input type="checkbox" class="v-checkbox-input" '
        'name="device_analytics"><span class="v-checkbox-label">Allow Synology to collect '
        "device analytics</span></label>",
        _screen_button("welcome-app-wizard-fbar-next", "Submit", "submit"),
    )


def _mask() -> str:
    return '<div class="v-window-container-mask v-window-mask"></div>'


def _promotion(screen: str, title: str, desc: str, skip_id: str, skip_text: str) -> str:
    return (
        _mask() + f'<div class="v-window syno-promotion-app" syno-id="promotion-app-window" '
        f'role="dialog" data-sim-screen="{screen}">'
        '<div class="v-window-header"><span class="v-window-header-title">Synology</span>'
        '<i class="v-close-btn x-tool-close" data-sim-action="screen" data-sim-act="close">'
        "</i></div>"
        '<div class="v-window-body">'
        f'<div class="title">{_e(title)}</div>'
        f'<div class="desc">{_e(desc)}</div></div>'
        '<div class="v-window-fbar">'
        + _screen_button(skip_id, skip_text, "skip", main=False)
        + "</div></div>"
    )


def _msgbox(screen: str, text: str, button_id: str, window_id: str, title: str = "") -> str:
    header = (
        f'<div class="v-window-header"><span class="v-window-header-title">{_e(title)}</span></div>'
        if title
        else ""
    )
    return (
        _mask() + f'<div class="v-window v-message-box" syno-id="{window_id}" role="dialog" '
        f'data-sim-screen="{screen}">{header}'
        f'<div class="v-window-body"><div class="dialog-content">{_e(text)}</div></div>'
        '<div class="v-window-fbar">' + _screen_button(button_id, "OK", "ok") + "</div></div>"
    )


def _notification_setup() -> str:
    return (
        '<div class="v-notification-panel" data-sim-screen="notification-setup">'
        '<div class="v-notification-header">'
        '<div class="v-notification-title">Notification Setup</div>'
        '<i class="close-btn window-tool-close" data-sim-action="screen" data-sim-act="close">'
        "</i></div>"
        '<div class="v-notification-body">Set up email, SMS or push notifications to be '
        "informed about system events.</div></div>"
    )


def _desktop_screen(state: SimState, screen: str) -> str:
    if screen == "file-access-promo":
        return _promotion(
            screen,
            "Securely Access and Share Files From Anywhere",
            "Install Synology Drive Server to access and share files from any device.",
            "syno-promotion-preinstall-btn-skip",
            "No, thanks",
        )
    if screen == "2fa-promo":
        return _promotion(
            screen,
            "Enable 2-Factor Authentication (2FA)",
            "Add a second sign-in step to protect your account.",
            "syno-promotion-ss-btn-skip",
            "Skip",
        )
    if screen == "amfa-promo":
        return _promotion(
            screen,
            "Protect your account with Adaptive MFA",
            "Require an extra verification when a sign-in looks suspicious.",
            "syno-promotion-manually-amfa-btn-give-up",
            "No, thanks",
        )
    if screen == "mfa-warning":
        return _msgbox(
            screen,
            "We strongly recommend enabling 2FA or Adaptive MFA",
            "promotion-app-window-msgbox-fbar-commit",
            "promotion-app-window-msgbox",
        )
    if screen == "notification-setup":
        return _notification_setup()
    if screen == "notification-reminder":
        return _msgbox(
            screen,
            "You can enable notifications later",
            "window-manager-msg-box-fbar-commit",
            "window-manager-msg-box",
        )
    if screen == EXTRA_DIALOG_ID:
        text = state.scenario.extra_dialog
        return _msgbox(screen, text, "sim-extra-dialog-fbar-ok", "sim-extra-dialog", title=text)
    raise ValueError(f"no desktop screen {screen!r}")


# -- desktop, Control Panel -------------------------------------------------------------------

_DESKTOP_ITEMS = (
    ("SYNO.SDS.PkgManApp.Instance", "Package Center", "pkg"),
    ("SYNO.SDS.AdminCenter.Application", "Control Panel", "cp"),
    ("SYNO.SDS.App.FileStation3.Instance", "File Station", "fs"),
)


def _desktop(state: SimState, session: Session) -> str:
    items = "".join(
        f'<li class="icon-item" syno-id="{app}" data-sim-open="{key}">'
        f'<div class="icon-image icon-{key}"></div>'
        f'<div class="icon-title" elementtiming="desktop-item-title">{_e(title)}</div></li>'
        for app, title, key in _DESKTOP_ITEMS
    )
    return (
        f'<div class="sds-desktop" id="sds-desktop" data-synotoken="{_e(session.synotoken)}">'
        '<div class="sds-taskbar"><div class="sds-taskbar-start"></div>'
        f'<div class="sds-taskbar-user">{_e(session.user)}</div>'
        '<div class="sds-taskbar-logout" data-sim-action="logout" title="Sign out"></div></div>'
        f'<ul class="sds-desktop-shortcut">{items}</ul>'
        '<div id="sds-windows"></div>'
        "</div>"
    )


_CP_ITEMS = (
    ("SYNO.SDS.AdminCenter.Share.Main", "Shared Folder"),
    ("SYNO.SDS.AdminCenter.FileService.Main", "File Services"),
    ("SYNO.SDS.AdminCenter.User.Main", "User & Group"),
    ("SYNO.SDS.AdminCenter.Network.Main", "Network"),
    ("SYNO.SDS.AdminCenter.Security.Main", "Security"),
    ("SYNO.SDS.AdminCenter.Update_Reset.Main", "Update & Restore"),
)


def _checkbox(name: str, label: str, checked: bool) -> str:
    # The input is moved out of the way like DSM's styled checkbox: only the icon (and the
    # label) react to clicks; app.js toggles the input from there.
    return (
        f'<div class="syno-ux-checkbox{" syno-ux-checkbox-checked" if checked else ""}">'
        f'<input type="checkbox" name="{name}" class="syno-ux-checkbox-input"'
        f'{" checked" if checked else ""} tabindex="-1">'
        '<div class="syno-ux-checkbox-icon" role="checkbox" '
        f'aria-checked="{"true" if checked else "false"}"></div>'
        f'<span class="syno-ux-checkbox-label">{_e(label)}</span></div>'
    )


def _tab(key: str, text: str, active: bool) -> str:
    return (
        f'<li class="x-tab-item{" x-tab-strip-active" if active else ""}" data-sim-tab="{key}">'
        '<a class="x-tab-strip-inner-wrap"><em class="x-tab-left">'
        f'<span class="x-tab-strip-inner"><span class="x-tab-strip-text">{_e(text)}</span>'
        "</span></em></a></li>"
    )


def _file_services(state: SimState) -> str:
    with state.lock:
        nfs_on = bool(state.nfs["enable_nfs"])
        nfs_v4 = bool(state.nfs["enable_nfs_v4"])
        smb_on = bool(state.smb["enable_samba"])
        workgroup = str(state.smb["workgroup"])
    tabs = "".join(
        _tab(key, text, key == "smb")
        for key, text in (("smb", "SMB"), ("nfs", "NFS"), ("ftp", "FTP"), ("advanced", "Advanced"))
    )
    smb_body = (
        '<fieldset class="x-fieldset"><legend class="x-fieldset-header">SMB</legend>'
        + _checkbox("enable_samba", "Enable SMB service", smb_on)
        + '<div class="x-form-item"><label class="x-form-item-label">Workgroup:</label>'
        f'<span class="x-form-display-field">{_e(workgroup)}</span></div></fieldset>'
    )
    nfs_body = (
        '<fieldset class="x-fieldset"><legend class="x-fieldset-header">NFS</legend>'
        + _checkbox("enable_nfs", "Enable NFS service", nfs_on)
        + '<div class="x-form-item"><label class="x-form-item-label">Maximum NFS protocol:'
        f'</label><span class="x-form-display-field">NFSv{"4.1" if nfs_v4 else "3"}</span>'
        "</div></fieldset>"
    )
    other = '<div class="sim-unavailable">This service is not configured by the simulator.</div>'
    bodies = "".join(
        f'<div class="x-panel sim-tab-body{"" if key == "smb" else " x-hide-display"}" '
        f'data-sim-tab-body="{key}">{body}</div>'
        for key, body in (
            ("smb", smb_body),
            ("nfs", nfs_body),
            ("ftp", other),
            ("advanced", other),
        )
    )
    return (
        '<div class="sim-fileservice" data-sim-module="file-services">'
        '<div class="x-tab-panel"><div class="x-tab-panel-header">'
        f'<ul class="x-tab-strip x-tab-strip-top">{tabs}</ul></div>'
        f'<div class="x-tab-panel-body">{bodies}</div></div>'
        '<div class="x-panel-fbar sim-fileservice-fbar">'
        '<div class="sim-statusbar"></div>'
        '<table class="x-btn syno-ux-button syno-ux-button-blue"><tbody><tr><td class="x-btn-mc">'
        '<em><button type="button" class="x-btn-text" data-sim-action="fs-apply">Apply</button>'
        "</em></td></tr></tbody></table>"
        '<table class="x-btn syno-ux-button"><tbody><tr><td class="x-btn-mc">'
        '<em><button type="button" class="x-btn-text" data-sim-action="fs-reset">Reset</button>'
        "</em></td></tr></tbody></table></div></div>"
    )


def _cp_grid() -> str:
    items = "".join(
        f'<div class="sim-cp-item" fn="{fn}" data-sim-cp="{fn}">'
        f'<div class="sim-cp-icon"></div><div class="sim-cp-title">{_e(title)}</div></div>'
        for fn, title in _CP_ITEMS
    )
    return f'<div class="sim-cp-grid">{items}</div>'


def _cp_nav(active: str) -> str:
    items = "".join(
        f'<div class="sim-cp-nav-item{" sim-cp-nav-active" if fn == active else ""}" '
        f'fn="{fn}" data-sim-cp="{fn}">{_e(title)}</div>'
        for fn, title in _CP_ITEMS
    )
    return f'<div class="sim-cp-nav">{items}</div>'


def panel(state: SimState, name: str) -> str | None:
    """A Control Panel fragment: ``control-panel`` (the window with its grid) or a module by
    its ``fn`` (nav + module body); None if unknown."""
    if name == "control-panel":
        return (
            '<div class="x-window sds-window sim-control-panel" '
            'syno-id="SYNO.SDS.AdminCenter.MainWindow">'
            '<div class="x-window-header"><span class="x-window-header-text">Control Panel'
            '</span><div class="x-tool x-tool-close" data-sim-action="window-close"></div></div>'
            f'<div class="x-window-body" id="sim-cp-body">{_cp_grid()}</div></div>'
        )
    titles = dict(_CP_ITEMS)
    if name not in titles:
        return None
    if name == "SYNO.SDS.AdminCenter.FileService.Main":
        body = _file_services(state)
    else:
        body = '<div class="sim-unavailable">This page is not part of the simulator.</div>'
    return (
        _cp_nav(name)
        + f'<div class="sim-cp-main"><div class="sim-cp-main-title">{_e(titles[name])}</div>'
        f"{body}</div>"
    )


# -- login ------------------------------------------------------------------------------------


def _login(state: SimState) -> str:
    return (
        '<div class="login-page welcome-page-bg">'
        '<div class="login-panel">'
        f'<div class="login-title">{_e(state.hostname)}</div>'
        '<div class="login-step" data-sim-login-step="account">'
        '<input type="text" name="username" id="login_username" class="login-textfield" '
        'placeholder="Enter user name" autocomplete="username" spellcheck="false">'
        '<button type="button" class="login-btn" syno-id="login-btn-next" '
        'data-sim-action="login-next">&#8594;</button></div>'
        '<div class="login-step" data-sim-login-step="password" hidden>'
        '<div class="login-account-name"></div>'
        '<input type="password" name="current-password" id="login_passwd" '
        'class="login-textfield" placeholder="Enter password" autocomplete="current-password">'
        '<button type="button" class="login-btn" syno-id="login-btn-signin" '
        'data-sim-action="login-submit">&#8594;</button></div>'
        '<div class="login-error" role="alert" hidden></div>'
        "</div></div>"
    )


# -- which view -------------------------------------------------------------------------------


def current_view(state: SimState, session: Session | None, want: str = "") -> View:
    """The view ``GET /`` shows now: ``installing``, ``welcome``, ``admin``, ``login``,
    ``screen`` (with the screen id) or ``desktop``. ``want="admin"`` asks for the admin form
    (after the welcome button), honoured only while that is possible."""
    with state.lock:
        if state.account is None:
            if not state.install_ready():
                return {"view": "installing", "html": _installing()}
            if want == "admin":
                return {"view": "admin", "html": welcome_admin_form(state.hostname)}
            return {"view": "welcome", "html": _welcome()}
        if not state.is_admin(session) or session is None:
            return {"view": "login", "html": _login(state)}
        screen = state.current_screen()
        if screen is None:
            return {"view": "desktop", "html": _desktop(state, session)}
        if screen in WIZARD_SCREENS:
            html = {
                "update-options": lambda: _update_options(state),
                "synology-account": _synology_account,
                "user-experience": _user_experience,
            }[screen]()
        else:
            html = _desktop(state, session) + _desktop_screen(state, screen)
        return {"view": "screen", "screen": screen, "html": html}
