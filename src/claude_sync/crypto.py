"""Cryptographic primitives of repository format v1, all from PyCA `cryptography`.

* master key: 32 random bytes; everything else is derived from it with HKDF-SHA256.
* envelope: version byte, 12-byte random nonce, AES-256-GCM ciphertext and tag; the associated
  data binds the envelope to the name it is stored under, so objects cannot be swapped.
* blob ids: HMAC-SHA256 under a key derived from the master key, so equal plaintexts dedup
  without the backend learning any content hash.
* passphrases: Argon2id with a random salt per key object; parameters travel with the object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from claude_sync.errors import CorruptionError, WrongKeyError

ENVELOPE_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
AAD_PREFIX = b"claude-sync/v1\x00"

DEFAULT_KDF_PARAMS = {"iterations": 3, "lanes": 4, "memory_cost": 65536}
# Refuse key objects that would make us spend unbounded time or memory.
MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024
MAX_KDF_ITERATIONS = 64


def random_key() -> bytes:
    return os.urandom(KEY_SIZE)


def _aad(name: str) -> bytes:
    return AAD_PREFIX + name.encode()


def seal(key: bytes, name: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return bytes([ENVELOPE_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(name))


def open_sealed(key: bytes, name: str, envelope: bytes | memoryview) -> bytes:
    """Decrypt an envelope; any tampering, truncation or swap raises CorruptionError."""
    # A view, not slices: blobs are opened straight out of 8 MiB packs, without copies.
    view = memoryview(envelope)
    if len(view) < 1 + NONCE_SIZE + TAG_SIZE or view[0] != ENVELOPE_VERSION:
        raise CorruptionError(f"object {name} is damaged (bad envelope)")
    nonce = bytes(view[1 : 1 + NONCE_SIZE])
    try:
        return AESGCM(key).decrypt(nonce, view[1 + NONCE_SIZE :], _aad(name))
    except InvalidTag:
        raise CorruptionError(
            f"object {name} failed authentication (damaged or tampered)"
        ) from None


def hkdf(master: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=b"claude-sync/v1/" + purpose.encode(),
    ).derive(master)


class KeyRing:
    """Caches the derived keys; HKDF per object would be wasted work on the hot path."""

    def __init__(self, master: bytes) -> None:
        self.master = master
        self.encryption = hkdf(master, "encryption")
        self.mac_key = hkdf(master, "blob-id")

    def blob_id(self, data: bytes | memoryview) -> str:
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest()

    def seal(self, name: str, plaintext: bytes) -> bytes:
        return seal(self.encryption, name, plaintext)

    def open(self, name: str, envelope: bytes | memoryview) -> bytes:
        return open_sealed(self.encryption, name, envelope)


def derive_kek(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    try:
        iterations = int(params["iterations"])
        lanes = int(params["lanes"])
        memory_cost = int(params["memory_cost"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CorruptionError("key object has malformed KDF parameters") from None
    if not (1 <= iterations <= MAX_KDF_ITERATIONS and 1 <= lanes <= 64):
        raise CorruptionError("key object has out-of-range KDF parameters")
    if not (8 * lanes <= memory_cost <= MAX_KDF_MEMORY_KIB):
        raise CorruptionError("key object has out-of-range KDF parameters")
    return Argon2id(
        salt=salt, length=KEY_SIZE, iterations=iterations, lanes=lanes, memory_cost=memory_cost
    ).derive(passphrase.encode())


def wrap_master(master: bytes, passphrase: str, name: str) -> dict[str, object]:
    salt = os.urandom(16)
    params = dict(DEFAULT_KDF_PARAMS)
    kek = derive_kek(passphrase, salt, params)
    return {
        "version": 1,
        "kdf": "argon2id",
        "params": params,
        "salt": b64(salt),
        "data": b64(seal(kek, name, master)),
    }


def unwrap_master(obj: dict[str, object], passphrase: str, name: str) -> bytes:
    if obj.get("version") != 1 or obj.get("kdf") != "argon2id":
        raise CorruptionError(f"key object {name} has an unknown format")
    params = obj.get("params")
    if not isinstance(params, dict):
        raise CorruptionError(f"key object {name} is malformed")
    salt = unb64(obj.get("salt"), name)
    kek = derive_kek(passphrase, salt, params)
    try:
        master = open_sealed(kek, name, unb64(obj.get("data"), name))
    except CorruptionError:
        raise WrongKeyError("wrong passphrase") from None
    if len(master) != KEY_SIZE:
        raise CorruptionError(f"key object {name} is malformed")
    return master


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise CorruptionError(f"object {name} is malformed")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise CorruptionError(f"object {name} is malformed") from None


RECOVERY_PREFIX = "csr1"


def recovery_key(master: bytes) -> str:
    """Human-copyable master key: base32 in groups, with a 4-byte checksum against typos."""
    check = hashlib.sha256(master).digest()[:4]
    text = base64.b32encode(master + check).decode().rstrip("=")
    groups = [text[i : i + 6] for i in range(0, len(text), 6)]
    return "-".join([RECOVERY_PREFIX, *groups])


def parse_recovery_key(text: str) -> bytes:
    cleaned = "".join(text.split()).replace("-", "").upper()
    if not cleaned.startswith(RECOVERY_PREFIX.upper()):
        raise WrongKeyError("that is not a claude-sync recovery key")
    body = cleaned[len(RECOVERY_PREFIX) :]
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise WrongKeyError("the recovery key is mistyped") from None
    master, check = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if len(master) != KEY_SIZE or hashlib.sha256(master).digest()[:4] != check:
        raise WrongKeyError("the recovery key is mistyped")
    return master
