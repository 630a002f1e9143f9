"""Envelopes, key rings, key objects and recovery keys: what opens, and what is refused."""

from __future__ import annotations

import hashlib

import pytest

from claude_sync import crypto
from claude_sync.errors import CorruptionError, RevokedError, WrongKeyError

KEY = bytes(range(32))
FAST_KDF = {"iterations": 1, "lanes": 1, "memory_cost": 8}


def test_an_envelope_opens_only_under_its_key_and_name() -> None:
    sealed = crypto.seal(KEY, "snapshots/1", b"body")
    assert crypto.open_sealed(KEY, "snapshots/1", sealed) == b"body"
    assert sealed[0] == crypto.ENVELOPE_VERSION and crypto.envelope_epoch(sealed) == 0
    with pytest.raises(CorruptionError, match="failed authentication"):
        crypto.open_sealed(KEY, "snapshots/2", sealed)  # swapped for another object
    with pytest.raises(CorruptionError, match="failed authentication"):
        crypto.open_sealed(bytes(32), "snapshots/1", sealed)
    with pytest.raises(CorruptionError, match="failed authentication"):
        crypto.open_sealed(KEY, "snapshots/1", sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_short_or_unknown_envelope_is_damaged() -> None:
    empty = crypto.seal(KEY, "x", b"")
    assert crypto.open_sealed(KEY, "x", empty) == b""  # the shortest valid envelope
    for bad in (empty[:-1], b"\x09" + empty[1:], b""):
        with pytest.raises(CorruptionError, match="bad envelope"):
            crypto.open_sealed(KEY, "x", bad)


def test_the_name_is_bound_with_the_prefix() -> None:
    assert crypto._aad("a") == crypto.AAD_PREFIX + b"a"


def test_a_key_ring_seals_under_its_newest_epoch() -> None:
    ring = crypto.KeyRing(KEY)
    assert ring.epoch == 0 and ring.open("n", ring.seal("n", b"old")) == b"old"
    old = ring.seal("n", b"old")
    ring.add_epoch(3, bytes(32))
    assert ring.epoch == 3 and ring.epoch_key(3) == bytes(32) and ring.epoch_key(0) == KEY
    new = ring.seal("n", b"new")
    assert new[0] == crypto.EPOCH_ENVELOPE_VERSION and crypto.envelope_epoch(new) == 3
    assert ring.open("n", new) == b"new" and ring.open("n", old) == b"old"
    assert ring.seal_master("m", b"c")[0] == crypto.ENVELOPE_VERSION
    with pytest.raises(RevokedError, match="key epoch 3"):
        crypto.KeyRing(KEY).open("n", new)
    with pytest.raises(CorruptionError, match="bad envelope"):
        ring.open("n", new[: 1 + crypto.EPOCH_SIZE + crypto.NONCE_SIZE + crypto.TAG_SIZE - 1])
    with pytest.raises(CorruptionError, match="failed authentication"):
        ring.open("other", new)


def test_derived_keys_differ_by_purpose_and_master() -> None:
    ring = crypto.KeyRing(KEY)
    assert ring.blob_id(b"x") == crypto.KeyRing(KEY).blob_id(b"x")
    assert ring.blob_id(b"x") != crypto.KeyRing(bytes(32)).blob_id(b"x")
    assert len(ring.blob_id(b"x")) == 64
    assert crypto.hkdf(KEY, "a") != crypto.hkdf(KEY, "b") and len(crypto.hkdf(KEY, "a")) == 32
    assert crypto.mac(KEY, "a", b"d") != crypto.mac(KEY, "b", b"d")


def test_what_a_machine_holds_round_trips() -> None:
    ring = crypto.KeyRing(KEY, {2: bytes(32)}, identity=("keys/k", b"s" * 32))
    ring.since[2] = 7
    again = crypto.KeyRing.from_held(KEY, ring.held())
    assert again.epoch_keys == {2: bytes(32)} and again.since == {2: 7}
    assert again.identity == ("keys/k", b"s" * 32)
    assert crypto.KeyRing.from_held(KEY, {}).epoch == 0
    for damaged in ({"epochs": [1]}, {"since": {"x": 1}}, {"identity": {"key": "k"}}):
        with pytest.raises(CorruptionError, match="key file is damaged"):
            crypto.KeyRing.from_held(KEY, damaged)


def test_sealed_to_a_recipient_opens_only_with_its_private_key() -> None:
    private, public = crypto.new_identity()
    assert crypto.public_of(private) == public
    sealed = crypto.seal_to(public, "epochs/1", b"epoch key")
    assert crypto.open_from(private, "epochs/1", sealed) == b"epoch key"
    other, _ = crypto.new_identity()
    with pytest.raises(CorruptionError):
        crypto.open_from(other, "epochs/1", sealed)
    with pytest.raises(CorruptionError):
        crypto.open_from(private, "epochs/2", sealed)
    with pytest.raises(CorruptionError, match="invalid public key"):
        crypto.seal_to(b"short", "n", b"x")
    with pytest.raises(CorruptionError, match="malformed"):
        crypto.open_from(private, "n", b"short")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"iterations": "x", "lanes": 1, "memory_cost": 8},
        {"iterations": 0, "lanes": 1, "memory_cost": 8},
        {"iterations": crypto.MAX_KDF_ITERATIONS + 1, "lanes": 1, "memory_cost": 8},
        {"iterations": 1, "lanes": 0, "memory_cost": 8},
        {"iterations": 1, "lanes": 65, "memory_cost": 8 * 65},
        {"iterations": 1, "lanes": 2, "memory_cost": 15},
        {"iterations": 1, "lanes": 1, "memory_cost": crypto.MAX_KDF_MEMORY_KIB + 1},
    ],
)
def test_kdf_parameters_out_of_range_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(CorruptionError, match="KDF parameters"):
        crypto.derive_kek("pw", bytes(16), params)  # type: ignore[arg-type]


