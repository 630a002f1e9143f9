"""The envelope and key derivations of docs/FORMAT.md, rebuilt here from the primitives: a
change to a label, a byte order or a layout would make every existing repository unreadable."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from claude_sync import crypto
from claude_sync.errors import CorruptionError

MASTER = bytes(range(32))
AAD = b"claude-sync/v1\x00"


def derive(key: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def envelope(key: bytes, name: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return bytes([1]) + nonce + AESGCM(key).encrypt(nonce, plaintext, AAD + name.encode())


def test_objects_sealed_under_the_master_key_open() -> None:
    ring = crypto.KeyRing(MASTER)
    sealed = envelope(derive(MASTER, b"claude-sync/v1/encryption"), "config", b"body")
    assert ring.open("config", sealed) == b"body"
    own = ring.seal_master("config", b"body")
    key = derive(MASTER, b"claude-sync/v1/encryption")
    assert AESGCM(key).decrypt(own[1:13], own[13:], AAD + b"config") == b"body"


def test_blob_ids_are_an_hmac_under_the_derived_key() -> None:
    key = derive(MASTER, b"claude-sync/v1/blob-id")
    expected = hmac.new(key, b"data", hashlib.sha256).hexdigest()
    assert crypto.KeyRing(MASTER).blob_id(b"data") == expected
    assert (
        crypto.mac(MASTER, "p", b"data")
        == hmac.new(derive(MASTER, b"claude-sync/v1/p"), b"data", hashlib.sha256).digest()
    )


def test_an_epoch_envelope_names_its_epoch_big_endian() -> None:
    epoch_key = bytes(32)
    ring = crypto.KeyRing(MASTER, {258: epoch_key})
    sealed = ring.seal("n", b"body")
    assert sealed[:5] == bytes([2, 0, 0, 1, 2])
    assert crypto.envelope_epoch(sealed) == 258
    key = derive(epoch_key, b"claude-sync/v1/epoch-encryption")
    assert AESGCM(key).decrypt(sealed[5:17], sealed[17:], AAD + b"n") == b"body"
    # The shortest epoch envelope (empty plaintext) opens; a byte less is damaged.
    empty = ring.seal("n", b"")
    assert len(empty) == 1 + 4 + 12 + 16 and ring.open("n", empty) == b""
    assert crypto.envelope_epoch(bytes([2, 0, 0, 0, 7])) == 7
    assert crypto.envelope_epoch(bytes([2, 0, 0, 7])) == 0  # too short to name one


def test_sealing_to_a_recipient_is_x25519_then_hkdf_salted_with_both_keys() -> None:
    private, public = crypto.new_identity()
    sealed = crypto.seal_to(public, "epochs/1", b"k")
    ephemeral = sealed[:32]
    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(ephemeral)
    )
    key = derive(shared, b"claude-sync/v1/x25519", salt=ephemeral + public)
    assert crypto.open_sealed(key, "epochs/1", sealed[32:]) == b"k"


def test_a_low_order_public_key_is_refused() -> None:
    private, _ = crypto.new_identity()
    with pytest.raises(CorruptionError, match="a key object has an invalid public key"):
        crypto.seal_to(bytes(32), "n", b"x")
    with pytest.raises(CorruptionError, match="epochs/1 is malformed"):
        crypto.open_from(private, "epochs/1", bytes(32) + b"x" * 40)


def test_kdf_limits_are_inclusive_and_salts_are_16_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []

    class Probe:
        def __init__(self, salt: bytes, length: int, iterations: int, lanes: int, memory_cost: int):
            seen.append((len(salt), iterations))

        def derive(self, data: bytes) -> bytes:
            return bytes(32)

    monkeypatch.setattr(crypto, "Argon2id", Probe)
    top = {"iterations": crypto.MAX_KDF_ITERATIONS, "lanes": 1, "memory_cost": 8}
    crypto.derive_kek("pw", bytes(16), top)
    crypto.derive_kek("pw", bytes(16), {**top, "memory_cost": crypto.MAX_KDF_MEMORY_KIB})
    crypto.wrap_master(MASTER, "pw", "keys/a", b"i" * 32)
    assert seen[-1] == (16, crypto.DEFAULT_KDF_PARAMS["iterations"])
    with pytest.raises(CorruptionError, match="key object has malformed KDF parameters"):
        crypto.derive_kek("pw", bytes(16), {"lanes": 1})
    with pytest.raises(CorruptionError, match="key object has out-of-range KDF parameters"):
        crypto.derive_kek("pw", bytes(16), {**top, "lanes": 0})
    with pytest.raises(CorruptionError, match="key object has out-of-range KDF parameters"):
        crypto.derive_kek("pw", bytes(16), {**top, "memory_cost": 7})


def test_error_messages_name_what_is_wrong() -> None:
    ring = crypto.KeyRing(MASTER, {3: bytes(32)})
    with pytest.raises(crypto.RevokedError, match=r"cannot open: its key was removed .* --force`$"):
        crypto.KeyRing(MASTER).open("n", ring.seal("n", b"x"))
    with pytest.raises(CorruptionError, match=r"^object the key file is malformed$"):
        crypto.KeyRing.from_held(MASTER, {"epochs": {"1": "not base64!"}})
    with pytest.raises(CorruptionError, match=r"^object the key file is malformed$"):
        crypto.KeyRing.from_held(MASTER, {"identity": {"key": "k", "secret": 5}})
    with pytest.raises(CorruptionError, match=r"^the key file is damaged$"):
        crypto.KeyRing.from_held(MASTER, {"since": {"1": "x"}})
    held = crypto.KeyRing.from_held(MASTER, {})
    assert held.identity is None
    obj = crypto.wrap_master(MASTER, b"r" * 32, "keys/r", b"i" * 32)
    with pytest.raises(CorruptionError, match="key object keys/r has an unknown format"):
        crypto.unwrap_master({**obj, "version": 9}, b"r" * 32, "keys/r")
    with pytest.raises(crypto.WrongKeyError, match=r"^not a key object of this kind$"):
        crypto.unwrap_master(obj, "pw", "keys/r")


def test_the_first_key_epoch_seals_under_its_own_key() -> None:
    ring = crypto.KeyRing(MASTER, {1: bytes(32)})
    sealed = ring.seal("n", b"body")
    assert sealed[:5] == bytes([2, 0, 0, 0, 1])
    with pytest.raises(crypto.RevokedError):
        crypto.KeyRing(MASTER).open("n", sealed)  # the master key alone no longer opens it
