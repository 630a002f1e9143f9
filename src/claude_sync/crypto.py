"""Cryptographic primitives of repository format v1, all from PyCA `cryptography`.

* master key: 32 random bytes; everything else is derived from it with HKDF-SHA256.
* envelope: version byte, 12-byte random nonce, AES-256-GCM ciphertext and tag; the associated
  data binds the envelope to the name it is stored under, so objects cannot be swapped.
* blob ids: HMAC-SHA256 under a key derived from the master key, so equal plaintexts dedup
  without the backend learning any content hash.
* passphrases: Argon2id with a random salt per key object; parameters travel with the object.
* key epochs: each epoch's data key is sealed to X25519 recipients (one per key object) the
  way age and HPKE base mode do it: an ephemeral X25519 exchange, HKDF-SHA256 bound to both
  public keys, then the AES-256-GCM envelope. Envelopes of an epoch carry its number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from blake3 import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from claude_sync import identity
from claude_sync.errors import CorruptionError, RevokedError, WrongKeyError
from claude_sync.identity import FileHash

ENVELOPE_VERSION = 1
#: an envelope sealed under a key epoch's data key: the epoch number follows the version byte
EPOCH_ENVELOPE_VERSION = 2
EPOCH_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
AAD_PREFIX = b"claude-sync/v1\x00"

DEFAULT_KDF_PARAMS = {"iterations": 3, "lanes": 4, "memory_cost": 65536}
# Refuse key objects that would make us spend unbounded time or memory.
MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024
MAX_KDF_ITERATIONS = 64


def random_key() -> bytes:
    """A fresh 32-byte key from the operating system's CSPRNG."""
    return os.urandom(KEY_SIZE)


def _aad(name: str) -> bytes:
    return AAD_PREFIX + name.encode()


