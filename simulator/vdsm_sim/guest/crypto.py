"""The cryptography of DSM's encrypted login, with the standard library only (the guest has
nothing else): RSA key generation and PKCS#1 v1.5 decryption with ``pow``, AES-256-CBC decryption
and OpenSSL's ``Salted__`` key derivation (EVP_BytesToKey with MD5).

A client asks ``SYNO.API.Encryption`` ``getinfo`` for the RSA modulus (hex, exponent 65537), the
name of the parameter to send (``cipherkey``) and of the time stamp to put among the encrypted
parameters (``ciphertoken``). It then sends ``{cipherkey: json({"rsa": b64(RSA(passphrase)),
"aes": b64(AES(urlencode(params)))})}``; see FACTS.md, "Encrypted login".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass

__all__ = [
    "CIPHER_KEY_NAME",
    "CIPHER_TOKEN_NAME",
    "RSA_BITS",
    "TOKEN_LIFETIME",
    "RsaKey",
    "generate_rsa_key",
    "openssl_aes_decrypt",
    "rsa_decrypt",
    "x25519",
    "x25519_keypair",
]

CIPHER_KEY_NAME = "__cIpHeRtExT"
CIPHER_TOKEN_NAME = "__cIpHeRtOkEn"
#: Clients send a 501-character passphrase (N4S4/synology-api auth.py encrypt_params), which
#: PKCS#1 v1.5 fits only in a 4096-bit modulus.
RSA_BITS = 4096
#: How far (seconds) the encrypted time stamp may be from the server's clock.
TOKEN_LIFETIME = 600

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


@dataclass(frozen=True)
class RsaKey:
    """An RSA private key (CRT form)."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def size_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def decrypt_int(self, c: int) -> int:
        dp, dq = self.d % (self.p - 1), self.d % (self.q - 1)
        m1, m2 = pow(c, dp, self.p), pow(c, dq, self.q)
        h = (pow(self.q, -1, self.p) * (m1 - m2)) % self.p
        return m2 + h * self.q


def _probably_prime(n: int, rounds: int = 24) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % e and _probably_prime(candidate):
            return candidate