def test_kdf_parameters_at_their_limits_are_accepted() -> None:
    limits = {"iterations": 1, "lanes": 64, "memory_cost": 8 * 64}
    assert len(crypto.derive_kek("pw", bytes(16), limits)) == 32
    assert crypto.derive_kek("pw", bytes(16), FAST_KDF) != crypto.derive_kek(
        "pw2", bytes(16), FAST_KDF
    )


def test_a_key_object_opens_with_its_passphrase_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "DEFAULT_KDF_PARAMS", FAST_KDF)
    obj = crypto.wrap_master(KEY, "pw", "keys/a", b"i" * 32)
    assert obj["kdf"] == "argon2id" and obj["params"] == FAST_KDF
    assert crypto.unwrap_master(obj, "pw", "keys/a") == (KEY, b"i" * 32)
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        crypto.unwrap_master(obj, "nope", "keys/a")
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        crypto.unwrap_master(obj, "pw", "keys/b")  # moved to another name
    with pytest.raises(WrongKeyError, match="not a key object of this kind"):
        crypto.unwrap_master(obj, bytes(32), "keys/a")
    older = {k: v for k, v in obj.items() if k != "identity"}
    assert crypto.unwrap_master(older, "pw", "keys/a") == (KEY, None)
    for damaged in ({**obj, "version": 2}, {**obj, "kdf": "md5"}, {**obj, "params": None}):
        with pytest.raises(CorruptionError):
            crypto.unwrap_master(damaged, "pw", "keys/a")
    with pytest.raises(CorruptionError, match="malformed"):
        crypto.unwrap_master({**obj, "salt": 5}, "pw", "keys/a")


def test_a_key_object_holding_a_short_key_is_malformed() -> None:
    short = crypto.wrap_master(b"k" * 31, bytes(32), "keys/r", b"i" * 32)
    with pytest.raises(CorruptionError, match="malformed"):
        crypto.unwrap_master(short, bytes(32), "keys/r")
    short_id = crypto.wrap_master(KEY, bytes(32), "keys/r", b"i" * 31)
    with pytest.raises(CorruptionError, match="malformed"):
        crypto.unwrap_master(short_id, bytes(32), "keys/r")


def test_a_recovery_key_object_opens_with_its_secret() -> None:
    obj = crypto.wrap_master(KEY, b"r" * 32, "keys/r", b"i" * 32)
    assert obj["kdf"] == crypto.RECOVERY_KDF and "salt" not in obj
    assert crypto.unwrap_master(obj, b"r" * 32, "keys/r") == (KEY, b"i" * 32)
    with pytest.raises(WrongKeyError, match="not a key object of this kind"):
        crypto.unwrap_master(obj, "pw", "keys/r")


def test_base64_fields_are_checked() -> None:
    assert crypto.unb64(crypto.b64(b"\x00\xff"), "n") == b"\x00\xff"
    for bad in (None, 5, "not base64!"):
        with pytest.raises(CorruptionError, match="object n is malformed"):
            crypto.unb64(bad, "n")


def test_a_recovery_key_survives_retyping_and_catches_typos() -> None:
    secret = bytes(range(1, 33))
    text = crypto.recovery_key(secret)
    assert text.startswith("csr2-") and all(len(g) <= 6 for g in text.split("-")[1:])
    assert crypto.parse_recovery_key(text) == ("csr2", secret)
    assert crypto.parse_recovery_key(" " + text.lower().replace("-", " ")) == ("csr2", secret)
    old = crypto.recovery_key(secret, crypto.RECOVERY_PREFIX)
    assert crypto.parse_recovery_key(old) == ("csr1", secret)
    typo = text[:-1] + ("A" if text[-1] != "A" else "B")
    for bad, message in ((typo, "mistyped"), ("csr2-1", "mistyped"), ("hello", "not a")):
        with pytest.raises(WrongKeyError, match=message):
            crypto.parse_recovery_key(bad)
    assert crypto.recovery_key_name(secret) != crypto.recovery_key_name(bytes(32))
    assert len(crypto.recovery_key_name(secret)) == 32


def test_blob_names_follow_the_format_and_an_upgrade_keeps_old_names_valid() -> None:
    ring = crypto.KeyRing(bytes(range(32)))
    data = b"a chunk of a transcript\n" * 100
    mac = ring.blob_id(data)  # a format 5 repository: HMAC-SHA256
    ring.keyed_blake3 = True  # format 6
    blake = ring.blob_id(data)
    assert blake != mac and len(blake) == len(mac) == 64
    # keyed: neither name is a plain hash of the content, and another key names differently
    assert blake not in (hashlib.sha256(data).hexdigest(), hashlib.blake2s(data).hexdigest())
    other = crypto.KeyRing(bytes(32))
    other.keyed_blake3 = True
    assert other.blob_id(data) != blake
    # a format 6 repository reads blobs named before its upgrade, and nothing else
    assert ring.names(blake, data) and ring.names(mac, data)
    assert not ring.names(blake, data + b"x") and not ring.names(mac, data + b"x")
    # a format 5 repository takes no BLAKE3 name
    ring.keyed_blake3 = False
    assert ring.names(mac, data) and not ring.names(blake, data)
