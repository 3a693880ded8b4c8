"""The simulated DSM 7.2.2 that runs inside the simulator's QEMU guest.

One Python process (3.11 or later; 3.13 in the guest), the standard library and DSM's facts
(:mod:`vdsmlib.dsm`, stdlib-only) only, serving on port 5000 the DSM web UI (the DOM of
shared/facts/dsm-ui-7.2.2.md) and the DSM Web API subset of shared/facts/dsm-webapi.md. All state
(admin account, completed wizard screens, service switches, shares, iSCSI LUNs and targets,
sessions) lives in process memory only, never on disk: QEMU savevm/loadvm carries it, as it
carries a real DSM's. Relative imports within the package, and DSM's facts from
:mod:`vdsmlib.dsm` (:mod:`.facts`): on the host it runs as
``python -m vdsm_sim.guest --host 127.0.0.1 --port N`` with the installed vdsmlib; in the guest
it is copied as top-level package ``guest`` beside a copy of vdsmlib's stdlib-only files
(``/opt/sim/vdsmlib``) and run as ``python3 -m guest --host 0.0.0.0 --port 5000``
(PYTHONPATH=/opt/sim).

Scenario knobs (environment variables, read once at startup)
------------------------------------------------------------

``SIM_INSTALL_DELAY``
    Seconds after server start before the welcome button appears (default 0). Before that ``/``
    shows an "Installing DSM" page without ``button.welcome-page-btn``; it refreshes by itself.
``SIM_SCREENS``
    Comma list of post-wizard screen ids, in order (default: all nine, in the facts' order):
    ``update-options, synology-account, user-experience, file-access-promo, 2fa-promo,
    amfa-promo, mfa-warning, notification-setup, notification-reminder``. Set but empty: none.
    An unknown id stops the server at startup (exit code 2).
``SIM_SCREEN_SEED``
    Integer. Reproducibly drops some optional screens (synology-account, user-experience,
    file-access-promo, amfa-promo) of the ``SIM_SCREENS`` list and shuffles the rest: the three
    welcome-wizard steps (update-options, synology-account, user-experience, full page) stay
    first, in shuffled order; the desktop screens follow, shuffled, with two data-flow rules:
    ``mfa-warning`` shows only if a 2FA/Adaptive MFA promotion shows, right after the first of
    them; ``notification-reminder`` shows only if ``notification-setup`` shows, right after it.
``SIM_EXTRA_DIALOG``
    Text of an unexpected dialog shown among the post-wizard screens: a ``div.v-window`` whose
    header title and ``div.dialog-content`` carry the text, over a ``.v-window-container-mask``,
    with button ``button[syno-id='sim-extra-dialog-fbar-ok']`` "OK" (a syno-id the facts do not
    know). It shows right after the welcome-wizard steps, or at a seeded position among the
    desktop screens when ``SIM_SCREEN_SEED`` is set. Its screen id is ``extra-dialog``.
``SIM_TOAST``
    Text of a non-modal notification on the desktop (``div.v-notification-panel`` with
    ``role="status"``, no mask, a close tool that only hides it): DSM leaves such notifications
    around, and they must block nothing. Shown on every desktop view.
``SIM_TRANSITION_MS``
    Milliseconds a post-wizard screen keeps showing after its action (default 0).
``SIM_SAVE_MS``
    Milliseconds saving the admin form takes (default 0); the form title stays visible meanwhile.
``SIM_REQUIRE_SYNOTOKEN``
    ``1``: DSM 7.3.2 behaviour. Web API writes (set/create/delete/map_target/unmap_target)
    without the session's token in header ``X-SYNO-TOKEN`` or param ``SynoToken`` fail with
    error 119, and ``SYNO.Core.FileServ.SMB set`` with a partial object fails with 2001.
    Otherwise tokens are not checked and partial SMB objects are accepted.
``SIM_DSM_VERSION``
    Reported version string (default ``DSM 7.2.2-72806``); the build number after the first
    ``-`` is ``SYNO.DSM.Info`` ``version``; the whole string is ``firmware_ver`` and
    ``version_string``.
``SIM_HOSTNAME``
    Server name before setup (default ``VirtualDSM``); the admin form prefills it and replaces
    it with the chosen server name.
``SIM_VOLUME_ROOT``
    The directory File Station serves as ``/volume1`` (default ``/volume1``, the volume SMB and
    NFS serve in the guest); a test's own directory when the guest runs on the host.

Account policy
--------------

DSM's rules, from :mod:`vdsmlib.dsm.policy` (shared with the library; see :mod:`.facts`):
server name 1-15 letters, digits, hyphens; user name not reserved (admin, guest, root, ...);
password 8-127 characters with upper and lower case letters and a digit, not containing the
user name; confirmation must match.
Violations keep the form on screen with ``.v-tooltip-error`` / ``.error-msg`` texts under the
fields; the server enforces the same rules.

UI beyond the facts
-------------------

- Login page (a configured system, browser without a valid ``id`` cookie), two steps:
  ``input[name=username]`` (``#login_username``), Enter (or ``button[syno-id=login-btn-next]``);
  then ``input[name=current-password]`` (``#login_passwd``, type password), Enter (or
  ``button[syno-id=login-btn-signin]``). A wrong password shows ``div.login-error``. The page
  logs in through the Web API (``SYNO.API.Auth`` v7, ``format=cookie``): UI and Web API share
  sessions (cookie ``id``).
- The post-wizard screens are one table, :data:`.screens.SCREENS` (id, kind, title, body,
  buttons and what each action does, whether a seed may drop it); titles, selectors and button
  ids come from :mod:`vdsmlib.dsm.screens`. The desktop titles carry newlines and indentation
  around the words, as DSM's template renders them.
- Post-wizard screens 1-3 are full-page welcome-wizard steps; the others are drawn over the
  desktop (promotions and message boxes over ``.v-window-container-mask``; the notification
  panel without a mask). Every action is POSTed, so completion lives in the server and a reload
  shows the next undone screen.
- Styled checkboxes (``enable_nfs``, ``enable_samba``): the ``input`` is moved off-screen with
  zero size and ignores clicks; ``input + div.syno-ux-checkbox-icon`` (and the label) toggle it.
  Apply saves through the Web API (NFS set, SMB get + full set, with ``X-SYNO-TOKEN``) and shows
  ``div.syno-ux-statusbar-success`` "Changes applied".
- ``GET /sim/state``: JSON summary of the state for tests (no passwords, no session ids).

Web API choices where the facts leave room
------------------------------------------

- Sessions come from param ``_sid`` or cookie ``id``. No session at all: 105; an unknown or
  logged-out one: 119. Sessions do not expire (106 is never returned).
- ``SYNO.API.Auth`` login works on auth.cgi and entry.cgi, needs version 3+ (103 below), 400 on
  a wrong account/password or before the admin exists; ``synotoken`` only for v6+ with
  ``enable_syno_token=yes``; ``format=cookie`` (the default) also sets cookie ``id``; ``sid`` is
  always in the data. query.cgi serves only SYNO.API.Info, auth.cgi only SYNO.API.Auth (102
  otherwise). ``query=all`` lists a recorded real DSM 7 catalogue (vdsmlib.dsm.webapi).
- Values may be JSON-encoded (``"\\"/volume1\\""``, ``["a"]``) or plain; both are accepted.
- Duplicate iSCSI target name or IQN: 18990744. Thick LUN types (FILE, BLOCK, BLUN_THICK)
  count against the free space of ``/volume1`` (18990002 when too big); thin ones do not.
- Share names: 1-32 characters without ``!"#$%&'()*+,/:;<=>?@[]\\^`{|}~``, unique
  case-insensitively (3301), only on ``/volume1`` (403 otherwise).

Fresh state: ``enable_nfs`` false, ``enable_samba`` true (DSM 7 default), iSCSI service enabled
(SAN Manager is preinstalled), no shares, LUNs or targets; ``/volume1`` is Btrfs.
"""

__all__: list[str] = []