def generate_rsa_key(bits: int = RSA_BITS, e: int = 65537) -> RsaKey:
    """A fresh RSA key of ``bits`` bits (Miller-Rabin primes)."""
    while True:
        p, q = _prime(bits // 2, e), _prime(bits - bits // 2, e)
        n = p * q
        if p != q and n.bit_length() == bits:
            d = pow(e, -1, (p - 1) * (q - 1))
            return RsaKey(n=n, e=e, d=d, p=p, q=q)


def rsa_decrypt(key: RsaKey, b64: str) -> bytes:
    """PKCS#1 v1.5 (block type 2) decryption of base64 ``b64``; ValueError if malformed."""
    data = base64.b64decode(b64)
    if len(data) != key.size_bytes:
        raise ValueError("ciphertext length does not match the key")
    block = key.decrypt_int(int.from_bytes(data, "big")).to_bytes(key.size_bytes, "big")
    sep = block.find(b"\x00", 2)
    if block[:2] != b"\x00\x02" or sep < 10:
        raise ValueError("bad PKCS#1 v1.5 padding")
    return block[sep + 1 :]


# -- AES-256 decryption (FIPS-197), written for clarity rather than speed ---------------------


def _xtime(a: int) -> int:
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _gmul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        a, b = _xtime(a), b >> 1
    return out


def _make_sbox() -> tuple[list[int], list[int]]:
    sbox = [0] * 256
    for x in range(256):
        inv = 0 if x == 0 else next(y for y in range(1, 256) if _gmul(x, y) == 1)
        s = inv
        for shift in range(1, 5):
            s ^= ((inv << shift) | (inv >> (8 - shift))) & 0xFF
        sbox[x] = s ^ 0x63
    inverse = [0] * 256
    for x, s in enumerate(sbox):
        inverse[s] = x
    return sbox, inverse


_SBOX, _INV_SBOX = _make_sbox()
_MUL = {k: [_gmul(x, k) for x in range(256)] for k in (9, 11, 13, 14)}


def _expand_key(key: bytes) -> list[list[int]]:
    nk, rounds = len(key) // 4, len(key) // 4 + 6
    words = [list(key[4 * i : 4 * i + 4]) for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (rounds + 1)):
        temp = list(words[i - 1])
        if i % nk == 0:
            temp = [_SBOX[b] for b in temp[1:] + temp[:1]]
            temp[0] ^= rcon
            rcon = _xtime(rcon)
        elif nk > 6 and i % nk == 4:
            temp = [_SBOX[b] for b in temp]
        words.append([a ^ b for a, b in zip(words[i - nk], temp, strict=True)])
    return [[b for w in words[4 * r : 4 * r + 4] for b in w] for r in range(rounds + 1)]


def _decrypt_block(round_keys: list[list[int]], block: bytes) -> bytes:
    state = [b ^ k for b, k in zip(block, round_keys[-1], strict=True)]
    for r in range(len(round_keys) - 2, -1, -1):
        # InvShiftRows then InvSubBytes (state is column-major: index = 4 * col + row).
        state = [_INV_SBOX[state[4 * ((c - row) % 4) + row]] for c in range(4) for row in range(4)]
        state = [b ^ k for b, k in zip(state, round_keys[r], strict=True)]
        if r:
            mixed = []
            for c in range(4):
                a0, a1, a2, a3 = state[4 * c : 4 * c + 4]
                m9, m11, m13, m14 = _MUL[9], _MUL[11], _MUL[13], _MUL[14]
                mixed += [
                    m14[a0] ^ m11[a1] ^ m13[a2] ^ m9[a3],
                    m9[a0] ^ m14[a1] ^ m11[a2] ^ m13[a3],
                    m13[a0] ^ m9[a1] ^ m14[a2] ^ m11[a3],
                    m11[a0] ^ m13[a1] ^ m9[a2] ^ m14[a3],
                ]
            state = mixed
    return bytes(state)


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC decryption with PKCS#7 unpadding; ValueError if malformed."""
    if len(key) not in (16, 24, 32) or len(iv) != 16 or not data or len(data) % 16:
        raise ValueError("bad AES key, IV or ciphertext length")
    round_keys = _expand_key(key)
    out = bytearray()
    prev = iv
    for i in range(0, len(data), 16):
        block = data[i : i + 16]
        out += bytes(a ^ b for a, b in zip(_decrypt_block(round_keys, block), prev, strict=True))
        prev = block
    pad = out[-1]
    if not 1 <= pad <= 16 or out[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad PKCS#7 padding")
    return bytes(out[:-pad])


def openssl_aes_decrypt(passphrase: bytes, b64: str) -> bytes:
    """Decrypt OpenSSL's ``Salted__`` AES-256-CBC format (key and IV from EVP_BytesToKey, MD5)."""
    data = base64.b64decode(b64)
    if data[:8] != b"Salted__" or len(data) < 32:
        raise ValueError("not OpenSSL salted data")
    salt, body = data[8:16], data[16:]
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.md5(block + passphrase + salt).digest()
        derived += block
    return aes_cbc_decrypt(derived[:32], derived[32:48], body)


# -- X25519 (RFC 7748), for the ``_SSID`` static key of DSM 7's login page --------------------

_P25519 = 2**255 - 19


def x25519(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 X25519: the Montgomery ladder on Curve25519."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    n = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P25519, (x2 - z2) % _P25519
        aa, bb = a * a % _P25519, b * b % _P25519
        e = (aa - bb) % _P25519
        c, d = (x3 + z3) % _P25519, (x3 - z3) % _P25519
        da, cb = d * a % _P25519, c * b % _P25519
        x3 = (da + cb) ** 2 % _P25519
        z3 = x1 * (da - cb) ** 2 % _P25519
        x2 = aa * bb % _P25519
        z2 = e * (aa + 121665 * e) % _P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P25519 - 2, _P25519) % _P25519).to_bytes(32, "little")


def x25519_keypair() -> tuple[bytes, bytes]:
    """(private, public) X25519 keys."""
    private = secrets.token_bytes(32)
    return private, x25519(private, (9).to_bytes(32, "little"))


def main() -> int:
    """``python -m <package>.crypto``: print a fresh key as JSON, at the lowest CPU priority (the
    guest generates its login key in a child process so its web server never waits on it)."""
    os.nice(19)
    json.dump(asdict(generate_rsa_key()), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