def seal(key: bytes, name: str, plaintext: bytes) -> bytes:
    """An envelope of plaintext under key, bound to the name it is stored under (a fresh
    random nonce each time)."""
    nonce = os.urandom(NONCE_SIZE)
    return bytes([ENVELOPE_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(name))


def open_sealed(key: bytes, name: str, envelope: bytes | memoryview) -> bytes:
    """Decrypt an envelope; any tampering, truncation or swap raises CorruptionError."""
    # A view, not slices: blobs are opened straight out of 8 MiB packs, without copies.
    view = memoryview(envelope)
    if len(view) < 1 + NONCE_SIZE + TAG_SIZE or view[0] != ENVELOPE_VERSION:
        raise CorruptionError(f"object {name} is damaged (bad envelope)")
    return _decrypt(key, name, view[1:])


def _decrypt(key: bytes, name: str, view: memoryview) -> bytes:
    nonce = bytes(view[:NONCE_SIZE])
    try:
        return AESGCM(key).decrypt(nonce, view[NONCE_SIZE:], _aad(name))
    except InvalidTag:
        raise CorruptionError(
            f"object {name} failed authentication (damaged or tampered)"
        ) from None


def envelope_epoch(envelope: bytes | memoryview) -> int:
    """The key epoch an envelope was sealed under (0: the master key)."""
    view = memoryview(envelope)
    if len(view) > EPOCH_SIZE and view[0] == EPOCH_ENVELOPE_VERSION:
        return int.from_bytes(view[1 : 1 + EPOCH_SIZE], "big")
    return 0


def hkdf(master: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from master with HKDF-SHA256: keys of
    different purposes are independent."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=b"claude-sync/v1/" + purpose.encode(),
    ).derive(master)


class KeyRing:
    """The keys a machine holds: the master key (config, key labels, blob ids, and data
    sealed before key epochs) and the data key of every key epoch it could open. New objects
    are sealed under the newest epoch. Derived keys are cached: HKDF per object would be
    wasted work on the hot path."""

    def __init__(
        self,
        master: bytes,
        epochs: dict[int, bytes] | None = None,
        identity: tuple[str, bytes] | None = None,
    ) -> None:
        self.master = master
        self.mac_key = hkdf(master, "blob-id")
        self._blake3_key = hkdf(master, "blob-id-blake3")
        #: name new blobs by keyed BLAKE3 (a format 6 repository) rather than HMAC-SHA256
        self.keyed_blake3 = False
        #: hash files anew by keyed BLAKE3 (a format 8 repository) rather than SHA-256
        self.file_ids_blake3 = False
        #: (key object name, X25519 private key) of the key object this machine joined with
        self.identity = identity
        self.epoch_keys: dict[int, bytes] = {}
        self._encryption = {0: hkdf(master, "encryption")}
        #: epoch -> the newest snapshot number stored when it started
        self.since: dict[int, int] = {}
        for number, key in (epochs or {}).items():
            self.add_epoch(number, key)

    def handover(self) -> dict[str, Any]:
        """What a worker process needs to hold the same keys (see from_handover), to be
        sent on its standard input only."""
        return {
            "master": self.master.hex(),
            "epochs": {n: key.hex() for n, key in self.epoch_keys.items()},
            "keyed_blake3": self.keyed_blake3,
            "file_ids_blake3": self.file_ids_blake3,
        }

    @classmethod
    def from_handover(cls, setup: dict[str, Any]) -> KeyRing:
        """The keys handover() described."""
        keys = cls(
            bytes.fromhex(setup["master"]),
            {int(n): bytes.fromhex(k) for n, k in setup["epochs"].items()},
        )
        keys.keyed_blake3 = bool(setup["keyed_blake3"])
        keys.file_ids_blake3 = bool(setup["file_ids_blake3"])
        return keys

    @property
    def epoch(self) -> int:
        """The newest key epoch this machine holds (0: none, the master key seals)."""
        return max(self._encryption)

    def add_epoch(self, number: int, key: bytes) -> None:
        """Hold the data key of key epoch number (new objects are sealed under the newest)."""
        self.epoch_keys[number] = key
        self._encryption[number] = hkdf(key, "epoch-encryption")

    def epoch_key(self, number: int) -> bytes:
        """The key that authenticates epoch number+1: the master key for the first."""
        return self.master if number == 0 else self.epoch_keys[number]

    def blob_id(self, data: bytes | memoryview) -> str:
        """A new blob's name: a keyed hash of its content, so the backend learns no content
        hash. Keyed BLAKE3 where the repository's format says so: it costs a third of
        HMAC-SHA256, and a push hashes every byte it sends twice."""
        if self.keyed_blake3:
            return blake3(data, key=self._blake3_key, max_threads=1).hexdigest()
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest()

    def names(self, blob_id: str, data: bytes | memoryview) -> bool:
        """Whether blob_id is data's name. In a repository upgraded to keyed BLAKE3, the
        blobs stored before keep their HMAC-SHA256 names (and files their chunk lists)."""
        if self.blob_id(data) == blob_id:
            return True
        if not self.keyed_blake3:
            return False
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest() == blob_id

    def file_hash(self, like: str | None = None) -> FileHash:
        """A file identity to compute (identity.py): in the kind of `like`, an identity the
        content is to be checked against, else in the kind the repository writes."""
        if like is not None:
            kind = identity.kind_of(like)
        else:
            kind = identity.B3 if self.file_ids_blake3 else identity.SHA256
        return FileHash(kind, self._blake3_key)

    def seal(self, name: str, plaintext: bytes) -> bytes:
        """An envelope under the newest epoch's key (the master key before any epoch), bound to
        name; an epoch envelope carries the epoch's number."""
        epoch = self.epoch
        if epoch == 0:
            return seal(self._encryption[0], name, plaintext)
        nonce = os.urandom(NONCE_SIZE)
        body = AESGCM(self._encryption[epoch]).encrypt(nonce, plaintext, _aad(name))
        return bytes([EPOCH_ENVELOPE_VERSION]) + epoch.to_bytes(EPOCH_SIZE, "big") + nonce + body

    def seal_master(self, name: str, plaintext: bytes) -> bytes:
        """For what any holder of the master key must read: the config and key labels."""
        return seal(self._encryption[0], name, plaintext)

    def open(self, name: str, envelope: bytes | memoryview) -> bytes:
        """The plaintext of an envelope stored under name, whichever key sealed it;
        CorruptionError when it fails authentication, RevokedError when its epoch's key is
        not held here."""
        view = memoryview(envelope)
        if len(view) and view[0] == EPOCH_ENVELOPE_VERSION:
            if len(view) < 1 + EPOCH_SIZE + NONCE_SIZE + TAG_SIZE:
                raise CorruptionError(f"object {name} is damaged (bad envelope)")
            epoch = envelope_epoch(view)
            key = self._encryption.get(epoch)
            if key is None:
                raise RevokedError(
                    f"object {name} is sealed under key epoch {epoch}, which this machine "
                    "cannot open: its key was removed from the repository, or it must join "
                    "again with `claude-sync init --force`"
                )
            return _decrypt(key, name, view[1 + EPOCH_SIZE :])
        return open_sealed(self._encryption[0], name, view)

    def held(self) -> dict[str, object]:
        """What a machine keeps next to the master key so it needs no passphrase later."""
        body: dict[str, object] = {
            "epochs": {str(n): b64(k) for n, k in self.epoch_keys.items()},
            "since": {str(n): s for n, s in self.since.items()},
        }
        if self.identity is not None:
            body["identity"] = {"key": self.identity[0], "secret": b64(self.identity[1])}
        return body

    @classmethod
    def from_held(cls, master: bytes, held: dict[str, object]) -> KeyRing:
        """The key ring `held` describes (as the key file keeps it); CorruptionError when it
        is damaged."""
        try:
            found_epochs = held.get("epochs") or {}
            found_since = held.get("since") or {}
            if not isinstance(found_epochs, dict) or not isinstance(found_since, dict):
                raise TypeError
            epochs = {int(n): unb64(k, "the key file") for n, k in found_epochs.items()}
            since = {int(n): int(s) for n, s in found_since.items()}
            found = held.get("identity")
            identity = None
            if isinstance(found, dict):
                identity = (str(found["key"]), unb64(found["secret"], "the key file"))
        except (KeyError, TypeError, ValueError):
            raise CorruptionError("the key file is damaged") from None
        keys = cls(master, epochs, identity)
        keys.since.update(since)
        return keys


def new_identity() -> tuple[bytes, bytes]:
    """A fresh X25519 (private, public) key pair, raw bytes."""
    private = X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def public_of(private: bytes) -> bytes:
    """The raw X25519 public key of a raw private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _recipient_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    if not any(shared):
        raise CorruptionError("a key epoch names an invalid public key")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=ephemeral + recipient,
        info=b"claude-sync/v1/x25519",
    ).derive(shared)


def seal_to(recipient: bytes, name: str, plaintext: bytes) -> bytes:
    """ECIES to an X25519 public key: ephemeral public key, then an envelope under the
    HKDF of the shared secret (as age's X25519 recipient stanza)."""
    ephemeral = X25519PrivateKey.generate()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:
        raise CorruptionError("a key object has an invalid public key") from None
    eph_public = ephemeral.public_key().public_bytes_raw()
    return eph_public + seal(_recipient_key(shared, eph_public, recipient), name, plaintext)


def open_from(private: bytes, name: str, sealed: bytes) -> bytes:
    """Open what `seal_to` sealed to this private key's public key; CorruptionError when it
    is malformed or fails authentication."""
    identity = X25519PrivateKey.from_private_bytes(private)
    eph_public = sealed[:KEY_SIZE]
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(eph_public))
    except ValueError:
        raise CorruptionError(f"{name} is malformed") from None
    key = _recipient_key(shared, eph_public, identity.public_key().public_bytes_raw())
    return open_sealed(key, name, sealed[KEY_SIZE:])


def mac(key: bytes, purpose: str, data: bytes) -> bytes:
    """HMAC-SHA256 of data under the key derived from key for purpose."""
    return hmac.new(hkdf(key, purpose), data, hashlib.sha256).digest()


def derive_kek(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    """The key-encryption key of a passphrase: Argon2id with the key object's salt and
    parameters, refused (CorruptionError) when they are malformed or out of bounds."""
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


def wrap_master(
    master: bytes, secret: str | bytes, name: str, identity: bytes
) -> dict[str, object]:
    """A key object: the master key and an X25519 identity, wrapped under a key derived from
    a passphrase (Argon2id) or from a recovery key's 32 random bytes (HKDF: nothing to
    stretch)."""
    head: dict[str, object] = {"version": 1}
    if isinstance(secret, str):
        salt = os.urandom(16)
        params = dict(DEFAULT_KDF_PARAMS)
        kek = derive_kek(secret, salt, params)
        head.update(kdf="argon2id", params=params, salt=b64(salt))
    else:
        kek = hkdf(secret, "recovery")
        head["kdf"] = RECOVERY_KDF
    return {
        **head,
        "data": b64(seal(kek, name, master)),
        "identity": b64(seal(kek, name + "/identity", identity)),
    }


def unwrap_master(
    obj: dict[str, object], secret: str | bytes, name: str
) -> tuple[bytes, bytes | None]:
    """(master key, X25519 identity or None for key objects older than key epochs)."""
    kdf = obj.get("kdf")
    if obj.get("version") != 1 or kdf not in ("argon2id", RECOVERY_KDF):
        raise CorruptionError(f"key object {name} has an unknown format")
    if (kdf == RECOVERY_KDF) != isinstance(secret, bytes):
        raise WrongKeyError("not a key object of this kind")
    if isinstance(secret, bytes):
        kek = hkdf(secret, "recovery")
    else:
        params = obj.get("params")
        if not isinstance(params, dict):
            raise CorruptionError(f"key object {name} is malformed")
        kek = derive_kek(secret, unb64(obj.get("salt"), name), params)
    try:
        master = open_sealed(kek, name, unb64(obj.get("data"), name))
        identity = (
            open_sealed(kek, name + "/identity", unb64(obj["identity"], name))
            if "identity" in obj
            else None
        )
    except CorruptionError:
        raise WrongKeyError("wrong passphrase") from None
    if len(master) != KEY_SIZE or (identity is not None and len(identity) != KEY_SIZE):
        raise CorruptionError(f"key object {name} is malformed")
    return master, identity


def b64(data: bytes) -> str:
    """Standard base64 text, as keys are written in JSON."""
    return base64.b64encode(data).decode()


def unb64(value: object, name: str) -> bytes:
    """Strict base64 decoding of a JSON value; CorruptionError naming `name` otherwise."""
    if not isinstance(value, str):
        raise CorruptionError(f"object {name} is malformed")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise CorruptionError(f"object {name} is malformed") from None


RECOVERY_KDF = "recovery"
#: csr1: the master key itself (before key epochs); csr2: the secret of a recovery key object
RECOVERY_PREFIX = "csr1"
RECOVERY_OBJECT_PREFIX = "csr2"


def recovery_key(secret: bytes, prefix: str = RECOVERY_OBJECT_PREFIX) -> str:
    """Human-copyable key: base32 in groups, with a 4-byte checksum against typos."""
    check = hashlib.sha256(secret).digest()[:4]
    text = base64.b32encode(secret + check).decode().rstrip("=")
    groups = [text[i : i + 6] for i in range(0, len(text), 6)]
    return "-".join([prefix, *groups])


def parse_recovery_key(text: str) -> tuple[str, bytes]:
    """(prefix, 32 bytes): a csr1 key is the master key, a csr2 key opens a key object."""
    cleaned = "".join(text.split()).replace("-", "").upper()
    prefix = next(
        (p for p in (RECOVERY_PREFIX, RECOVERY_OBJECT_PREFIX) if cleaned.startswith(p.upper())),
        None,
    )
    if prefix is None:
        raise WrongKeyError("that is not a claude-sync recovery key")
    body = cleaned[len(prefix) :]
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise WrongKeyError("the recovery key is mistyped") from None
    secret, check = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if len(secret) != KEY_SIZE or hashlib.sha256(secret).digest()[:4] != check:
        raise WrongKeyError("the recovery key is mistyped")
    return prefix, secret


def recovery_key_name(secret: bytes) -> str:
    """The key object a csr2 recovery key opens: found without trying every key object."""
    return hkdf(secret, "recovery-id")[:16].hex()
