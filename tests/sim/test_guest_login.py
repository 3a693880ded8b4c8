"""DSM 7's login as stock clients do it over http, HTTPS on DSM's 5001, and monitoring reads.

The encrypted login is done the way N4S4/synology-api (synology_api/auth.py ``login``,
``encrypt_params``, ``AESCipher``) does it, with the real OpenSSL command line on the client side:
the 501-character passphrase is RSA-encrypted (PKCS#1 v1.5) with the modulus from
``SYNO.API.Encryption`` and the url-encoded parameters are encrypted with ``openssl enc
-aes-256-cbc -md md5`` (OpenSSL's ``Salted__`` format).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import string
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from vdsm_sim.guest.crypto import x25519

from tests.guest import run_guest
from tests.sim.test_guest_api import ADMIN, PASSWORD, SERVER_NAME, call, create_admin, err, ok

GuestServer = Any


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    return _der(0x02, raw)


def public_key_pem(modulus_hex: str, exponent: int = 65537) -> bytes:
    """A SubjectPublicKeyInfo PEM for the RSA modulus DSM publishes (hex) and exponent 65537."""
    rsa_key = _der(0x30, _der_int(int(modulus_hex, 16)) + _der_int(exponent))
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_key))
    b64 = base64.encodebytes(spki).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
    ).encode()


def openssl(args: list[str], data: bytes, tmp: Path) -> bytes:
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, cwd=tmp, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def encrypt_params(info: dict[str, Any], params: dict[str, Any], tmp: Path) -> dict[str, str]:
    """synology_api/auth.py encrypt_params, with the openssl command line."""
    alphabet = string.digits + string.ascii_letters + "~!@#$%^&*()_+-/"
    passphrase = "".join(secrets.choice(alphabet) for _ in range(501))
    params = dict(params, **{info["ciphertoken"]: info["server_time"]})
    (tmp / "pub.pem").write_bytes(public_key_pem(info["public_key"]))
    rsa = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem"], passphrase.encode(), tmp)
    (tmp / "pass").write_text(passphrase)
    aes = openssl(
        ["enc", "-aes-256-cbc", "-md", "md5", "-salt", "-pass", "file:pass"],
        urllib.parse.urlencode(params).encode(),
        tmp,
    )
    sealed = {"rsa": base64.b64encode(rsa).decode(), "aes": base64.b64encode(aes).decode()}
    return {info["cipherkey"]: json.dumps(sealed)}


@pytest.fixture(scope="module")
def rsa_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One login key for the module, made by the guest's own generator (as the image does)."""
    path = tmp_path_factory.mktemp("rsa") / "key.json"
    made = subprocess.run(
        [sys.executable, "-m", "vdsm_sim.guest.crypto"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    path.write_text(made.stdout)
    return path


@pytest.fixture(scope="module")
def guest(guest_launcher: Any, rsa_key_file: Path) -> Iterator[GuestServer]:
    env = {"SIM_SCREENS": "", "SIM_REQUIRE_SYNOTOKEN": "1", "SIM_RSA_KEY_FILE": str(rsa_key_file)}
    with guest_launcher(env) as server:
        assert create_admin(server.url).json()["ok"] is True
        yield server


def stock_login(
    base: str, tmp: Path, password: str = PASSWORD, account: str = ADMIN
) -> tuple[requests.Session, dict[str, Any]]:
    """The DSM 7 login of synology_api/auth.py: discovery, UIConfig, Encryption, login v7."""
    http = requests.Session()
    apis = ok(
        call(
            base,
            "query.cgi",
            session=http,
            api="SYNO.API.Info",
            version=1,
            method="query",
            query="all",
        )
    )
    for name in (
        "SYNO.API.Auth",
        "SYNO.API.Encryption",
        "SYNO.API.Auth.UIConfig",
        "SYNO.API.Auth.Type",
    ):
        assert name in apis, name
    # The login page's handshake: UIConfig through the entry.cgi/<api> path form.
    resp = http.post(
        f"{base}/webapi/entry.cgi/SYNO.API.Auth.UIConfig",
        data={"api": "SYNO.API.Auth.UIConfig", "method": "get", "version": "1"},
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json()["success"] is True, resp.text
    # get_ik_message: the page's static X25519 key in cookie _SSID (base64url, 32 bytes).
    ssid = http.cookies.get("_SSID")
    assert ssid and len(base64.urlsafe_b64decode(ssid + "=" * (-len(ssid) % 4))) == 32
    types = ok(
        call(base, session=http, api="SYNO.API.Auth.Type", version=1, method="get", account=account)
    )
    assert {"type": "passwd"} in types
    # The key is generated at the guest's start (seconds; more under TCG): getinfo waits for it.
    resp = http.get(
        f"{base}/webapi/{apis['SYNO.API.Encryption']['path']}",
        params={
            "api": "SYNO.API.Encryption",
            "method": "getinfo",
            "version": "1",
            "format": "module",
        },
        timeout=300,
    )
    info = resp.json()["data"]
    assert int(info["public_key"], 16).bit_length() == 4096
    # The guest's clock, not the client's: a guest restored from a snapshot runs behind until
    # it is set; the client only sends it back.
    assert isinstance(info["server_time"], int) and info["server_time"] > 1_700_000_000
    hidden = {
        "account": account,
        "enable_device_token": "no",
        "logintype": "local",
        "otp_code": "",
        "rememberme": 0,
        "passwd": password,
        "session": "webui",
        "format": "cookie",
    }
    data = {
        "api": "SYNO.API.Auth",
        "version": 7,
        "method": "login",
        "enable_syno_token": "yes",
        "client": "browser",
    }
    data.update(encrypt_params(info, hidden, tmp))
    assert "passwd" not in data and PASSWORD not in json.dumps(data)
    envelope = http.post(
        f"{base}/webapi/{apis['SYNO.API.Auth']['path']}", data=data, timeout=30
    ).json()
    return http, envelope


def test_stock_client_logs_in_with_encrypted_params_and_reads_nfs(
    guest: GuestServer, tmp_path: Path
) -> None:
    http, envelope = stock_login(guest.url, tmp_path)
    login = ok(envelope)
    assert login["sid"] and login["synotoken"]
    assert http.cookies.get("id") == login["sid"]  # format=cookie, inside the encrypted params
    token = {"X-SYNO-TOKEN": login["synotoken"]}
    nfs = ok(
        call(
            guest.url,
            session=http,
            headers=token,
            api="SYNO.Core.FileServ.NFS",
            version=2,
            method="get",
        )
    )
    assert nfs["enable_nfs"] is False and nfs["support_major_ver"] == 4
    services = ok(
        call(
            guest.url, session=http, headers=token, api="SYNO.Core.Service", version=3, method="get"
        )
    )
    assert any(s["service_id"] == "nfs-server" for s in services["service"])
    # 7.3.2 behaviour (SIM_REQUIRE_SYNOTOKEN=1): a write needs the token, the cookie alone is 119.
    write: dict[str, Any] = {
        "api": "SYNO.Core.FileServ.NFS",
        "version": 2,
        "method": "set",
        "enable_nfs": "true",
    }
    assert err(call(guest.url, session=http, **write)) == 119
    ok(call(guest.url, session=http, headers=token, **write))
    assert (
        ok(
            call(
                guest.url,
                session=http,
                headers=token,
                api="SYNO.Core.FileServ.NFS",
                version=2,
                method="get",
            )
        )["enable_nfs"]
        is True
    )
    key = ok(call(guest.url, session=http, api="SYNO.API.Auth.Key", version=7, method="get"))
    assert key["key"]


def test_encrypted_login_with_a_wrong_password_or_a_forged_blob_fails(
    guest: GuestServer, tmp_path: Path
) -> None:
    _, envelope = stock_login(guest.url, tmp_path, password="Wr0ngPassword")
    assert err(envelope) == 400
    forged = {
        "__cIpHeRtExT": json.dumps({"rsa": base64.b64encode(b"x" * 512).decode(), "aes": "AAAA"})
    }
    envelope = requests.post(
        f"{guest.url}/webapi/auth.cgi",
        data={"api": "SYNO.API.Auth", "version": 7, "method": "login", **forged},
        timeout=30,
    ).json()
    assert err(envelope) == 400


def test_monitoring_reads(guest: GuestServer) -> None:
    base = guest.url
    login = ok(
        call(
            base,
            "auth.cgi",
            api="SYNO.API.Auth",
            version=6,
            method="login",
            account=ADMIN,
            passwd=PASSWORD,
            format="sid",
            enable_syno_token="yes",
        )
    )
    sid = login["sid"]
    media = json.dumps({"name": "media", "vol_path": "/volume1"})
    ok(
        call(
            base,
            api="SYNO.Core.Share",
            version=1,
            method="create",
            name="media",
            shareinfo=media,
            _sid=sid,
            SynoToken=login["synotoken"],
        )
    )
    fs = ok(call(base, api="SYNO.FileStation.Info", version=2, method="get", _sid=sid))
    assert fs["hostname"] == SERVER_NAME and fs["is_manager"] is True
    shares = ok(call(base, api="SYNO.FileStation.List", version=2, method="list_share", _sid=sid))
    assert {"isdir": True, "name": "media", "path": "/media"} in shares["shares"]
    storage = ok(
        call(base, api="SYNO.Core.System", version=1, method="info", type="storage", _sid=sid)
    )
    assert storage["vol_info"][0]["volume"] == "volume_1" and storage["hdd_info"]
    network = ok(
        call(base, api="SYNO.Core.System", version=1, method="info", type="network", _sid=sid)
    )
    assert network["hostname"] == SERVER_NAME
    dsm_net = ok(call(base, api="SYNO.DSM.Network", version=2, method="list", _sid=sid))
    assert dsm_net["hostname"] == SERVER_NAME and dsm_net["interfaces"][0]["id"] == "eth0"
    load = ok(call(base, api="SYNO.Storage.CGI.Storage", version=1, method="load_info", _sid=sid))
    assert load["volumes"][0]["vol_path"] == "/volume1" and load["disks"] and load["storagePools"]
    util = ok(call(base, api="SYNO.Core.System.Utilization", version=1, method="get", _sid=sid))
    assert {"cpu", "memory", "network", "disk", "space", "time"} <= set(util)
    # Without a session these are 119, like every admin API.
    assert err(call(base, api="SYNO.FileStation.Info", version=2, method="get")) == 119


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_on_a_tls_port(tmp_path: Path) -> None:
    """The guest serves DSM's 5001 with a self-signed certificate, as the image runs it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=simnas",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        "SIM_SCREENS": "",
        "SIM_TLS_PORT": "0",
        "SIM_TLS_CERT": str(cert),
        "SIM_TLS_KEY": str(key),
    }
    with run_guest(env) as server:
        line = next(x for x in server.log().splitlines() if "listening on https://" in x)
        https = line.split("listening on ", 1)[1].strip()
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        url = f"{https}/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query"
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            body = json.load(resp)
            assert resp.headers["Content-Type"].startswith("application/json")
        assert body["success"] is True and "SYNO.API.Auth" in body["data"]
        # curl -k, as the issue asks of the final image.
        out = subprocess.run(
            ["curl", "-sk", url], capture_output=True, text=True, check=True
        ).stdout
        assert json.loads(out)["success"] is True
        # The same state on both ports: the admin made over http logs in over https.
        assert create_admin(server.url).json()["ok"] is True
        login = requests.get(
            f"{https}/webapi/auth.cgi",
            params={
                "api": "SYNO.API.Auth",
                "version": "3",
                "method": "login",
                "account": ADMIN,
                "passwd": PASSWORD,
                "format": "sid",
            },
            verify=False,
            timeout=10,
        ).json()
        assert login["success"] is True
        # Plain http on the TLS port is refused, not answered.
        with pytest.raises(requests.RequestException):
            requests.get(url.replace("https://", "http://"), timeout=5).json()


def test_x25519_matches_rfc_7748() -> None:
    """The _SSID key is real X25519 (RFC 7748 section 5.2, first vector; section 6.1 keys)."""
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    assert x25519(scalar, u).hex() == expected
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert x25519(alice, (9).to_bytes(32, "little")).hex() == alice_public
